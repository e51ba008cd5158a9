//! Where a model's tensors come from: a Hugging Face safetensors file or a GGUF file in memory,
//! or a GGUF file read tensor by tensor through a [`ByteReader`], behind one lookup by Hugging
//! Face name.

use std::borrow::Cow;

use super::gguf::GgufFile;
use super::reader::{ByteReader, StreamedGguf};
use super::safetensors::SafetensorsFile;
use super::{DType, TensorView};
use crate::{Error, Result};

pub enum WeightSource<'a> {
    Safetensors(SafetensorsFile<'a>),
    Gguf(GgufFile<'a>),
    Streamed(StreamedGguf<'a>),
}

/// GGUF files start with these bytes; anything else is tried as safetensors.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// A tensor as a source hands it out: borrowed from a file in memory, or read just now.
pub struct SourceTensor<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub dtype: DType,
    pub data: Cow<'a, [u8]>,
}

impl SourceTensor<'_> {
    pub fn view(&self) -> TensorView<'_> {
        TensorView { name: self.name, shape: self.shape, dtype: self.dtype, data: &self.data }
    }
}

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

    /// A GGUF file read through `reader`; `progress(loaded, total)` hears of each tensor read.
    pub fn streamed(reader: &'a dyn ByteReader, progress: Option<&'a dyn Fn(u64, u64)>) -> Result<Self> {
        Ok(WeightSource::Streamed(StreamedGguf::open(reader, progress)?))
    }

    /// A string the file carries beside its tensors (GGUF metadata; safetensors has none we use).
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        match self {
            WeightSource::Gguf(g) => g.get_str(key),
            WeightSource::Streamed(s) => s.get_str(key),
            WeightSource::Safetensors(_) => None,
        }
    }

    pub fn get(&self, name: &str) -> Result<Option<SourceTensor<'_>>> {
        Ok(match self {
            WeightSource::Safetensors(f) => f.get(name)?.map(|t| SourceTensor {
                name: t.name,
                shape: t.shape,
                dtype: t.dtype,
                data: Cow::Borrowed(t.data),
            }),
            WeightSource::Gguf(f) => f.tensor(name)?.map(|t| SourceTensor {
                name: &t.name,
                shape: &t.shape,
                dtype: t.dtype,
                data: Cow::Borrowed(f.tensor_data(t)),
            }),
            WeightSource::Streamed(s) => s.read(name)?.map(|(name, shape, dtype, data)| SourceTensor {
                name,
                shape,
                dtype,
                data: Cow::Owned(data),
            }),
        })
    }

    /// Every tensor's name, sorted; those of ggml types we cannot decode too, so that `get`
    /// names them in its error rather than a caller missing them.
    pub fn names(&self) -> Vec<String> {
        let gguf = |h: &super::gguf::Header| -> Vec<String> {
            h.tensors.iter().map(|t| t.name.clone()).chain(h.other_tensors.iter().map(|t| t.name.clone())).collect()
        };
        let mut names: Vec<String> = match self {
            WeightSource::Safetensors(f) => f.names().map(str::to_string).collect(),
            WeightSource::Gguf(f) => gguf(f.header()),
            WeightSource::Streamed(s) => gguf(s.header()),
        };
        names.sort();
        names
    }

    /// Whether the file has the tensor, without reading it.
    pub fn contains(&self, name: &str) -> Result<bool> {
        match self {
            WeightSource::Streamed(s) => Ok(s.header().tensor(name)?.is_some()),
            _ => Ok(self.get(name)?.is_some()),
        }
    }

    /// A tensor the model cannot do without.
    pub fn require(&self, name: &str) -> Result<SourceTensor<'_>> {
        self.get(name)?.ok_or_else(|| Error::model(format!("tensor {name} is missing")))
    }
}
