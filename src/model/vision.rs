//! The ViT image encoder (`BlipVisionModel`): pre-LN transformer over 16×16 patches plus CLS.

use super::{LayerNorm, Linear, Loader};
use crate::backend::Backend;
use crate::config::VisionConfig;
use crate::{Error, Result};

struct VisionLayer<B: Backend> {
    layer_norm1: LayerNorm<B>,
    /// Fused q, k, v projection; output laid out (3, heads, head_dim).
    qkv: Linear<B>,
    projection: Linear<B>,
    layer_norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
}

pub struct VisionEncoder<B: Backend> {
    patch_weight: B::Tensor,
    patch_bias: B::Tensor,
    class_embedding: B::Tensor,
    position_embedding: B::Tensor,
    /// Kept on the host so other input sizes can interpolate it (HF's `interpolate_pos_encoding`).
    position_host: Vec<f32>,
    layers: Vec<VisionLayer<B>>,
    post_layernorm: LayerNorm<B>,
    hidden: usize,
    heads: usize,
    patch: usize,
    image_size: usize,
}

impl<B: Backend> VisionEncoder<B> {
    pub(crate) fn load(l: &Loader<B>, c: &VisionConfig) -> Result<Self> {
        let (d, p) = (c.hidden_size, c.patch_size);
        let tokens = (c.image_size / p).pow(2) + 1;
        let vm = l.pp("vision_model");
        let e = vm.pp("embeddings");
        let position_host = e.host("position_embedding", &[1, tokens, d])?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let n = vm.pp(format_args!("encoder.layers.{i}"));
                Ok(VisionLayer {
                    layer_norm1: n.layer_norm("layer_norm1", d, c.layer_norm_eps)?,
                    qkv: n.linear("self_attn.qkv", 3 * d, d)?,
                    projection: n.linear("self_attn.projection", d, d)?,
                    layer_norm2: n.layer_norm("layer_norm2", d, c.layer_norm_eps)?,
                    fc1: n.linear("mlp.fc1", c.intermediate_size, d)?,
                    fc2: n.linear("mlp.fc2", d, c.intermediate_size)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_weight: e.tensor("patch_embedding.weight", &[d, 3, p, p])?,
            patch_bias: e.tensor("patch_embedding.bias", &[d])?,
            class_embedding: e.tensor("class_embedding", &[1, 1, d])?,
            position_embedding: l.backend.upload_f32(&position_host, &[1, tokens, d])?,
            position_host,
            layers,
            post_layernorm: vm.layer_norm("post_layernorm", d, c.layer_norm_eps)?,
            hidden: d,
            heads: c.num_attention_heads,
            patch: p,
            image_size: c.image_size,
        })
    }

    /// `pixels` `[3, S, S]` (S a multiple of the patch size) → image tokens `[1, (S/P)²+1, D]`,
    /// after `post_layernorm`: what the decoder attends to.
    pub fn forward(&self, b: &B, pixels: &B::Tensor, size: usize) -> Result<B::Tensor> {
        if size == 0 || !size.is_multiple_of(self.patch) {
            return Err(Error::ImageSize(format!("{size} is not a multiple of the patch size {}", self.patch)));
        }
        let interpolated;
        let position = if size == self.image_size {
            &self.position_embedding
        } else {
            let (from, to) = (self.image_size / self.patch, size / self.patch);
            let table = interpolate_positions(&self.position_host, self.hidden, from, to);
            interpolated = b.upload_f32(&table, &[1, to * to + 1, self.hidden])?;
            &interpolated
        };
        let mut x =
            b.patch_embed(pixels, &self.patch_weight, &self.patch_bias, &self.class_embedding, position, self.patch)?;
        for layer in &self.layers {
            x = layer.forward(b, &x, self.hidden, self.heads)?;
        }
        self.post_layernorm.forward(b, &x)
    }
}

impl<B: Backend> VisionLayer<B> {
    fn forward(&self, b: &B, x: &B::Tensor, d: usize, heads: usize) -> Result<B::Tensor> {
        let h = self.layer_norm1.forward(b, x)?;
        let qkv = self.qkv.forward(b, &h)?;
        let (q, k, v) = (b.narrow_last(&qkv, 0, d)?, b.narrow_last(&qkv, d, d)?, b.narrow_last(&qkv, 2 * d, d)?);
        let attn = b.attention(&q, &k, &v, heads, false)?;
        let x = self.projection.forward_add(b, &attn, x)?;
        let h = self.layer_norm2.forward(b, &x)?;
        self.fc2.forward_add(b, &self.fc1.forward_gelu(b, &h)?, &x)
    }
}

/// HF's `interpolate_pos_encoding`: the patch grid of position embeddings resized with
/// `F.interpolate(mode="bicubic", align_corners=False)` (torch's cubic convolution, A = -0.75,
/// borders clamped); the CLS row is kept as is.
pub fn interpolate_positions(table: &[f32], dim: usize, from: usize, to: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity((to * to + 1) * dim);
    out.extend_from_slice(&table[..dim]);
    let grid = &table[dim..];
    let scale = from as f32 / to as f32;
    let taps = |dst: usize| -> ([usize; 4], [f32; 4]) {
        let src = scale * (dst as f32 + 0.5) - 0.5;
        let base = src.floor();
        let t = src - base;
        let idx = std::array::from_fn(|k| (base as isize - 1 + k as isize).clamp(0, from as isize - 1) as usize);
        (idx, cubic_weights(t))
    };
    for y in 0..to {
        let (yi, yw) = taps(y);
        for x in 0..to {
            let (xi, xw) = taps(x);
            for c in 0..dim {
                // torch interpolates each of the four rows along x, then those along y.
                let rows: [f32; 4] = std::array::from_fn(|r| {
                    (0..4).map(|k| grid[(yi[r] * from + xi[k]) * dim + c] * xw[k]).fold(0.0, |a, v| a + v)
                });
                out.push((0..4).map(|r| rows[r] * yw[r]).fold(0.0, |a, v| a + v));
            }
        }
    }
    out
}

fn cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

#[cfg(test)]
mod tests {
    use super::interpolate_positions;

    /// A grid of `side`² positions with one feature `f(y, x)`, after a CLS row of 7s.
    fn table(side: usize, f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
        let mut t = vec![7.0];
        for y in 0..side {
            for x in 0..side {
                t.push(f(y as f32, x as f32));
            }
        }
        t
    }

    #[test]
    fn same_size_is_identity() {
        let t = table(6, |y, x| (y * 13.0 + x * 7.0).sin());
        assert_eq!(interpolate_positions(&t, 1, 6, 6), t);
    }

    #[test]
    fn constants_survive_and_a_ramp_matches_torchs_kernel() {
        let (from, to) = (8, 12);
        let flat = interpolate_positions(&table(from, |_, _| 0.25), 1, from, to);
        assert!(flat[1..].iter().all(|&v| (v - 0.25).abs() < 1e-6), "weights sum to one");
        // At output (2, 2) torch samples source (1 + 1/6, 1 + 1/6). Its A = -0.75 kernel weights
        // for t = 1/6 are [-0.0868056, 0.9432870, 0.1608796, -0.0173611] (worked out by hand from
        // `upsample_bicubic2d`'s cubic_convolution1/2), so a ramp 2x + 3y + 1 becomes
        // 5·(1 + 0.2129630) + 1 — not the ramp's own value: only A = -0.5 keeps ramps exact.
        let ramp = interpolate_positions(&table(from, |y, x| 2.0 * x + 3.0 * y + 1.0), 1, from, to);
        assert_eq!(ramp[0], 7.0, "CLS row kept");
        assert!((ramp[1 + 2 * to + 2] - 7.064_815).abs() < 1e-5, "{}", ramp[1 + 2 * to + 2]);
    }
}
