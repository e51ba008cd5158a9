//! BLIP image captioning (`BlipForConditionalGeneration`), written once against [`Backend`].
//! Weight names are the Hugging Face checkpoint's, so the code reads against `modeling_blip.py`
//! and `modeling_blip_text.py`.

pub mod text;
pub mod vision;

use crate::backend::Backend;
use crate::config::BlipConfig;
use crate::weights::source::{SourceTensor, WeightSource};
use crate::{Error, Result};

pub use text::{CrossKv, SelfKv, TextDecoder};
pub use vision::VisionEncoder;

pub struct Blip<B: Backend> {
    pub config: BlipConfig,
    pub vision: VisionEncoder<B>,
    pub text: TextDecoder<B>,
}

impl<B: Backend> Blip<B> {
    pub fn load(backend: &B, config: BlipConfig, source: &WeightSource) -> Result<Self> {
        let loader = Loader { backend, source };
        let vision = VisionEncoder::load(&loader, &config.vision_config)?;
        let text = TextDecoder::load(&loader, &config.text_config)?;
        Ok(Self { config, vision, text })
    }
}

/// `x · Wᵀ + b`, as `nn.Linear`.
pub struct Linear<B: Backend> {
    pub weight: B::Weight,
    pub bias: Option<B::Tensor>,
}

impl<B: Backend> Linear<B> {
    pub fn forward(&self, backend: &B, x: &B::Tensor) -> Result<B::Tensor> {
        backend.linear(x, &self.weight, self.bias.as_ref())
    }

    /// `gelu(x · Wᵀ + b)`, in one kernel where the backend can.
    pub fn forward_gelu(&self, backend: &B, x: &B::Tensor) -> Result<B::Tensor> {
        backend.linear_fused(x, &self.weight, self.bias.as_ref(), true, None)
    }

    /// `x · Wᵀ + b + residual`, in one kernel where the backend can.
    pub fn forward_add(&self, backend: &B, x: &B::Tensor, residual: &B::Tensor) -> Result<B::Tensor> {
        backend.linear_fused(x, &self.weight, self.bias.as_ref(), false, Some(residual))
    }
}

pub struct LayerNorm<B: Backend> {
    pub weight: B::Tensor,
    pub bias: B::Tensor,
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub fn forward(&self, backend: &B, x: &B::Tensor) -> Result<B::Tensor> {
        backend.layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// Fetches tensors by checkpoint name, checks their shapes against the config, and hands them to
/// the backend one at a time.
pub(crate) struct Loader<'a, B: Backend> {
    pub backend: &'a B,
    pub source: &'a WeightSource<'a>,
}

impl<B: Backend> Loader<'_, B> {
    fn view(&self, name: &str, shape: &[usize]) -> Result<SourceTensor<'_>> {
        let t = self.source.require(name)?;
        // Some exporters keep a leading batch dimension of 1; compare without it.
        let squeezed: Vec<usize> = t.shape.iter().copied().skip_while(|&d| d == 1).collect();
        let want: Vec<usize> = shape.iter().copied().skip_while(|&d| d == 1).collect();
        if squeezed != want {
            return Err(Error::model(format!("tensor {name} has shape {:?}, the config needs {shape:?}", t.shape)));
        }
        Ok(t)
    }

    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<B::Tensor> {
        self.backend.tensor(&self.view(name, shape)?.view())
    }

    /// The tensor as f32 on the host (small tensors the model transforms before upload).
    pub fn host(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.view(name, shape)?.view().to_f32()
    }

    pub fn weight(&self, name: &str, rows: usize, cols: usize) -> Result<B::Weight> {
        self.backend.weight(&self.view(name, &[rows, cols])?.view())
    }

    pub fn linear(&self, prefix: &str, out: usize, inp: usize) -> Result<Linear<B>> {
        Ok(Linear {
            weight: self.weight(&format!("{prefix}.weight"), out, inp)?,
            bias: Some(self.tensor(&format!("{prefix}.bias"), &[out])?),
        })
    }

    /// Several `nn.Linear`s with the same input stacked into one (`out` rows each), so one
    /// product computes them all; their outputs are side by side in the result's columns.
    pub fn linear_stacked(&self, name: &str, prefixes: &[String], out: usize, inp: usize) -> Result<Linear<B>> {
        let mut parts = prefixes.iter().map(|p| self.view(&format!("{p}.weight"), &[out, inp]));
        let weight = self.backend.weight_stacked(name, out * prefixes.len(), inp, &mut parts)?;
        let mut bias = Vec::with_capacity(out * prefixes.len());
        for p in prefixes {
            bias.extend(self.host(&format!("{p}.bias"), &[out])?);
        }
        let bytes: Vec<u8> = bias.iter().flat_map(|v| v.to_le_bytes()).collect();
        let shape = [bias.len()];
        let bias = self.backend.tensor(&crate::weights::TensorView { name, shape: &shape, dtype: crate::weights::DType::F32, data: &bytes })?;
        Ok(Linear { weight, bias: Some(bias) })
    }

    pub fn layer_norm(&self, prefix: &str, dim: usize, eps: f64) -> Result<LayerNorm<B>> {
        Ok(LayerNorm {
            weight: self.tensor(&format!("{prefix}.weight"), &[dim])?,
            bias: self.tensor(&format!("{prefix}.bias"), &[dim])?,
            eps,
        })
    }

    pub fn has(&self, name: &str) -> Result<bool> {
        self.source.contains(name)
    }
}
