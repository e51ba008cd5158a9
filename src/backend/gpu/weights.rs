//! Weights go to the GPU one tensor at a time, written straight into buffers mapped at creation,
//! so host memory never holds more than the file (mapped) and one tensor being converted.
//! Q8_0's 34-byte blocks are split for WGSL, which reads aligned u32 words: the int8 values four
//! to a word, and the f16 scales two to a word (`unpack2x16float` reads them with no f16 feature).

use std::rc::Rc;

use super::device::gpu_err;
use super::pool::GpuBuffer;
use super::{GpuBackend, GpuWeight};
use crate::weights::q8_0::{BLOCK_BYTES, QK8_0};
use crate::weights::{DType, TensorView};
use crate::{Error, Result};

/// A buffer of `bytes` (rounded up to 4) written from `data` (exactly `bytes` long) while mapped
/// at creation.
pub(super) fn filled(backend: &GpuBackend, label: &str, bytes: usize, data: impl IntoIterator<Item = u8>) -> Result<Rc<GpuBuffer>> {
    let size = (bytes.max(4) as u64).next_multiple_of(4);
    backend.fits(label, size)?;
    let buffer = backend.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: true,
    });
    {
        let mut view = buffer.get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{label}: {e}")))?;
        view.slice(..bytes).write_iter(data);
    }
    buffer.unmap();
    backend.errors.check()?;
    Ok(GpuBuffer::owned(buffer))
}

pub(super) fn owned_f32(backend: &GpuBackend, name: &str, data: &[f32]) -> Result<Rc<GpuBuffer>> {
    filled(backend, name, data.len() * 4, data.iter().flat_map(|v| v.to_le_bytes()))
}

pub(super) fn upload_weight(backend: &GpuBackend, t: &TensorView) -> Result<GpuWeight> {
    let &[rows, cols] = t.shape else {
        return Err(Error::model(format!("{} should be 2-D, has shape {:?}", t.name, t.shape)));
    };
    if t.dtype != DType::Q8_0 {
        // f16 / bf16 files are widened: every kernel is f32 (no adapter feature needed).
        return Ok(GpuWeight::F32 { buf: owned_f32(backend, t.name, &t.to_f32()?)?, rows, cols });
    }
    let values = rows * cols;
    if !cols.is_multiple_of(QK8_0) || t.dtype.byte_len(values) != Some(t.data.len()) {
        return Err(Error::model(format!("{}: Q8_0 data does not match shape {:?}", t.name, t.shape)));
    }
    let blocks = t.data.chunks_exact(BLOCK_BYTES);
    let quants = filled(backend, t.name, values, blocks.clone().flat_map(|b| b[2..].iter().copied()))?;
    let scales = filled(backend, t.name, (values / QK8_0) * 2, blocks.flat_map(|b| [b[0], b[1]]))?;
    Ok(GpuWeight::Q8 { quants, scales, rows, cols })
}
