//! Where a model's tensors come from: a Hugging Face safetensors file or a GGUF file, behind one
//! lookup by Hugging Face name.

use super::gguf::GgufFile;
use super::safetensors::SafetensorsFile;
use super::TensorView;
use crate::{Error, Result};

pub enum WeightSource<'a> {
    Safetensors(SafetensorsFile<'a>),
    Gguf(GgufFile<'a>),
}

/// GGUF files start with these bytes; anything else is tried as safetensors.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

impl<'a> WeightSource<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(Error::model(format!("{} bytes is too short to be a GGUF or safetensors file", bytes.len())));
        }
        if bytes.starts_with(GGUF_MAGIC) {
            Ok(WeightSource::Gguf(GgufFile::parse(bytes)?))
        } else {
            Ok(WeightSource::Safetensors(SafetensorsFile::parse(bytes)?))
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<TensorView<'_>>> {
        match self {
            WeightSource::Safetensors(f) => f.get(name),
            WeightSource::Gguf(f) => Ok(f.tensor(name)?.map(|t| TensorView {
                name: &t.name,
                shape: &t.shape,
                dtype: t.dtype,
                data: f.tensor_data(t),
            })),
        }
    }

    /// A tensor the model cannot do without.
    pub fn require(&self, name: &str) -> Result<TensorView<'_>> {
        self.get(name)?.ok_or_else(|| Error::model(format!("tensor {name} is missing")))
    }
}
