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
        let loader = Loader { backend, source, prefix: String::new() };
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
/// the backend one at a time. Names are relative to `prefix` (see [`Loader::pp`]), so a module's
/// loader reads like the checkpoint's own nesting.
pub(crate) struct Loader<'a, B: Backend> {
    pub backend: &'a B,
    pub source: &'a WeightSource<'a>,
    prefix: String,
}

impl<'a, B: Backend> Loader<'a, B> {
    /// A loader one level down: `l.pp("encoder").tensor("weight", ..)` reads `{prefix}.encoder.weight`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Loader<'a, B> {
        Loader { backend: self.backend, source: self.source, prefix: self.path(&name.to_string()) }
    }

    /// The checkpoint name of `name` under this loader's prefix.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn view(&self, name: &str, shape: &[usize]) -> Result<SourceTensor<'a>> {
        let name = &self.path(name);
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

    pub fn linear(&self, name: &str, out: usize, inp: usize) -> Result<Linear<B>> {
        let l = self.pp(name);
        Ok(Linear { weight: l.weight("weight", out, inp)?, bias: Some(l.tensor("bias", &[out])?) })
    }

    /// Several `nn.Linear`s with the same input stacked into one (`out` rows each), so one
    /// product computes them all; their outputs are side by side in the result's columns.
    /// `name` names the stack (it is in no checkpoint); `parts` are the linears' own names.
    pub fn linear_stacked<S: AsRef<str>>(&self, name: &str, parts: &[S], out: usize, inp: usize) -> Result<Linear<B>> {
        let name = &self.path(name);
        let mut views = parts.iter().map(|p| self.pp(p.as_ref()).view("weight", &[out, inp]));
        let weight = self.backend.weight_stacked(name, out * parts.len(), inp, &mut views)?;
        let mut bias = Vec::with_capacity(out * parts.len());
        for p in parts {
            bias.extend(self.pp(p.as_ref()).host("bias", &[out])?);
        }
        let bytes: Vec<u8> = bias.iter().flat_map(|v| v.to_le_bytes()).collect();
        let shape = [bias.len()];
        let bias = self.backend.tensor(&crate::weights::TensorView {
            name,
            shape: &shape,
            dtype: crate::weights::DType::F32,
            data: &bytes,
        })?;
        Ok(Linear { weight, bias: Some(bias) })
    }

    pub fn layer_norm(&self, name: &str, dim: usize, eps: f64) -> Result<LayerNorm<B>> {
        let l = self.pp(name);
        Ok(LayerNorm { weight: l.tensor("weight", &[dim])?, bias: l.tensor("bias", &[dim])?, eps })
    }

    pub fn has(&self, name: &str) -> Result<bool> {
        self.source.contains(&self.path(name))
    }
}
