//! Multi-head attention on host memory. On x86_64 CPUs with AVX-512 or AVX2+FMA, calls with at
//! least `KERNEL_MIN_QUERIES` queries (the vision pass, prompts) go through our own kernels
//! (`x86`), one task per (batch row, head), and calls with fewer (decoder steps) through `few`,
//! whose products read the keys and values in place: the `gemm` crate packed them per call and
//! head, most of a decoder step's attention. Wasm and older CPUs go one (batch row, head, block of
//! queries) per task through the `gemm` crate: the block's scores live in a per-thread scratch of
//! `QUERY_BLOCK × keys` floats, are scaled and softmaxed there and multiplied by the values
//! straight into the output. Either way, the vision pass would otherwise materialise 12 × 577 ×
//! 577 scores and as many probabilities per layer (two fresh 16 MB buffers, zeroed and faulted in
//! by the kernel every time). Q, K and V are read through their strides; the products run
//! single-threaded within a task, since the tasks already fill the cores.

use rayon::prelude::*;

use super::fast_math::softmax_in_place;
use super::shared_out::SharedOut;

#[cfg(target_arch = "x86_64")]
mod few;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Queries per block: 577 vision tokens make 10 blocks per head, 120 `gemm` tasks per layer. The
/// x86 kernels take a head's queries a block at a time too, so that its scores stay in L2.
const QUERY_BLOCK: usize = 64;

/// Multiply-adds a thread should get at least before a split pays. A decoder step's attention is
/// a few hundred thousand in all; split per head, each hand-over to another thread costs more
/// than the head (in the browser's threaded build a step took twice as long on two workers).
const MIN_TASK_WORK: usize = 1 << 20;

/// Fewest queries for which the x86 kernels run. They copy each head's keys into a transposed
/// scratch first, one move per key element, which a single query's product (one multiply-add per
/// key element) cannot repay: a decoder step (one query per beam, or a short prompt's few, against
/// up to 577 cached keys) is left to `few`, which reads the keys in place. From eight queries on
/// the copy is at most a sixteenth of the work.
#[cfg(target_arch = "x86_64")]
const KERNEL_MIN_QUERIES: usize = 8;

/// [`MIN_TASK_WORK`] for the few-query kernel, which runs natively only, where handing a task to
/// another thread costs microseconds rather than the Web Workers' tens to hundreds: a decoder
/// step's cross-attention reads 3.5 MB of cached keys and values per layer, at one core's memory
/// bandwidth when kept whole (1.5 ms of a 7.5 ms BLIP-base step on a 2-core Zen 5), so it is split
/// from a head's worth of work (577 keys × 64 × 2) on; a self-attention over a few dozen keys still
/// stays on one thread.
#[cfg(target_arch = "x86_64")]
const FEW_MIN_TASK_WORK: usize = 1 << 16;

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

/// Which code computes an attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Gemm,
    #[cfg(target_arch = "x86_64")]
    X86(x86::Isa),
    #[cfg(target_arch = "x86_64")]
    Few,
}

impl Kernel {
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn pick(s: &Shape) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if s.sq >= KERNEL_MIN_QUERIES {
            if let Some(isa) = x86::Isa::detect() {
                return Kernel::X86(isa);
            }
        } else if few::available() {
            return Kernel::Few;
        }
        Kernel::Gemm
    }
}

/// Returns `[batch, sq, hd]`. Panics when the slices do not match `shape`: the backend checks
/// its tensors' shapes first, and the raw-pointer products below rely on these lengths.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], s: &Shape) -> Vec<f32> {
    attention_with(q, k, v, s, Kernel::pick(s))
}

/// `attention` through the given kernel, which must run on this CPU.
fn attention_with(q: &[f32], k: &[f32], v: &[f32], s: &Shape, kernel: Kernel) -> Vec<f32> {
    assert!(s.heads > 0 && s.hd.is_multiple_of(s.heads), "attention: {} columns in {} heads", s.hd, s.heads);
    assert!(s.key_batch == s.batch || s.key_batch == 1, "attention: key batch {} for batch {}", s.key_batch, s.batch);
    assert_eq!(q.len(), s.batch * s.sq * s.hd, "attention: query length");
    assert_eq!(k.len(), s.key_batch * s.sk * s.hd, "attention: key length");
    assert_eq!(v.len(), s.key_batch * s.sk * s.hd, "attention: value length");
    let mut out = vec![0f32; s.batch * s.sq * s.hd];
    match kernel {
        Kernel::Gemm => with_gemm(q, k, v, s, &mut out),
        #[cfg(target_arch = "x86_64")]
        Kernel::X86(isa) => with_x86(q, k, v, s, isa, &mut out),
        #[cfg(target_arch = "x86_64")]
        Kernel::Few => with_few(q, k, v, s, &mut out),
    }
    out
}

fn with_gemm(q: &[f32], k: &[f32], v: &[f32], s: &Shape, out: &mut [f32]) {
    let d = s.hd / s.heads;
    let scale = (d as f32).powf(-0.5);
    let blocks = s.sq.div_ceil(QUERY_BLOCK);
    let shared = SharedOut::new(out);
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
                // SAFETY: all pointers and strides stay inside q, k, v (lengths asserted by `attention_with`), `scores`
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
                // SAFETY: as for the scores; `scores` now holds the block's probabilities.
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
}

/// The x86 kernels, one task per (batch row, head) so that its keys are packed once; with fewer
/// heads than threads, each head's query blocks are shared out among a few tasks instead (each
/// packing the keys for itself).
#[cfg(target_arch = "x86_64")]
fn with_x86(q: &[f32], k: &[f32], v: &[f32], s: &Shape, isa: x86::Isa, out: &mut [f32]) {
    let d = s.hd / s.heads;
    let scale = (d as f32).powf(-0.5);
    let heads = s.batch * s.heads;
    let blocks = s.sq.div_ceil(QUERY_BLOCK);
    let runs = rayon::current_num_threads().div_ceil(heads.max(1)).min(blocks).max(1);
    let shared = SharedOut::new(out);
    let task_work = s.sq.div_ceil(runs) * s.sk * d * 2;
    (0..heads * runs).into_par_iter().with_min_len(MIN_TASK_WORK.div_ceil(task_work.max(1))).for_each_init(
        x86::Scratch::default,
        |scratch, task| {
            let (bh, run) = (task / runs, task % runs);
            let (bi, h) = (bh / s.heads, bh % s.heads);
            let kb = if s.key_batch == 1 { 0 } else { bi };
            let first = (blocks * run / runs * QUERY_BLOCK).min(s.sq);
            let last = (blocks * (run + 1) / runs * QUERY_BLOCK).min(s.sq);
            let head = x86::Head::at(q, k, v, shared, s, bi, kb, h, first..last, scale);
            // SAFETY: the caller picked an ISA this CPU has; the head's rows `first..last` of Q and
            // the output and its `sk` rows of K and V lie inside the slices (lengths asserted by
            // `attention_with`), and no other task writes these output rows and columns.
            unsafe { x86::head(isa, &head, scratch) };
        },
    );
}

/// `few`, one task per run of (batch row, head) pairs with all their queries: with so few queries a
/// decoder step's whole attention is most often one task (see `MIN_TASK_WORK`).
#[cfg(target_arch = "x86_64")]
fn with_few(q: &[f32], k: &[f32], v: &[f32], s: &Shape, out: &mut [f32]) {
    let d = s.hd / s.heads;
    let scale = (d as f32).powf(-0.5);
    let shared = SharedOut::new(out);
    let task_work = s.sq * s.sk * d * 2;
    (0..s.batch * s.heads).into_par_iter().with_min_len(FEW_MIN_TASK_WORK.div_ceil(task_work.max(1))).for_each_init(
        Vec::new,
        |scores, bh| {
            let (bi, h) = (bh / s.heads, bh % s.heads);
            let kb = if s.key_batch == 1 { 0 } else { bi };
            let head = x86::Head::at(q, k, v, shared, s, bi, kb, h, 0..s.sq, scale);
            // SAFETY: the caller picked `Kernel::Few` on a CPU where `few::available()`; the head's
            // sq rows of Q and the output and its sk rows of K and V lie inside the slices (lengths
            // asserted by `attention_with`), and no other task writes these output rows and columns.
            unsafe { few::head(&head, scores) };
        },
    );
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

    /// Shapes that take each path: the x86 kernels from 8 queries on (head dims 4, 6, 12, 16, 64,
    /// 80; key counts off the key tiles; causal with and without cached keys; keys shared by a
    /// batch of 3; a vision-like call), `few` (or the `gemm` crate) below: head dims 4, 6, 12, 64
    /// and 76 (a 64-column pass and a masked one), key counts off the groups of eight, a decoder
    /// step's cross-attention and causal self-attention over a batch of beams.
    fn cases() -> Vec<Shape> {
        let shape = |batch, key_batch, sq, sk, hd, heads, causal| Shape { batch, key_batch, sq, sk, hd, heads, causal };
        vec![
            shape(1, 1, 70, 70, 12, 3, false),
            shape(2, 2, 5, 9, 8, 2, true),
            shape(3, 1, 1, 130, 16, 4, false),
            shape(1, 1, 129, 129, 6, 1, true),
            shape(3, 1, 20, 45, 24, 2, false),
            shape(3, 1, 11, 37, 32, 2, true),
            shape(2, 2, 33, 50, 32, 2, true),
            shape(1, 1, 8, 8, 64, 1, true),
            shape(2, 2, 40, 77, 160, 2, false),
            shape(1, 1, 12, 19, 80, 1, true),
            shape(1, 1, 97, 97, 128, 2, false),
            shape(1, 1, 1, 577, 768, 12, false),
            shape(3, 3, 1, 37, 128, 2, true),
            shape(1, 1, 3, 20, 24, 2, true),
            shape(4, 1, 2, 13, 12, 2, false),
            shape(2, 1, 4, 23, 152, 2, true),
        ]
    }

    fn inputs(s: &Shape) -> [Vec<f32>; 3] {
        let gen = |n: usize, seed: usize| -> Vec<f32> {
            (0..n).map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0) * 2.0).collect()
        };
        [gen(s.batch * s.sq * s.hd, 1), gen(s.key_batch * s.sk * s.hd, 2), gen(s.key_batch * s.sk * s.hd, 3)]
    }

    /// Every kernel this CPU can run.
    fn kernels() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut kernels = vec![Kernel::Gemm];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                kernels.push(Kernel::X86(x86::Isa::Avx512));
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                kernels.push(Kernel::X86(x86::Isa::Avx2));
            }
            if few::available() {
                kernels.push(Kernel::Few);
            }
        }
        kernels
    }

    /// Within 1e-5 of the f64 definition, absolute: the outputs are averages of values within ±2,
    /// and the largest deviation on these inputs is about 5e-6 (d = 80, whose scores reach tens:
    /// an f32 score's rounding error grows with its size, and the softmax turns it into a
    /// relative error of the probabilities).
    fn assert_close(got: &[f32], want: &[f64], s: &Shape, kernel: Kernel) {
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - w).abs() < 1e-5,
                "{kernel:?} sq {} sk {} d {} at {i}: {g} vs {w}",
                s.sq,
                s.sk,
                s.hd / s.heads
            );
        }
    }

    #[test]
    fn matches_the_definition() {
        for s in &cases() {
            let [q, k, v] = inputs(s);
            assert_close(&attention(&q, &k, &v, s), &reference(&q, &k, &v, s), s, Kernel::pick(s));
        }
    }

    #[test]
    fn every_kernel_matches_the_definition() {
        for s in &cases() {
            let [q, k, v] = inputs(s);
            let want = reference(&q, &k, &v, s);
            for kernel in kernels() {
                assert_close(&attention_with(&q, &k, &v, s, kernel), &want, s, kernel);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_x86_kernels_take_calls_from_eight_queries_and_few_below() {
        let vision = Shape { batch: 1, key_batch: 1, sq: 577, sk: 577, hd: 768, heads: 12, causal: false };
        let step = Shape { sq: 1, ..vision };
        let prompt = Shape { sq: KERNEL_MIN_QUERIES - 1, ..vision };
        let few = if few::available() { Kernel::Few } else { Kernel::Gemm };
        assert_eq!(Kernel::pick(&vision), x86::Isa::detect().map_or(Kernel::Gemm, Kernel::X86));
        assert_eq!(Kernel::pick(&step), few);
        assert_eq!(Kernel::pick(&prompt), few);
    }

    /// The kernels' softmax, eight rows' sums at a time, must give each row what the other callers'
    /// `softmax_in_place` gives it, bit for bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn softmax_rows_match_softmax_in_place() {
        use super::super::fast_math::softmax_rows;
        let (stride, width) = (600, 577);
        let visible: Vec<usize> = (0..19).map(|r| [0, 1, 15, 16, 17, 300, 576, 577][r % 8]).collect();
        let mut scores: Vec<f32> = (0..visible.len() * stride)
            .map(|i| ((i * 7919 % 1000) as f32 / 50.0 - 10.0) * (1 + i % 3) as f32)
            .collect();
        let mut want = scores.clone();
        softmax_rows(&mut scores, stride, &visible, width);
        for (r, &n) in visible.iter().enumerate() {
            softmax_in_place(&mut want[r * stride..][..n]);
            let (got, want) = (&scores[r * stride..][..width], &want[r * stride..][..n]);
            assert!(got[..n].iter().zip(want).all(|(g, w)| g.to_bits() == w.to_bits()), "row {r} ({n} entries)");
            assert!(got[n..].iter().all(|&x| x == 0.0), "row {r} past {n}");
        }
    }

    /// AVX-512 and AVX2 machines must give the same results: each element's multiply-adds run in
    /// the same order whatever the vector width.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_avx2_agree_bit_for_bit() {
        let kernels = kernels();
        let (wide, narrow) = (Kernel::X86(x86::Isa::Avx512), Kernel::X86(x86::Isa::Avx2));
        if !kernels.contains(&wide) || !kernels.contains(&narrow) {
            eprintln!("skipped: this CPU lacks AVX-512 or AVX2+FMA");
            return;
        }
        for s in &cases() {
            let [q, k, v] = inputs(s);
            let a = attention_with(&q, &k, &v, s, wide);
            let b = attention_with(&q, &k, &v, s, narrow);
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!(x.to_bits(), y.to_bits(), "sq {} sk {} d {} at {i}: {x} vs {y}", s.sq, s.sk, s.hd / s.heads);
            }
        }
    }

    /// Microseconds per decoder-step cross-attention call (one beam's query against 577 image keys,
    /// 768 columns, 12 heads), median of 200, through the `gemm` crate and `few`:
    /// `cargo test --release --lib decoder_step_timing -- --ignored --nocapture`.
    #[cfg(target_arch = "x86_64")]
    #[test]
    #[ignore]
    fn decoder_step_timing() {
        let s = Shape { batch: 1, key_batch: 1, sq: 1, sk: 577, hd: 768, heads: 12, causal: false };
        let [q, k, v] = inputs(&s);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            for kernel in kernels().into_iter().filter(|&kernel| matches!(kernel, Kernel::Gemm | Kernel::Few)) {
                let mut us: Vec<f64> = (0..200)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        std::hint::black_box(attention_with(&q, &k, &v, &s, kernel));
                        t.elapsed().as_secs_f64() * 1e6
                    })
                    .collect();
                us.sort_by(f64::total_cmp);
                println!("{kernel:?}: median {:.1} µs (min {:.1}, max {:.1})", us[100], us[0], us[199]);
            }
        });
    }

    /// Milliseconds per vision-pass attention call (1 × 577 × 768, 12 heads) on two threads, for
    /// every kernel this CPU runs: `cargo test --release --lib vision_timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn vision_timing() {
        let s = Shape { batch: 1, key_batch: 1, sq: 577, sk: 577, hd: 768, heads: 12, causal: false };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut random = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
                })
                .collect()
        };
        let (q, k, v) = (random(577 * 768), random(577 * 768), random(577 * 768));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            for kernel in kernels() {
                let mut ms: Vec<f64> = (0..21)
                    .map(|_| {
                        let t = std::time::Instant::now();
                        std::hint::black_box(attention_with(&q, &k, &v, &s, kernel));
                        t.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                ms.sort_by(f64::total_cmp);
                println!("{kernel:?}: median {:.2} ms (min {:.2}, max {:.2})", ms[10], ms[0], ms[20]);
            }
        });
    }
}
