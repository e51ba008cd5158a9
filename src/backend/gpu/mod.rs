//! The op interface on wgpu with our own WGSL kernels (`kernels/*.wgsl`): Vulkan, Metal or DX12
//! natively, the browser's WebGPU in wasm, the same code for both.
//!
//! Tensors are device buffers from a pool; ops record compute passes into one command encoder
//! (see `recorder.rs`) and return at once. Only `read_ids` / `read_f32` submit and map, so a
//! greedy caption (vision, cross-attention K/V, every step with its arg-max on the device) is a
//! few submits whose only readback is token ids. f32 throughout; no optional feature is needed
//! (no f16, no subgroups), so every WebGPU adapter runs the same kernels.

mod device;
mod kernels;
mod pool;
mod recorder;
mod weights;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub use device::AdapterSummary;
use device::{gpu_err, ErrorSlot};
use kernels::{Kernel, Kernels};
use pool::{bytes_of, GpuBuffer, Pool};
use recorder::{groups_1d, read_mapped, Recorder};

use super::Backend;
use crate::weights::TensorView;
use crate::Result;

/// Rows of X up to which Q8_0 products use the GEMV kernel (decoder steps, beams).
const GEMV_MAX_ROWS: usize = 8;

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: wgpu::Limits,
    errors: ErrorSlot,
    kernels: Kernels,
    pool: Rc<Pool>,
    recorder: RefCell<Recorder>,
    /// Bound where a kernel's optional input (a bias) is absent.
    dummy: wgpu::Buffer,
    staging: RefCell<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// Host ids by content: a caption's position ids and prompt repeat every frame, and id
    /// buffers are never written after creation, so each is uploaded once.
    host_ids: RefCell<HashMap<Vec<u32>, Rc<GpuBuffer>>>,
    readbacks: Cell<u64>,
    uploads: Cell<u64>,
}

/// Distinct host id arrays kept (beam search's token rows vary; the cache is emptied when full).
const HOST_IDS_KEPT: usize = 512;

#[derive(Clone)]
pub struct GpuTensor {
    buf: Rc<GpuBuffer>,
    shape: Vec<usize>,
}

impl GpuTensor {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

#[derive(Clone)]
pub struct GpuIds {
    buf: Rc<GpuBuffer>,
    batch: usize,
    len: usize,
    /// Ids that came from the host, kept to check them against a table as the CPU does; ids
    /// made on the device by arg-max are in range by construction.
    host: Option<Rc<Vec<u32>>>,
}

pub enum GpuWeight {
    F32 { buf: Rc<GpuBuffer>, rows: usize, cols: usize },
    /// Q8_0 repacked: int8 values four to a u32 word, and the f16 block scales two to a word.
    Q8 { quants: Rc<GpuBuffer>, scales: Rc<GpuBuffer>, rows: usize, cols: usize },
}

impl GpuWeight {
    fn rows_cols(&self) -> (usize, usize) {
        match self {
            GpuWeight::F32 { rows, cols, .. } | GpuWeight::Q8 { rows, cols, .. } => (*rows, *cols),
        }
    }
}

/// Counters for benchmarks and long-run checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    pub submits: u64,
    pub readbacks: u64,
    pub dispatches: u64,
    /// Activation buffers ever allocated (flat across captions once shapes repeat).
    pub buffers_created: usize,
    /// Host data copied in through a staging buffer (a caption's pixels).
    pub uploads: u64,
}

fn shape_err(message: String) -> crate::Error {
    gpu_err(message)
}

impl GpuBackend {
    /// Opens the best adapter (high performance first). Fails with a clear error where there is
    /// none, so callers can fall back to the CPU backend.
    pub async fn new() -> Result<Self> {
        let opened = device::open().await?;
        let dummy = opened.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("absent"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let recorder = RefCell::new(Recorder::new(&opened.device));
        Ok(Self {
            device: opened.device,
            queue: opened.queue,
            summary: opened.summary,
            limits: opened.limits,
            errors: opened.errors,
            kernels: Kernels::default(),
            pool: Rc::new(Pool::default()),
            recorder,
            dummy,
            staging: RefCell::default(),
            host_ids: RefCell::default(),
            readbacks: Cell::new(0),
            uploads: Cell::new(0),
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    pub fn stats(&self) -> GpuStats {
        let r = self.recorder.borrow();
        GpuStats {
            submits: r.submits,
            readbacks: self.readbacks.get(),
            dispatches: r.dispatches,
            buffers_created: self.pool.created(),
            uploads: self.uploads.get(),
        }
    }

    /// Submits what is recorded and waits for the GPU to finish it (benchmarks time with this).
    pub async fn finish(&self) -> Result<()> {
        let probe = self.alloc(1);
        self.read_bytes(&[(probe.raw(), 4)]).await.map(|_| ())
    }

    /// Ends the device as a driver reset would; what follows must fail cleanly, not panic.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.device.destroy();
    }

    fn alloc(&self, floats: usize) -> Rc<GpuBuffer> {
        self.pool.take(&self.device, bytes_of(floats))
    }

    fn tensor_of(&self, shape: Vec<usize>) -> GpuTensor {
        GpuTensor { buf: self.alloc(shape.iter().product()), shape }
    }

    /// The most bytes one buffer binding may hold on this adapter.
    fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    fn fits(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self.max_binding();
        if bytes > limit {
            return Err(gpu_err(format!("{what} needs {bytes} bytes in one buffer; this GPU allows {limit}")));
        }
        Ok(())
    }

    fn run(&self, kernel: Kernel, params: &[u32], buffers: &[&wgpu::Buffer], groups: [u32; 3]) {
        let compiled = self.kernels.get(&self.device, kernel);
        self.recorder.borrow_mut().dispatch(&self.device, &self.queue, &compiled, params, buffers, groups);
    }

    fn copy(&self, src: &wgpu::Buffer, src_float: usize, dst: &wgpu::Buffer, dst_float: usize, floats: usize) {
        if floats == 0 {
            return;
        }
        let mut r = self.recorder.borrow_mut();
        r.encoder(&self.device).copy_buffer_to_buffer(src, (src_float * 4) as u64, dst, (dst_float * 4) as u64, (floats * 4) as u64);
    }

    /// Host data into a pooled buffer, recorded in order with the ops around it (a queue write
    /// would land before earlier recorded reads of a recycled buffer).
    fn upload(&self, bytes: &[u8]) -> Rc<GpuBuffer> {
        let dst = self.pool.take(&self.device, (bytes.len().max(4) as u64).next_multiple_of(4));
        if !bytes.is_empty() {
            self.uploads.set(self.uploads.get() + 1);
            let size = (bytes.len() as u64).next_multiple_of(4);
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("upload"),
                size,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::MAP_WRITE,
                mapped_at_creation: true,
            });
            if let Ok(mut view) = staging.get_mapped_range_mut(..) {
                view.slice(..bytes.len()).copy_from_slice(bytes);
            }
            staging.unmap();
            let mut r = self.recorder.borrow_mut();
            r.encoder(&self.device).copy_buffer_to_buffer(&staging, 0, dst.raw(), 0, size);
            r.retire(staging);
        }
        dst
    }

    /// Copies each `(buffer, bytes)` into one staging buffer, submits, maps once.
    async fn read_bytes(&self, parts: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
        self.errors.check()?;
        let total: u64 = parts.iter().map(|p| p.1).sum::<u64>().max(4);
        let staging = self.staging.borrow_mut().get_mut(&total).and_then(Vec::pop).unwrap_or_else(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: total,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        {
            let mut r = self.recorder.borrow_mut();
            let mut at = 0;
            for (buf, bytes) in parts {
                r.encoder(&self.device).copy_buffer_to_buffer(buf, 0, &staging, at, *bytes);
                at += bytes;
            }
            r.flush(&self.queue);
        }
        self.readbacks.set(self.readbacks.get() + 1);
        let bytes = read_mapped(&self.device, &staging).await;
        self.errors.check()?;
        let bytes = bytes?;
        self.staging.borrow_mut().entry(total).or_default().push(staging);
        let mut out = Vec::with_capacity(parts.len());
        let mut at = 0usize;
        for (_, n) in parts {
            out.push(bytes[at..at + *n as usize].to_vec());
            at += *n as usize;
        }
        Ok(out)
    }

    /// `C[z] = alpha · A[z] · B[z] (+ bias)` through the strided GEMM kernel.
    #[allow(clippy::too_many_arguments)]
    fn gemm_f32(
        &self,
        (m, n, k): (usize, usize, usize),
        (z0, zs, heads): (usize, usize, usize),
        a: (&wgpu::Buffer, [usize; 5]),
        b: (&wgpu::Buffer, [usize; 5]),
        c: (&wgpu::Buffer, [usize; 4]),
        alpha: f32,
        bias: Option<&wgpu::Buffer>,
    ) {
        let (a_buf, [a_off, a_rs, a_cs, a_batch, a_head]) = a;
        let (b_buf, [b_off, b_rs, b_cs, b_batch, b_head]) = b;
        let (c_buf, [c_off, c_rs, c_batch, c_head]) = c;
        let p = [
            m, n, k, heads, a_off, a_rs, a_cs, a_batch, a_head, b_off, b_rs, b_cs, b_batch, b_head, c_rs, c_batch, c_head,
        ]
        .map(|v| v as u32);
        let mut params = p.to_vec();
        params.extend([alpha.to_bits(), bias.is_some() as u32, z0 as u32, c_off as u32]);
        self.run(
            Kernel::GemmF32,
            &params,
            &[a_buf, b_buf, bias.unwrap_or(&self.dummy), c_buf],
            [n.div_ceil(64) as u32, m.div_ceil(64) as u32, zs as u32],
        );
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Ids = GpuIds;
    type Weight = GpuWeight;

    fn name(&self) -> &'static str {
        "gpu"
    }

    fn weight(&self, t: &TensorView) -> Result<GpuWeight> {
        weights::upload_weight(self, t)
    }

    fn tensor(&self, t: &TensorView) -> Result<GpuTensor> {
        let data = t.to_f32()?;
        Ok(GpuTensor { buf: weights::owned_f32(self, t.name, &data)?, shape: t.shape.to_vec() })
    }

    fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<GpuTensor> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(shape_err(format!("upload of {} values as shape {shape:?}", data.len())));
        }
        self.fits("an input tensor", bytes_of(data.len()))?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(GpuTensor { buf: self.upload(&bytes), shape: shape.to_vec() })
    }

    fn ids(&self, ids: &[u32], batch: usize) -> Result<GpuIds> {
        if batch == 0 || !ids.len().is_multiple_of(batch) {
            return Err(shape_err(format!("{} ids do not split into {batch} rows", ids.len())));
        }
        let cached = self.host_ids.borrow().get(ids).cloned();
        let buf = match cached {
            Some(buf) => buf,
            None => {
                let buf = weights::filled(self, "ids", ids.len() * 4, ids.iter().flat_map(|v| v.to_le_bytes()))?;
                let mut cache = self.host_ids.borrow_mut();
                if cache.len() >= HOST_IDS_KEPT {
                    cache.clear();
                }
                cache.insert(ids.to_vec(), buf.clone());
                buf
            }
        };
        Ok(GpuIds { buf, batch, len: ids.len() / batch, host: Some(Rc::new(ids.to_vec())) })
    }

    fn linear(&self, x: &GpuTensor, w: &GpuWeight, bias: Option<&GpuTensor>) -> Result<GpuTensor> {
        let (rows, cols) = w.rows_cols();
        let k = *x.shape.last().unwrap_or(&0);
        if k != cols || k == 0 {
            return Err(shape_err(format!("linear: input has {k} features, weight expects {cols}")));
        }
        if bias.is_some_and(|b| b.len() != rows) {
            return Err(shape_err(format!("linear: bias does not have {rows} values")));
        }
        let m = x.len() / k;
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("non-empty") = rows;
        self.fits("a linear layer's output", bytes_of(m * rows))?;
        let out = self.tensor_of(shape);
        let bias_buf = bias.map(|b| b.buf.raw());
        match w {
            GpuWeight::Q8 { quants, scales, .. } => {
                let params = [m as u32, rows as u32, k as u32, bias.is_some() as u32];
                let buffers = [x.buf.raw(), quants.raw(), scales.raw(), bias_buf.unwrap_or(&self.dummy), out.buf.raw()];
                if m <= GEMV_MAX_ROWS {
                    self.run(Kernel::GemvQ8, &params, &buffers, groups_1d(rows.div_ceil(4)));
                } else {
                    self.run(Kernel::GemmQ8, &params, &buffers, [rows.div_ceil(64) as u32, m.div_ceil(64) as u32, 1]);
                }
            }
            GpuWeight::F32 { buf, .. } => self.gemm_f32(
                (m, rows, k),
                (0, 1, 1),
                (x.buf.raw(), [0, k, 1, 0, 0]),
                // Wᵀ read in place: element (kk, j) is W[j·K + kk].
                (buf.raw(), [0, 1, k, 0, 0]),
                (out.buf.raw(), [0, rows, 0, 0]),
                1.0,
                bias_buf,
            ),
        }
        Ok(out)
    }

    fn layer_norm(&self, x: &GpuTensor, gamma: &GpuTensor, beta: &GpuTensor, eps: f64) -> Result<GpuTensor> {
        let n = *x.shape.last().unwrap_or(&0);
        if n == 0 || gamma.len() != n || beta.len() != n {
            return Err(shape_err(format!("layer_norm over {n} features with {} weights", gamma.len())));
        }
        let rows = x.len() / n;
        let out = self.tensor_of(x.shape.clone());
        self.run(
            Kernel::LayerNorm,
            &[rows as u32, n as u32, (eps as f32).to_bits()],
            &[x.buf.raw(), gamma.buf.raw(), beta.buf.raw(), out.buf.raw()],
            groups_1d(rows),
        );
        Ok(out)
    }

    fn gelu(&self, x: &GpuTensor) -> Result<GpuTensor> {
        let out = self.tensor_of(x.shape.clone());
        self.run(Kernel::Gelu, &[x.len() as u32], &[x.buf.raw(), out.buf.raw()], groups_1d(x.len().div_ceil(256)));
        Ok(out)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        let (n, bl) = (a.len(), b.len());
        let b_tail: Vec<usize> = b.shape.iter().copied().skip_while(|&d| d == 1).collect();
        let same_tail = a.shape.ends_with(&b_tail);
        if bl == 0 || !n.is_multiple_of(bl) || !same_tail {
            return Err(shape_err(format!("add: {:?} + {:?}", a.shape, b.shape)));
        }
        let out = self.tensor_of(a.shape.clone());
        self.run(Kernel::Add, &[n as u32, bl as u32], &[a.buf.raw(), b.buf.raw(), out.buf.raw()], groups_1d(n.div_ceil(256)));
        Ok(out)
    }

    fn narrow_last(&self, x: &GpuTensor, start: usize, len: usize) -> Result<GpuTensor> {
        let d = *x.shape.last().unwrap_or(&0);
        if start + len > d {
            return Err(shape_err(format!("narrow_last: {start}+{len} past {d} columns")));
        }
        let rows = x.len() / d.max(1);
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("non-empty") = len;
        let out = self.tensor_of(shape);
        self.run(
            Kernel::Copy,
            &[rows as u32, 1, len as u32, start as u32, d as u32, 0, 1, 0],
            &[x.buf.raw(), out.buf.raw()],
            groups_1d((rows * len).div_ceil(256)),
        );
        Ok(out)
    }

    fn attention(&self, q: &GpuTensor, k: &GpuTensor, v: &GpuTensor, heads: usize, causal: bool) -> Result<GpuTensor> {
        let (&[b, sq, hd], &[bk, sk, hdk]) = (q.shape.as_slice(), k.shape.as_slice()) else {
            return Err(shape_err(format!("attention: q {:?} k {:?}", q.shape, k.shape)));
        };
        if heads == 0 || !hd.is_multiple_of(heads) || hdk != hd || k.shape != v.shape || (bk != b && bk != 1) || sk == 0 {
            return Err(shape_err(format!("attention: q {:?} k {:?} v {:?} heads {heads}", q.shape, k.shape, v.shape)));
        }
        let d = hd / heads;
        let out = self.tensor_of(vec![b, sq, hd]);
        // One (batch·head) score matrix per z; as many per pass as one binding holds.
        let per_z = sq * sk;
        let limit = self.max_binding() / 4;
        let chunk = ((limit / per_z as u64) as usize).min(b * heads).min(65_535);
        if chunk == 0 {
            return Err(gpu_err(format!("attention over {sq}×{sk} positions does not fit one GPU buffer")));
        }
        let scores = self.alloc(chunk * per_z);
        let key_batch = if bk == 1 { 0 } else { sk * hd };
        let mut z0 = 0;
        while z0 < b * heads {
            let zs = chunk.min(b * heads - z0);
            // The chunk's scores start at z0: offsets wrap in u32 so that index 0 is z0's.
            let back = (z0 * per_z).wrapping_neg() & 0xffff_ffff;
            self.gemm_f32(
                (sq, sk, d),
                (z0, zs, heads),
                (q.buf.raw(), [0, hd, 1, sq * hd, d]),
                (k.buf.raw(), [0, 1, hd, key_batch, d]),
                (scores.raw(), [back, sk, heads * per_z, per_z]),
                (d as f32).powf(-0.5),
                None,
            );
            self.run(
                Kernel::Softmax,
                &[(zs * sq) as u32, sk as u32, sq as u32, causal as u32, (sk.saturating_sub(sq)) as u32],
                &[scores.raw()],
                groups_1d(zs * sq),
            );
            self.gemm_f32(
                (sq, d, sk),
                (z0, zs, heads),
                (scores.raw(), [back, sk, 1, heads * per_z, per_z]),
                (v.buf.raw(), [0, hd, 1, key_batch, d]),
                (out.buf.raw(), [0, hd, sq * hd, d]),
                1.0,
                None,
            );
            z0 += zs;
        }
        Ok(out)
    }

    fn patch_embed(
        &self,
        pixels: &GpuTensor,
        weight: &GpuTensor,
        bias: &GpuTensor,
        class: &GpuTensor,
        position: &GpuTensor,
        patch: usize,
    ) -> Result<GpuTensor> {
        let &[c, h, w] = pixels.shape.as_slice() else {
            return Err(shape_err(format!("patch_embed: pixels {:?}", pixels.shape)));
        };
        let dim = weight.shape.first().copied().unwrap_or(0);
        if patch == 0 || !h.is_multiple_of(patch) || !w.is_multiple_of(patch) || weight.shape != [dim, c, patch, patch] {
            return Err(shape_err(format!("patch_embed: pixels {:?}, weight {:?}, patch {patch}", pixels.shape, weight.shape)));
        }
        let n = (h / patch) * (w / patch);
        let width = c * patch * patch;
        if class.len() != dim || position.len() != (n + 1) * dim || bias.len() != dim {
            return Err(shape_err(format!("patch_embed: class {:?} position {:?}", class.shape, position.shape)));
        }
        let cols = self.alloc(n * width);
        self.run(
            Kernel::Im2col,
            &[c as u32, h as u32, w as u32, patch as u32],
            &[pixels.buf.raw(), cols.raw()],
            groups_1d((n * width).div_ceil(256)),
        );
        let patches = self.alloc(n * dim);
        self.gemm_f32(
            (n, dim, width),
            (0, 1, 1),
            (cols.raw(), [0, width, 1, 0, 0]),
            (weight.buf.raw(), [0, 1, width, 0, 0]),
            (patches.raw(), [0, dim, 0, 0]),
            1.0,
            Some(bias.buf.raw()),
        );
        let out = self.tensor_of(vec![1, n + 1, dim]);
        self.run(
            Kernel::PatchFinish,
            &[n as u32, dim as u32],
            &[patches.raw(), class.buf.raw(), position.buf.raw(), out.buf.raw()],
            groups_1d(((n + 1) * dim).div_ceil(256)),
        );
        Ok(out)
    }

    fn embedding(&self, table: &GpuWeight, ids: &GpuIds) -> Result<GpuTensor> {
        let (rows, cols) = table.rows_cols();
        if let Some(bad) = ids.host.as_ref().and_then(|h| h.iter().find(|&&i| i as usize >= rows).copied()) {
            return Err(shape_err(format!("token id {bad} outside the embedding table of {rows} rows")));
        }
        let count = ids.batch * ids.len;
        let out = self.tensor_of(vec![ids.batch, ids.len, cols]);
        let params = [count as u32, cols as u32, rows as u32];
        let groups = groups_1d((count * cols).div_ceil(256));
        match table {
            GpuWeight::Q8 { quants, scales, .. } => {
                self.run(Kernel::EmbeddingQ8, &params, &[ids.buf.raw(), quants.raw(), scales.raw(), out.buf.raw()], groups)
            }
            GpuWeight::F32 { buf, .. } => self.run(Kernel::EmbeddingF32, &params, &[ids.buf.raw(), buf.raw(), out.buf.raw()], groups),
        }
        Ok(out)
    }

    fn last_position(&self, x: &GpuTensor) -> Result<GpuTensor> {
        let &[b, s, d] = x.shape.as_slice() else {
            return Err(shape_err(format!("last_position: {:?}", x.shape)));
        };
        let out = self.tensor_of(vec![b, 1, d]);
        for i in 0..b {
            self.copy(x.buf.raw(), (i * s + s - 1) * d, out.buf.raw(), i * d, d);
        }
        Ok(out)
    }

    fn append_seq(&self, cache: Option<&GpuTensor>, new: &GpuTensor) -> Result<GpuTensor> {
        let Some(cache) = cache else { return Ok(new.clone()) };
        let (&[b, s1, d], &[b2, s2, d2]) = (cache.shape.as_slice(), new.shape.as_slice()) else {
            return Err(shape_err(format!("append_seq: {:?} + {:?}", cache.shape, new.shape)));
        };
        if b != b2 || d != d2 {
            return Err(shape_err(format!("append_seq: {:?} + {:?}", cache.shape, new.shape)));
        }
        let s = s1 + s2;
        let out = self.tensor_of(vec![b, s, d]);
        for i in 0..b {
            self.copy(cache.buf.raw(), i * s1 * d, out.buf.raw(), i * s * d, s1 * d);
            self.copy(new.buf.raw(), i * s2 * d, out.buf.raw(), (i * s + s1) * d, s2 * d);
        }
        Ok(out)
    }

    fn select_batch(&self, x: &GpuTensor, rows: &[usize]) -> Result<GpuTensor> {
        let b = x.shape.first().copied().unwrap_or(0);
        if rows.iter().any(|&r| r >= b) {
            return Err(shape_err(format!("select_batch: rows {rows:?} outside batch {b}")));
        }
        let per = x.len() / b.max(1);
        let mut shape = x.shape.clone();
        shape[0] = rows.len();
        let out = self.tensor_of(shape);
        for (i, &r) in rows.iter().enumerate() {
            self.copy(x.buf.raw(), r * per, out.buf.raw(), i * per, per);
        }
        Ok(out)
    }

    fn argmax(&self, logits: &GpuTensor, suppress: Option<u32>) -> Result<GpuIds> {
        let vocab = *logits.shape.last().unwrap_or(&0);
        if vocab == 0 {
            return Err(shape_err("argmax over an empty dimension".into()));
        }
        let rows = logits.len() / vocab;
        let ids = self.alloc(rows);
        self.run(
            Kernel::Argmax,
            &[rows as u32, vocab as u32, suppress.unwrap_or(u32::MAX)],
            &[logits.buf.raw(), ids.raw()],
            groups_1d(rows),
        );
        Ok(GpuIds { buf: ids, batch: rows, len: 1, host: None })
    }

    async fn read_ids(&self, ids: &GpuIds) -> Result<Vec<u32>> {
        Ok(self.read_ids_many(std::slice::from_ref(ids)).await?.pop().unwrap_or_default())
    }

    async fn read_ids_many(&self, ids: &[GpuIds]) -> Result<Vec<Vec<u32>>> {
        let parts: Vec<(&wgpu::Buffer, u64)> = ids.iter().map(|i| (i.buf.raw(), ((i.batch * i.len) * 4) as u64)).collect();
        let bytes = self.read_bytes(&parts).await?;
        Ok(bytes.iter().map(|b| b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()).collect())
    }

    async fn read_f32(&self, x: &GpuTensor) -> Result<Vec<f32>> {
        let bytes = self.read_bytes(&[(x.buf.raw(), (x.len() * 4) as u64)]).await?;
        Ok(bytes[0].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// A few steps per readback: each map costs a GPU round trip, and real captions end after
    /// about ten tokens, so at most four steps are computed past [SEP].
    fn steps_per_read(&self) -> usize {
        5
    }
}
