//! Multi-head attention on host memory, one (batch row, head, block of queries) per task: the
//! block's scores live in a per-thread scratch of `QUERY_BLOCK × keys` floats, are scaled and
//! softmaxed there and multiplied by the values straight into the output. The vision pass would
//! otherwise materialise 12 × 577 × 577 scores and as many probabilities per layer (two fresh
//! 16 MB buffers, zeroed and faulted in by the kernel every time). Q, K and V are read in place
//! through their strides; the products go through the `gemm` crate single-threaded, since the
//! tasks already fill the cores.

use rayon::prelude::*;

use super::fast_math::softmax_in_place;
use super::shared_out::SharedOut;

/// Queries per task: 577 vision tokens make 10 blocks per head, 120 tasks per layer.
const QUERY_BLOCK: usize = 64;

/// Multiply-adds a thread should get at least before a split pays. A decoder step's attention is
/// a few hundred thousand in all; split per head, each hand-over to another thread costs more
/// than the head (in the browser's threaded build a step took twice as long on two workers).
const MIN_TASK_WORK: usize = 1 << 20;

/// Shapes of one attention call; `q` is `[batch, sq, hd]`, `k`/`v` are `[key_batch, sk, hd]` with
/// `key_batch` equal to `batch` or 1 (shared keys).
pub struct Shape {
    pub batch: usize,
    pub key_batch: usize,
    pub sq: usize,
    pub sk: usize,
    pub hd: usize,
    pub heads: usize,
    pub causal: bool,
}

/// Returns `[batch, sq, hd]`. Panics when the slices do not match `shape`: the backend checks
/// its tensors' shapes first, and the raw-pointer products below rely on these lengths.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], s: &Shape) -> Vec<f32> {
    assert!(s.heads > 0 && s.hd.is_multiple_of(s.heads), "attention: {} columns in {} heads", s.hd, s.heads);
    assert!(s.key_batch == s.batch || s.key_batch == 1, "attention: key batch {} for batch {}", s.key_batch, s.batch);
    assert_eq!(q.len(), s.batch * s.sq * s.hd, "attention: query length");
    assert_eq!(k.len(), s.key_batch * s.sk * s.hd, "attention: key length");
    assert_eq!(v.len(), s.key_batch * s.sk * s.hd, "attention: value length");
    let d = s.hd / s.heads;
    let scale = (d as f32).powf(-0.5);
    let blocks = s.sq.div_ceil(QUERY_BLOCK);
    let mut out = vec![0f32; s.batch * s.sq * s.hd];
    let shared = SharedOut::new(&mut out);
    let offset = s.sk as isize - s.sq as isize;
    let task_work = QUERY_BLOCK.min(s.sq) * s.sk * d * 2;
    (0..s.batch * s.heads * blocks)
        .into_par_iter()
        .with_min_len(MIN_TASK_WORK.div_ceil(task_work.max(1)))
        .for_each_init(
            || vec![0f32; QUERY_BLOCK.min(s.sq) * s.sk],
            |scores, task| {
                let (bh, block) = (task / blocks, task % blocks);
                let (bi, h) = (bh / s.heads, bh % s.heads);
                let kb = if s.key_batch == 1 { 0 } else { bi };
                let r0 = block * QUERY_BLOCK;
                let rows = QUERY_BLOCK.min(s.sq - r0);
                let q_at = (bi * s.sq + r0) * s.hd + h * d;
                let kv_at = kb * s.sk * s.hd + h * d;
                let (hd, sk) = (s.hd as isize, s.sk as isize);
                // SAFETY: all pointers and strides stay inside q, k, v (lengths asserted above), `scores`
                // holds rows × sk, and each task writes only its own rows × d block of `out`.
                unsafe {
                    // scores = scale · Q_block · K_headᵀ
                    gemm::gemm(
                        rows,
                        s.sk,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        sk,
                        false,
                        q.as_ptr().add(q_at),
                        1,
                        hd,
                        k.as_ptr().add(kv_at),
                        hd,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                for (r, row) in scores.chunks_mut(s.sk).take(rows).enumerate() {
                    // Query i sees keys up to sk - sq + i.
                    let visible =
                        if s.causal { ((r0 + r) as isize + offset + 1).clamp(0, s.sk as isize) as usize } else { s.sk };
                    softmax_in_place(&mut row[..visible]);
                    row[visible..].fill(0.0);
                }
                unsafe {
                    // out_block = P · V_head
                    gemm::gemm(
                        rows,
                        d,
                        s.sk,
                        shared.at(q_at),
                        1,
                        hd,
                        false,
                        scores.as_ptr(),
                        1,
                        sk,
                        v.as_ptr().add(kv_at),
                        1,
                        hd,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            },
        );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attention from its definition, in f64.
    fn reference(q: &[f32], k: &[f32], v: &[f32], s: &Shape) -> Vec<f64> {
        let d = s.hd / s.heads;
        let mut out = vec![0f64; s.batch * s.sq * s.hd];
        for b in 0..s.batch {
            let kb = if s.key_batch == 1 { 0 } else { b };
            for h in 0..s.heads {
                for i in 0..s.sq {
                    let visible = if s.causal { (i + s.sk - s.sq + 1).min(s.sk) } else { s.sk };
                    let qi = &q[(b * s.sq + i) * s.hd + h * d..][..d];
                    let logits: Vec<f64> = (0..visible)
                        .map(|j| {
                            let kj = &k[(kb * s.sk + j) * s.hd + h * d..][..d];
                            qi.iter().zip(kj).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() / (d as f64).sqrt()
                        })
                        .collect();
                    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                    for c in 0..d {
                        out[(b * s.sq + i) * s.hd + h * d + c] = logits
                            .iter()
                            .enumerate()
                            .map(|(j, l)| (l - max).exp() / sum * v[(kb * s.sk + j) * s.hd + h * d + c] as f64)
                            .sum();
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition() {
        let cases = [
            Shape { batch: 1, key_batch: 1, sq: 70, sk: 70, hd: 12, heads: 3, causal: false },
            Shape { batch: 2, key_batch: 2, sq: 5, sk: 9, hd: 8, heads: 2, causal: true },
            Shape { batch: 3, key_batch: 1, sq: 1, sk: 130, hd: 16, heads: 4, causal: false },
            Shape { batch: 1, key_batch: 1, sq: 129, sk: 129, hd: 6, heads: 1, causal: true },
        ];
        for s in &cases {
            let gen = |n: usize, seed: usize| -> Vec<f32> {
                (0..n).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect()
            };
            let q = gen(s.batch * s.sq * s.hd, 1);
            let k = gen(s.key_batch * s.sk * s.hd, 2);
            let v = gen(s.key_batch * s.sk * s.hd, 3);
            let got = attention(&q, &k, &v, s);
            let want = reference(&q, &k, &v, s);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!((g as f64 - w).abs() < 1e-5, "sq {} sk {} at {i}: {g} vs {w}", s.sq, s.sk);
            }
        }
    }
}
