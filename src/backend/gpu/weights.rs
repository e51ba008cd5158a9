//! Weights go to the GPU one tensor at a time, written straight into buffers mapped at creation,
//! so host memory never holds more than the file (mapped) and one tensor being converted.
//! Q8_0's 34-byte blocks are split for WGSL, which reads aligned u32 words: the int8 values four
//! to a word, and the f16 scales two to a word (`unpack2x16float` reads them with no f16 feature).

use std::rc::Rc;

use super::device::gpu_err;
use super::pool::GpuBuffer;
use super::{GpuBackend, GpuWeight};
use crate::weights::q8_0::{BLOCK_BYTES, QK8_0};
use crate::weights::source::SourceTensor;
use crate::weights::{DType, TensorView};
use crate::{Error, Result};

/// A buffer of `bytes` (rounded up to 16, so kernels may read weights a vec4 at a time) written
/// from `data` (exactly `bytes` long) while mapped at creation.
pub(super) fn filled(backend: &GpuBackend, label: &str, bytes: usize, data: impl IntoIterator<Item = u8>) -> Result<Rc<GpuBuffer>> {
    let size = (bytes.max(16) as u64).next_multiple_of(16);
    backend.fits(label, size)?;
    // Owned from the start, so a failure below still destroys it.
    let buffer = backend.pool.own(backend.pool.create(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: true,
    }));
    {
        let mut view = buffer.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{label}: {e}")))?;
        view.slice(..bytes).write_iter(data);
    }
    buffer.raw().unmap();
    backend.errors.check()?;
    Ok(buffer)
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

/// Several tensors' rows in one weight, each written into the mapped buffers as it arrives (one
/// tensor in host memory at a time). Q8_0 parts stay Q8_0; other types are widened to f32.
pub(super) fn upload_stacked<'a>(
    backend: &GpuBackend,
    name: &str,
    rows: usize,
    cols: usize,
    parts: &mut dyn Iterator<Item = Result<SourceTensor<'a>>>,
) -> Result<GpuWeight> {
    let values = rows.checked_mul(cols).ok_or_else(|| Error::model(format!("{name}: {rows}×{cols} is too large")))?;
    let Some(first) = parts.next().transpose()? else {
        return Err(Error::model(format!("{name}: nothing to stack")));
    };
    let q8 = first.dtype == DType::Q8_0;
    if q8 && !cols.is_multiple_of(QK8_0) {
        return Err(Error::model(format!("{name}: Q8_0 rows of {cols} values")));
    }
    let mapped = |label: &str, bytes: usize| -> Result<Rc<GpuBuffer>> {
        let size = (bytes.max(16) as u64).next_multiple_of(16);
        backend.fits(label, size)?;
        Ok(backend.pool.own(backend.pool.create(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: true,
        })))
    };
    let (main, scales) = if q8 {
        (mapped(name, values)?, Some(mapped(name, values / QK8_0 * 2)?))
    } else {
        (mapped(name, values * 4)?, None)
    };
    let mut stacked = 0usize;
    let mut part = Some(first);
    while let Some(p) = part.take() {
        let v = p.view();
        let &[r, c] = v.shape else { return Err(Error::model(format!("{} should be 2-D, has shape {:?}", v.name, v.shape))) };
        if c != cols || stacked + r > rows {
            return Err(Error::model(format!("{}: shape {:?} does not stack into {name} [{rows}, {cols}]", v.name, v.shape)));
        }
        let at = stacked * cols;
        if q8 {
            if v.dtype != DType::Q8_0 || v.dtype.byte_len(r * c) != Some(v.data.len()) {
                return Err(Error::model(format!("{}: not Q8_0 data of shape {:?} like the rest of {name}", v.name, v.shape)));
            }
            let blocks = v.data.chunks_exact(BLOCK_BYTES);
            let mut q = main.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            q.slice(at..at + r * c).write_iter(blocks.clone().flat_map(|b| b[2..].iter().copied()));
            drop(q);
            let s = scales.as_ref().expect("q8 has scales");
            let mut sv = s.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            let s_at = at / QK8_0 * 2;
            sv.slice(s_at..s_at + r * c / QK8_0 * 2).write_iter(blocks.flat_map(|b| [b[0], b[1]]));
        } else {
            let data = v.to_f32()?;
            let mut m = main.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            m.slice(at * 4..(at + r * c) * 4).write_iter(data.iter().flat_map(|x| x.to_le_bytes()));
        }
        stacked += r;
        part = parts.next().transpose()?;
    }
    if stacked != rows {
        return Err(Error::model(format!("{name}: parts stack to {stacked} rows, expected {rows}")));
    }
    main.raw().unmap();
    if let Some(s) = &scales {
        s.raw().unmap();
    }
    backend.errors.check()?;
    Ok(match scales {
        Some(scales) => GpuWeight::Q8 { quants: main, scales, rows, cols },
        None => GpuWeight::F32 { buf: main, rows, cols },
    })
}
