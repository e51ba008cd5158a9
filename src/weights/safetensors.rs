//! Hugging Face `model.safetensors`, read in place (the bytes are an mmap natively).

use safetensors::{Dtype, SafeTensors};

use super::{DType, TensorView};
use crate::{Error, Result};

pub struct SafetensorsFile<'a> {
    inner: SafeTensors<'a>,
    /// Shapes are kept here so views can borrow them.
    shapes: Vec<(String, Vec<usize>)>,
}

impl<'a> SafetensorsFile<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let inner = SafeTensors::deserialize(bytes).map_err(|e| Error::model(format!("safetensors: {e}")))?;
        let mut shapes: Vec<(String, Vec<usize>)> =
            inner.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect();
        shapes.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { inner, shapes })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.shapes.iter().map(|(n, _)| n.as_str())
    }

    pub fn get(&self, name: &str) -> Result<Option<TensorView<'_>>> {
        let Ok(i) = self.shapes.binary_search_by(|(n, _)| n.as_str().cmp(name)) else {
            return Ok(None);
        };
        let (name, shape) = (&self.shapes[i].0, &self.shapes[i].1);
        let view = self.inner.tensor(name).map_err(|e| Error::model(format!("safetensors {name}: {e}")))?;
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F16 => DType::F16,
            Dtype::BF16 => DType::BF16,
            other => return Err(Error::model(format!("tensor {name} has unsupported dtype {other:?}"))),
        };
        Ok(Some(TensorView { name, shape, dtype, data: view.data() }))
    }

    pub fn require_view(&self, name: &str) -> Result<TensorView<'_>> {
        self.get(name)?.ok_or_else(|| Error::model(format!("tensor {name} is missing")))
    }
}
