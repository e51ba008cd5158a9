//! Weights go to the GPU one tensor at a time, written straight into buffers mapped at creation,
//! so host memory never holds more than the file (mapped) and one tensor being converted.
//! Q8_0's 34-byte blocks are split for WGSL, which reads aligned u32 words: the int8 values four
//! to a word, and the f16 scales two to a word (`unpack2x16float` reads them with no f16 feature).
//! Q4_0 and Q4_K are repacked alike (`q4_repack`): eight 4-bit values to a word in order, and per
//! 32 values an f32 step and offset, to which both formats reduce exactly (a Q4_K sub-block is
//! `d·scale · q − dmin·min`, a Q4_0 block `d · q − 8·d`): 0.75 bytes a weight on the GPU.

use std::rc::Rc;

use super::device::gpu_err;
use super::pool::GpuBuffer;
use super::{GpuBackend, GpuWeight};
use crate::weights::q4::{self, Q4_0_BLOCK_BYTES, Q4_K_BLOCK_BYTES, QK4_0, QK_K};
use crate::weights::q8_0::{BLOCK_BYTES, QK8_0};
use crate::weights::source::SourceTensor;
use crate::weights::{DType, TensorView};
use crate::{Error, Result};

/// A buffer of `bytes` (rounded up to 16, so kernels may read weights a vec4 at a time) written
/// from `data` (exactly `bytes` long) while mapped at creation.
pub(super) fn filled(
    backend: &GpuBackend,
    label: &str,
    bytes: usize,
    data: impl IntoIterator<Item = u8>,
) -> Result<Rc<GpuBuffer>> {
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

/// 4-bit blocks as the kernels read them: the values' nibbles in order, eight to a word (value
/// `8w + i` in bits `4i..4i + 4` of word `w`), and an f32 (step, offset) pair per 32 values, each
/// computed as the CPU decodes them (`q4`), so `step · q + offset` is the CPU's value exactly.
pub(super) fn q4_repack(dtype: DType, data: &[u8]) -> (Vec<u32>, Vec<f32>) {
    let mut words = Vec::new();
    let mut scales = Vec::new();
    let mut push = |values: &[u8; 32], step: f32, offset: f32| {
        words.extend(
            values.chunks_exact(8).map(|v| v.iter().enumerate().fold(0u32, |w, (i, &q)| w | (u32::from(q) << (4 * i)))),
        );
        scales.extend([step, offset]);
    };
    let f16_at = |b: &[u8], at: usize| half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32();
    if dtype == DType::Q4_0 {
        for b in data.chunks_exact(Q4_0_BLOCK_BYTES) {
            let d = f16_at(b, 0);
            let qs = &b[2..];
            let values: [u8; QK4_0] = std::array::from_fn(|j| if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 });
            push(&values, d, -8.0 * d);
        }
    } else {
        for b in data.chunks_exact(Q4_K_BLOCK_BYTES) {
            let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
            let packed: &[u8; 12] = b[4..16].try_into().expect("12 bytes");
            let qs = &b[16..];
            for j in 0..QK_K / 32 {
                let (sc, m) = q4::scale_min(j, packed);
                let run = &qs[32 * (j / 2)..32 * (j / 2 + 1)];
                let values: [u8; 32] = std::array::from_fn(|l| if j % 2 == 0 { run[l] & 15 } else { run[l] >> 4 });
                push(&values, d * f32::from(sc), -(dmin * f32::from(m)));
            }
        }
    }
    (words, scales)
}

fn is_q4(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_0 | DType::Q4_K)
}

pub(super) fn upload_weight(backend: &GpuBackend, t: &TensorView) -> Result<GpuWeight> {
    let &[rows, cols] = t.shape else {
        return Err(Error::model(format!("{} should be 2-D, has shape {:?}", t.name, t.shape)));
    };
    if is_q4(t.dtype) {
        let block = if t.dtype == DType::Q4_0 { QK4_0 } else { QK_K };
        if !cols.is_multiple_of(block) || t.dtype.byte_len(rows * cols) != Some(t.data.len()) {
            return Err(Error::model(format!("{}: {:?} data does not match shape {:?}", t.name, t.dtype, t.shape)));
        }
        let (words, steps) = q4_repack(t.dtype, t.data);
        let quants = filled(backend, t.name, words.len() * 4, words.iter().flat_map(|w| w.to_le_bytes()))?;
        let scales = owned_f32(backend, t.name, &steps)?;
        return Ok(GpuWeight::Q4 { quants, scales, q4_0: t.dtype == DType::Q4_0, rows, cols });
    }
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
/// tensor in host memory at a time). Q8_0 parts stay Q8_0 and 4-bit parts 4-bit when the first
/// part is (every part must then be of its type); other types are widened to f32.
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
    let kind = first.dtype;
    let q4 = is_q4(kind);
    if q8 && !cols.is_multiple_of(QK8_0) {
        return Err(Error::model(format!("{name}: Q8_0 rows of {cols} values")));
    }
    if q4 && !cols.is_multiple_of(if kind == DType::Q4_0 { QK4_0 } else { QK_K }) {
        return Err(Error::model(format!("{name}: {kind:?} rows of {cols} values")));
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
    } else if q4 {
        (mapped(name, values / 2)?, Some(mapped(name, values / 32 * 8)?))
    } else {
        (mapped(name, values * 4)?, None)
    };
    let mut stacked = 0usize;
    let mut part = Some(first);
    while let Some(p) = part.take() {
        let v = p.view();
        let &[r, c] = v.shape else {
            return Err(Error::model(format!("{} should be 2-D, has shape {:?}", v.name, v.shape)));
        };
        if c != cols || stacked + r > rows {
            return Err(Error::model(format!(
                "{}: shape {:?} does not stack into {name} [{rows}, {cols}]",
                v.name, v.shape
            )));
        }
        let at = stacked * cols;
        if q8 {
            if v.dtype != DType::Q8_0 || v.dtype.byte_len(r * c) != Some(v.data.len()) {
                return Err(Error::model(format!(
                    "{}: not Q8_0 data of shape {:?} like the rest of {name}",
                    v.name, v.shape
                )));
            }
            let blocks = v.data.chunks_exact(BLOCK_BYTES);
            let mut q = main.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            q.slice(at..at + r * c).write_iter(blocks.clone().flat_map(|b| b[2..].iter().copied()));
            drop(q);
            let s = scales.as_ref().expect("q8 has scales");
            let mut sv = s.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            let s_at = at / QK8_0 * 2;
            sv.slice(s_at..s_at + r * c / QK8_0 * 2).write_iter(blocks.flat_map(|b| [b[0], b[1]]));
        } else if q4 {
            if v.dtype != kind || v.dtype.byte_len(r * c) != Some(v.data.len()) {
                return Err(Error::model(format!(
                    "{}: not {kind:?} data of shape {:?} like the rest of {name}",
                    v.name, v.shape
                )));
            }
            let (words, steps) = q4_repack(kind, v.data);
            let mut q = main.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            q.slice(at / 2..(at + r * c) / 2).write_iter(words.iter().flat_map(|w| w.to_le_bytes()));
            drop(q);
            let s = scales.as_ref().expect("q4 has scales");
            let mut sv = s.raw().get_mapped_range_mut(..).map_err(|e| gpu_err(format!("{name}: {e}")))?;
            sv.slice(at / 32 * 8..(at + r * c) / 32 * 8).write_iter(steps.iter().flat_map(|x| x.to_le_bytes()));
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
        Some(scales) if q4 => GpuWeight::Q4 { quants: main, scales, q4_0: kind == DType::Q4_0, rows, cols },
        Some(scales) => GpuWeight::Q8 { quants: main, scales, rows, cols },
        None => GpuWeight::F32 { buf: main, rows, cols },
    })
}
