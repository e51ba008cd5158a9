//! The op interface on wgpu with our own WGSL kernels (`kernels/*.wgsl`): Vulkan, Metal or DX12
//! natively, the browser's WebGPU in wasm, the same code for both.
//!
//! Tensors are device buffers from a pool (or column views of them: `narrow_last` copies
//! nothing); ops record dispatches into one command encoder (see `recorder.rs`) and return at
//! once. Only `read_ids` / `read_f32` wait for the GPU, so a greedy caption (vision, cross K/V,
//! every step with its arg-max on the device) runs with no host round trip but the token ids.
//! f32 activations and no optional feature (no f16, no subgroups): every WebGPU adapter runs the
//! same kernels, within the spec's default limits.

mod device;
mod kernels;
mod params;
mod pool;
mod recorder;
mod weights;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

pub use device::AdapterSummary;
use device::{gpu_err, ErrorSlot};
use kernels::{Kernel, Kernels};
use params::epilogue;
pub use pool::GpuMemory;
use pool::{bytes_of, GpuBuffer, Pool};
pub use recorder::RecorderStats;
use recorder::{groups_1d, read_mapped, Recorder};

use super::{Backend, Mark};
use crate::weights::source::SourceTensor;
use crate::weights::TensorView;
use crate::Result;

/// Rows of X up to which linear layers use the GEMV kernel (decoder steps, beams).
const GEMV_MAX_ROWS: usize = 8;
/// Output columns one GEMV workgroup computes (`gemv.wgsl`'s COLS).
const GEMV_COLS: usize = 16;
/// Output tile of one GEMM workgroup (`gemm.wgsl`'s TM × TN).
const GEMM_TM: usize = 64;
const GEMM_TN: usize = 64;
/// Queries one workgroup of `attention.wgsl` takes (its BQ).
const ATTENTION_BQ: usize = 16;
/// Queries up to which attention runs as flash-decoding (keys split across workgroups).
const DECODE_MAX_QUERIES: usize = 8;
/// Keys per flash-decoding workgroup (= `attention_split.wgsl`'s workgroup size).
const DECODE_CHUNK: usize = 64;
/// Features per attention head the attention kernels take (BLIP's are 64).
const MAX_HEAD_SIZE: usize = 64;
/// Positions `attention_cached.wgsl` holds scores for (BLIP has 512).
const MAX_CACHED_POSITIONS: usize = 1024;

/// Which limits the device is opened with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GpuLimits {
    /// Everything the adapter offers.
    #[default]
    Adapter,
    /// The WebGPU spec's defaults, what the smallest device guarantees (an iPhone's, say).
    Default,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuOptions {
    pub limits: GpuLimits,
    /// Dispatches per command buffer at most; `None`: the adapter's default
    /// ([`default_submit_every`]).
    pub submit_every: Option<usize>,
    /// Keep wgpu's shader runtime checks natively (browsers always keep theirs).
    pub checked: bool,
    /// Time every dispatch with timestamp queries where the adapter can (benchmarks).
    pub profile: bool,
}

/// iOS's WebGPU (Metal underneath) has crashed on command buffers carrying thousands of
/// dispatches (WebKit bug 311598; llama.cpp throttles its submits for it): on Apple adapters a
/// caption is split into command buffers of this many dispatches. Elsewhere one command buffer
/// holds up to the recorder's arena.
pub const APPLE_SUBMIT_EVERY: usize = 256;

/// The submit size a backend uses on `adapter` when none is asked for.
pub fn default_submit_every(adapter: &AdapterSummary) -> Option<usize> {
    let apple = adapter.vendor == 0x106b || adapter.name.to_lowercase().contains("apple");
    apple.then_some(APPLE_SUBMIT_EVERY)
}

pub struct GpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    limits: wgpu::Limits,
    options: GpuOptions,
    submit_every: Option<usize>,
    errors: ErrorSlot,
    kernels: Kernels,
    pool: Rc<Pool>,
    recorder: RefCell<Recorder>,
    /// Bound where a kernel's optional input (a bias, a residual) is absent.
    dummy: Rc<GpuBuffer>,
    staging: RefCell<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// Host ids by content: a caption's position ids and prompt repeat every frame, and id
    /// buffers are never written after creation, so each is uploaded once.
    host_ids: RefCell<HashMap<Vec<u32>, Rc<GpuBuffer>>>,
    readbacks: Cell<u64>,
    uploads: Cell<u64>,
    marks: RefCell<Marks>,
}

/// Counter snapshots at the caption's phase marks.
#[derive(Default)]
struct Marks {
    vision_start: RecorderStats,
    vision: RecorderStats,
    step_start: RecorderStats,
    last_step: RecorderStats,
}

/// Distinct host id arrays kept (beam search's token rows vary; the cache is emptied when full).
const HOST_IDS_KEPT: usize = 512;

/// f32 values on the device: `shape`, last dimension contiguous, rows (everything before it)
/// `stride` floats apart from `offset`. Ops make dense tensors; `narrow_last` makes views.
#[derive(Clone)]
pub struct GpuTensor {
    buf: Rc<GpuBuffer>,
    shape: Vec<usize>,
    offset: usize,
    stride: usize,
}

impl GpuTensor {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn cols(&self) -> usize {
        self.shape.last().copied().unwrap_or(0)
    }

    fn rows(&self) -> usize {
        self.len() / self.cols().max(1)
    }

    fn is_dense(&self) -> bool {
        self.offset == 0 && self.stride == self.cols()
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
    F32 {
        buf: Rc<GpuBuffer>,
        rows: usize,
        cols: usize,
    },
    /// Q8_0 repacked: int8 values four to a u32 word, and the f16 block scales two to a word.
    Q8 {
        quants: Rc<GpuBuffer>,
        scales: Rc<GpuBuffer>,
        rows: usize,
        cols: usize,
    },
    /// Q4_0 or Q4_K repacked (`weights::q4_repack`): 4-bit values eight to a u32 word in order,
    /// and per 32 values an f32 step and offset (`value = step · q + offset`), which both formats
    /// reduce to exactly. The kernels quantize the activations as the CPU backend does against the
    /// same weights (Q8_0 blocks for Q4_0, Q8_K for Q4_K; see gemv_q4.wgsl and gemm_q4.wgsl), so
    /// both multiply the same integers. `q4_0` marks Q4_0 (offset = -8 · step).
    Q4 {
        quants: Rc<GpuBuffer>,
        scales: Rc<GpuBuffer>,
        q4_0: bool,
        rows: usize,
        cols: usize,
    },
}

/// How a linear kernel reads W (its `FMT` override constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WeightFormat {
    F32 = 0,
    Q8 = 1,
    Q4_0 = 2,
    Q4 = 3,
}

impl GpuWeight {
    fn format(&self) -> (WeightFormat, &Rc<GpuBuffer>, Option<&Rc<GpuBuffer>>) {
        match self {
            GpuWeight::F32 { buf, .. } => (WeightFormat::F32, buf, None),
            GpuWeight::Q8 { quants, scales, .. } => (WeightFormat::Q8, quants, Some(scales)),
            GpuWeight::Q4 { quants, scales, q4_0, .. } => {
                (if *q4_0 { WeightFormat::Q4_0 } else { WeightFormat::Q4 }, quants, Some(scales))
            }
        }
    }

    fn rows_cols(&self) -> (usize, usize) {
        match self {
            GpuWeight::F32 { rows, cols, .. } | GpuWeight::Q8 { rows, cols, .. } | GpuWeight::Q4 { rows, cols, .. } => {
                (*rows, *cols)
            }
        }
    }
}

/// A decoder layer's self-attention cache: `[batch][2][heads][capacity][head size]` (keys, then
/// values; each head's positions contiguous, as the attention kernel reads them). Allocated at
/// the first step, when the batch is known.
pub struct GpuCache {
    buf: Option<Rc<GpuBuffer>>,
    batch: usize,
    capacity: usize,
    width: usize,
    len: usize,
}

/// Counters for benchmarks and long-run checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    pub submits: u64,
    pub readbacks: u64,
    pub dispatches: u64,
    /// Buffer-to-buffer copies recorded by ops (not uploads or readbacks).
    pub copies: u64,
    pub bind_groups_created: u64,
    pub max_dispatches_per_submit: u64,
    /// Activation buffers ever allocated (flat across captions once shapes repeat).
    pub buffers_created: usize,
    /// Host data copied in through a staging buffer (a caption's pixels).
    pub uploads: u64,
}

/// What `--json --stats` reports of a caption: the work of its vision pass and of its last
/// decoder step, and how it was submitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuCaptionStats {
    pub vision_dispatches: u64,
    /// Of the last decoder step (forward and arg-max).
    pub token_dispatches: u64,
    pub token_buffer_copies: u64,
    pub token_bind_groups_created: u64,
    /// Command buffers submitted since the last caption began (its reads included).
    pub submits: u64,
    /// The most dispatches one command buffer has carried since the backend opened.
    pub max_dispatches_per_submit: u64,
}

fn shape_err(message: String) -> crate::Error {
    gpu_err(message)
}

fn diff(a: RecorderStats, b: RecorderStats) -> RecorderStats {
    RecorderStats {
        submits: a.submits - b.submits,
        dispatches: a.dispatches - b.dispatches,
        copies: a.copies - b.copies,
        bind_groups_created: a.bind_groups_created - b.bind_groups_created,
        max_dispatches_per_submit: a.max_dispatches_per_submit,
    }
}

impl GpuBackend {
    /// Opens the best adapter (high performance first) with its own limits. Fails with a clear
    /// error where there is none, so callers can fall back to the CPU backend.
    pub async fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default()).await
    }

    pub async fn with_options(options: GpuOptions) -> Result<Self> {
        let opened = device::open(&options).await?;
        let pool = Pool::new(&opened.device);
        let dummy = pool.own(pool.create(&wgpu::BufferDescriptor {
            label: Some("absent"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        }));
        let submit_every = options.submit_every.filter(|&n| n > 0).or_else(|| default_submit_every(&opened.summary));
        let recorder =
            RefCell::new(Recorder::new(&opened.device, &opened.queue, pool.clone(), submit_every, options.profile));
        Ok(Self {
            device: opened.device,
            queue: opened.queue,
            summary: opened.summary,
            limits: opened.limits,
            kernels: Kernels::new(options.checked),
            options,
            submit_every,
            errors: opened.errors,
            pool,
            recorder,
            dummy,
            staging: RefCell::default(),
            host_ids: RefCell::default(),
            readbacks: Cell::new(0),
            uploads: Cell::new(0),
            marks: RefCell::default(),
        })
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    pub fn options(&self) -> &GpuOptions {
        &self.options
    }

    /// Dispatches per command buffer at most (`None`: bounded only by the parameter arena).
    pub fn submit_every(&self) -> Option<usize> {
        self.submit_every
    }

    pub fn stats(&self) -> GpuStats {
        let r = self.recorder.borrow().stats;
        GpuStats {
            submits: r.submits,
            readbacks: self.readbacks.get(),
            dispatches: r.dispatches,
            copies: r.copies,
            bind_groups_created: r.bind_groups_created,
            max_dispatches_per_submit: r.max_dispatches_per_submit,
            buffers_created: self.pool.created(),
            uploads: self.uploads.get(),
        }
    }

    /// The last caption's vision pass and last decoder step (see [`GpuCaptionStats`]).
    pub fn caption_stats(&self) -> GpuCaptionStats {
        let m = self.marks.borrow();
        let r = self.recorder.borrow().stats;
        GpuCaptionStats {
            vision_dispatches: m.vision.dispatches,
            token_dispatches: m.last_step.dispatches,
            token_buffer_copies: m.last_step.copies,
            token_bind_groups_created: m.last_step.bind_groups_created,
            submits: r.submits - m.vision_start.submits,
            max_dispatches_per_submit: r.max_dispatches_per_submit,
        }
    }

    /// Whether dispatches are being timed (profiling asked for and the adapter can).
    pub fn profiling(&self) -> bool {
        self.recorder.borrow().profiling()
    }

    /// GPU time per kernel since the last call: (kernel, dispatches, nanoseconds), slowest first.
    pub fn kernel_times(&self) -> Vec<(&'static str, u64, f64)> {
        self.recorder.borrow_mut().take_times()
    }

    /// Submits what is recorded and waits for the GPU to finish it (benchmarks time with this).
    pub async fn finish(&self) -> Result<()> {
        let probe = self.alloc(1);
        self.read_bytes(&[(probe.raw(), 4)]).await.map(|_| ())
    }

    /// This backend's live GPU buffers and bytes, and whether its device is destroyed; the handle
    /// outlives the backend, to show that dropping it freed everything.
    pub fn memory(&self) -> Rc<GpuMemory> {
        self.pool.memory()
    }

    /// Ends the device as a driver reset would; what follows must fail cleanly, not panic.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        self.device.destroy();
    }

    fn alloc(&self, floats: usize) -> Rc<GpuBuffer> {
        self.pool.take(bytes_of(floats))
    }

    fn tensor_of(&self, shape: Vec<usize>) -> GpuTensor {
        let cols = shape.last().copied().unwrap_or(0);
        GpuTensor { buf: self.alloc(shape.iter().product()), shape, offset: 0, stride: cols }
    }

    /// The most bytes one buffer binding may hold on this device.
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

    fn run<K: Kernel>(
        &self,
        params: K::Params,
        constants: &[(&'static str, f64)],
        buffers: &[&Rc<GpuBuffer>],
        groups: [u32; 3],
    ) {
        let compiled = self.kernels.get::<K>(&self.device, constants);
        self.recorder.borrow_mut().dispatch(
            &self.device,
            &self.queue,
            &compiled,
            bytemuck::bytes_of(&params),
            buffers,
            groups,
        );
    }

    /// `x` as a dense tensor (a copy when it is a view).
    fn dense(&self, x: &GpuTensor) -> GpuTensor {
        if x.is_dense() {
            return x.clone();
        }
        let out = self.tensor_of(x.shape.clone());
        let (rows, cols) = (x.rows(), x.cols());
        self.copy_view((&x.buf, x.offset, [rows, 1, cols], [x.stride, 0, 1]), &out.buf, 0);
        out
    }

    /// Copies the strided view `[a, b, c]` of `src` (strides `sa, sb, sc` from `offset`) to
    /// `dst` from float `dst_off` on, contiguously.
    fn copy_view(
        &self,
        (src, offset, [a, b, c], [sa, sb, sc]): (&Rc<GpuBuffer>, usize, [usize; 3], [usize; 3]),
        dst: &Rc<GpuBuffer>,
        dst_off: usize,
    ) {
        let n = a * b * c;
        if n == 0 {
            return;
        }
        let p = params::Copy {
            a: a as u32,
            b: b as u32,
            c: c as u32,
            src_off: offset as u32,
            sa: sa as u32,
            sb: sb as u32,
            sc: sc as u32,
            dst_off: dst_off as u32,
        };
        self.run::<kernels::Copy>(p, &[], &[src, dst], groups_1d(n.div_ceil(256)));
    }

    /// Host data into a pooled buffer, recorded in order with the ops around it (a queue write
    /// would land before earlier recorded reads of a recycled buffer).
    fn upload(&self, bytes: &[u8]) -> Rc<GpuBuffer> {
        let dst = self.pool.take((bytes.len().max(4) as u64).next_multiple_of(4));
        if !bytes.is_empty() {
            self.uploads.set(self.uploads.get() + 1);
            let size = (bytes.len() as u64).next_multiple_of(4);
            let staging = self.pool.create(&wgpu::BufferDescriptor {
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
            r.copy(&self.device, &staging, 0, dst.raw(), 0, size);
            r.retire(staging);
        }
        dst
    }

    /// Copies each `(buffer, bytes)` into one staging buffer, submits, maps once.
    async fn read_bytes(&self, parts: &[(&wgpu::Buffer, u64)]) -> Result<Vec<Vec<u8>>> {
        self.errors.check()?;
        let total: u64 = parts.iter().map(|p| p.1).sum::<u64>().max(4);
        let staging = self.staging.borrow_mut().get_mut(&total).and_then(Vec::pop).unwrap_or_else(|| {
            self.pool.create(&wgpu::BufferDescriptor {
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
                r.read_copy(&self.device, buf, &staging, at, *bytes);
                at += bytes;
            }
            r.flush(&self.device, &self.queue);
        }
        self.readbacks.set(self.readbacks.get() + 1);
        let read = read_mapped(&self.device, &staging).await;
        // The GPU's own error (validation, loss) says more than the failed map it causes.
        let bytes = match self.errors.check().and(read) {
            Ok(bytes) => bytes,
            Err(e) => {
                // Submitted already, so it may go; a failed read is not worth keeping a buffer for.
                self.pool.destroy(&staging);
                return Err(e);
            }
        };
        self.staging.borrow_mut().entry(total).or_default().push(staging);
        let mut out = Vec::with_capacity(parts.len());
        let mut at = 0usize;
        for (_, n) in parts {
            out.push(bytes[at..at + *n as usize].to_vec());
            at += *n as usize;
        }
        Ok(out)
    }

    /// `Y = gelu?(X · Wᵀ + bias) + residual`, X `[m, k]` (rows `x.1` floats apart from `x.2`),
    /// W as `wq`/`ws` (Q8_0 quants and scales, or f32 values and nothing).
    #[allow(clippy::too_many_arguments)]
    fn linear_raw(
        &self,
        (m, n, k): (usize, usize, usize),
        x: (&Rc<GpuBuffer>, usize, usize),
        (wq, ws, fmt): (&Rc<GpuBuffer>, &Rc<GpuBuffer>, WeightFormat),
        bias: Option<&Rc<GpuBuffer>>,
        gelu: bool,
        residual: Option<&Rc<GpuBuffer>>,
        y: &Rc<GpuBuffer>,
    ) {
        let mut flags = 0;
        if bias.is_some() {
            flags |= epilogue::BIAS;
        }
        if gelu {
            flags |= epilogue::GELU;
        }
        if residual.is_some() {
            flags |= epilogue::RESIDUAL;
        }
        let p =
            params::Linear { m: m as u32, n: n as u32, k: k as u32, x_off: x.2 as u32, x_stride: x.1 as u32, flags };
        let buffers = [x.0, wq, ws, bias.unwrap_or(&self.dummy), residual.unwrap_or(&self.dummy), y];
        let gemv = groups_1d(n.div_ceil(GEMV_COLS));
        let gemm = [n.div_ceil(GEMM_TN) as u32, m.div_ceil(GEMM_TM) as u32, 1];
        match fmt {
            WeightFormat::F32 | WeightFormat::Q8 => {
                let q8 = if fmt == WeightFormat::Q8 { 1.0 } else { 0.0 };
                if m <= GEMV_MAX_ROWS {
                    self.run::<kernels::Gemv>(p, &[("ROWS", m as f64), ("Q8", q8)], &buffers, gemv);
                } else {
                    self.run::<kernels::Gemm>(p, &[("Q8", q8)], &buffers, gemm);
                }
            }
            WeightFormat::Q4_0 | WeightFormat::Q4 => {
                let fmt = fmt as u32 as f64;
                if m <= GEMV_MAX_ROWS {
                    self.run::<kernels::GemvQ4>(p, &[("ROWS", m as f64), ("FMT", fmt)], &buffers, gemv);
                } else {
                    self.run::<kernels::GemmQ4>(p, &[("FMT", fmt)], &buffers, gemm);
                }
            }
        }
    }
}

impl Drop for GpuBackend {
    /// Frees the GPU memory now rather than at the next garbage collection (see pool.rs). The
    /// weights usually outlive the backend (`Captioner` drops its backend first): each is
    /// destroyed as it drops, and the device with the last of them.
    fn drop(&mut self) {
        let recorder = self.recorder.get_mut();
        recorder.discard();
        self.pool.close();
        for buffer in self.staging.get_mut().drain().flat_map(|(_, v)| v) {
            self.pool.destroy(&buffer);
        }
        self.host_ids.get_mut().clear();
    }
}

impl Backend for GpuBackend {
    type Tensor = GpuTensor;
    type Ids = GpuIds;
    type Weight = GpuWeight;
    type Cache = GpuCache;

    fn name(&self) -> &'static str {
        "gpu"
    }

    fn weight(&self, t: &TensorView) -> Result<GpuWeight> {
        weights::upload_weight(self, t)
    }

    fn weight_stacked<'a>(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        parts: &mut dyn Iterator<Item = Result<SourceTensor<'a>>>,
    ) -> Result<GpuWeight> {
        weights::upload_stacked(self, name, rows, cols, parts)
    }

    fn tensor(&self, t: &TensorView) -> Result<GpuTensor> {
        let data = t.to_f32()?;
        let cols = t.shape.last().copied().unwrap_or(0);
        Ok(GpuTensor {
            buf: weights::owned_f32(self, t.name, &data)?,
            shape: t.shape.to_vec(),
            offset: 0,
            stride: cols,
        })
    }

    fn upload_f32(&self, data: &[f32], shape: &[usize]) -> Result<GpuTensor> {
        if shape.iter().product::<usize>() != data.len() {
            return Err(shape_err(format!("upload of {} values as shape {shape:?}", data.len())));
        }
        self.fits("an input tensor", bytes_of(data.len()))?;
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let cols = shape.last().copied().unwrap_or(0);
        Ok(GpuTensor { buf: self.upload(&bytes), shape: shape.to_vec(), offset: 0, stride: cols })
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
        self.linear_fused(x, w, bias, false, None)
    }

    fn linear_fused(
        &self,
        x: &GpuTensor,
        w: &GpuWeight,
        bias: Option<&GpuTensor>,
        gelu: bool,
        residual: Option<&GpuTensor>,
    ) -> Result<GpuTensor> {
        let (rows, cols) = w.rows_cols();
        let k = x.cols();
        if k != cols || k == 0 {
            return Err(shape_err(format!("linear: input has {k} features, weight expects {cols}")));
        }
        if bias.is_some_and(|b| b.len() != rows) {
            return Err(shape_err(format!("linear: bias does not have {rows} values")));
        }
        let m = x.rows();
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("non-empty") = rows;
        if residual.is_some_and(|r| r.shape != shape) {
            return Err(shape_err(format!(
                "linear: residual {:?} for an output {shape:?}",
                residual.map(|r| &r.shape)
            )));
        }
        self.fits("a linear layer's output", bytes_of(m * rows))?;
        let out = self.tensor_of(shape);
        let bias = bias.map(|b| self.dense(b));
        let residual = residual.map(|r| self.dense(r));
        let (fmt, wq, ws) = w.format();
        if fmt == WeightFormat::Q4 && m <= GEMV_MAX_ROWS && m * (k / 256) > 256 {
            // gemv_q4.wgsl keeps the Q8_K scales of every row's 256-blocks in 256 workgroup slots.
            return Err(shape_err(format!(
                "linear: Q4_K rows of {k} values for {m} rows exceed the GEMV's activation scales"
            )));
        }
        let weight = (wq, ws.unwrap_or(&self.dummy), fmt);
        self.linear_raw(
            (m, rows, k),
            (&x.buf, x.stride, x.offset),
            weight,
            bias.as_ref().map(|b| &b.buf),
            gelu,
            residual.as_ref().map(|r| &r.buf),
            &out.buf,
        );
        Ok(out)
    }

    fn layer_norm(&self, x: &GpuTensor, gamma: &GpuTensor, beta: &GpuTensor, eps: f64) -> Result<GpuTensor> {
        let n = x.cols();
        if n == 0 || gamma.len() != n || beta.len() != n {
            return Err(shape_err(format!("layer_norm over {n} features with {} weights", gamma.len())));
        }
        let x = self.dense(x);
        let rows = x.rows();
        let out = self.tensor_of(x.shape.clone());
        let p = params::LayerNorm { rows: rows as u32, n: n as u32, eps: eps as f32 };
        self.run::<kernels::LayerNorm>(p, &[], &[&x.buf, &gamma.buf, &beta.buf, &out.buf], groups_1d(rows));
        Ok(out)
    }

    fn gelu(&self, x: &GpuTensor) -> Result<GpuTensor> {
        let x = self.dense(x);
        let out = self.tensor_of(x.shape.clone());
        let n = x.len();
        self.run::<kernels::Gelu>(
            params::Elementwise { n: n as u32, b_len: 0 },
            &[],
            &[&x.buf, &out.buf],
            groups_1d(n.div_ceil(256)),
        );
        Ok(out)
    }

    fn add(&self, a: &GpuTensor, b: &GpuTensor) -> Result<GpuTensor> {
        let (n, bl) = (a.len(), b.len());
        let b_tail: Vec<usize> = b.shape.iter().copied().skip_while(|&d| d == 1).collect();
        let same_tail = a.shape.ends_with(&b_tail);
        if bl == 0 || !n.is_multiple_of(bl) || !same_tail {
            return Err(shape_err(format!("add: {:?} + {:?}", a.shape, b.shape)));
        }
        let (a, b) = (self.dense(a), self.dense(b));
        let out = self.tensor_of(a.shape.clone());
        let p = params::Elementwise { n: n as u32, b_len: bl as u32 };
        self.run::<kernels::Add>(p, &[], &[&a.buf, &b.buf, &out.buf], groups_1d(n.div_ceil(256)));
        Ok(out)
    }

    fn narrow_last(&self, x: &GpuTensor, start: usize, len: usize) -> Result<GpuTensor> {
        let d = x.cols();
        if start + len > d || len == 0 {
            return Err(shape_err(format!("narrow_last: {start}+{len} past {d} columns")));
        }
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("non-empty") = len;
        Ok(GpuTensor { buf: x.buf.clone(), shape, offset: x.offset + start, stride: x.stride })
    }

    fn attention(&self, q: &GpuTensor, k: &GpuTensor, v: &GpuTensor, heads: usize, causal: bool) -> Result<GpuTensor> {
        let (&[b, sq, hd], &[bk, sk, hdk]) = (q.shape.as_slice(), k.shape.as_slice()) else {
            return Err(shape_err(format!("attention: q {:?} k {:?}", q.shape, k.shape)));
        };
        if heads == 0
            || !hd.is_multiple_of(heads)
            || hdk != hd
            || k.shape != v.shape
            || (bk != b && bk != 1)
            || sk == 0
            || sq == 0
        {
            return Err(shape_err(format!("attention: q {:?} k {:?} v {:?} heads {heads}", q.shape, k.shape, v.shape)));
        }
        let d = hd / heads;
        if d > MAX_HEAD_SIZE {
            return Err(shape_err(format!(
                "attention: heads of {d} features (the GPU kernels take up to {MAX_HEAD_SIZE})"
            )));
        }
        let out = self.tensor_of(vec![b, sq, hd]);
        let key_batch = |t: &GpuTensor| if bk == 1 { 0 } else { (sk * t.stride) as u32 };
        let mut p = params::Attention {
            batch: b as u32,
            heads: heads as u32,
            sq: sq as u32,
            sk: sk as u32,
            d: d as u32,
            q_off: q.offset as u32,
            q_stride: q.stride as u32,
            q_batch: (sq * q.stride) as u32,
            k_off: k.offset as u32,
            k_stride: k.stride as u32,
            k_batch: key_batch(k),
            v_off: v.offset as u32,
            v_stride: v.stride as u32,
            v_batch: key_batch(v),
            causal: causal as u32,
            scale: (d as f32).powf(-0.5),
            chunk: 0,
            splits: 1,
        };
        if sq <= DECODE_MAX_QUERIES {
            // Flash-decoding: each workgroup takes a chunk of keys for every query of one
            // (batch, head), then a merge combines the chunks' partial softmaxes.
            let splits = sk.div_ceil(DECODE_CHUNK);
            p.chunk = DECODE_CHUNK as u32;
            p.splits = splits as u32;
            self.fits("attention partials", bytes_of(b * heads * sq * splits * (d + 2)))?;
            let partials = self.alloc(b * heads * sq * splits * (d + 2));
            self.run::<kernels::AttentionSplit>(
                p,
                &[],
                &[&q.buf, &k.buf, &v.buf, &partials],
                [splits as u32, heads as u32, b as u32],
            );
            self.run::<kernels::AttentionMerge>(p, &[], &[&partials, &out.buf], [sq as u32, heads as u32, b as u32]);
        } else {
            self.run::<kernels::Attention>(
                p,
                &[],
                &[&q.buf, &k.buf, &v.buf, &out.buf],
                [sq.div_ceil(ATTENTION_BQ) as u32, heads as u32, b as u32],
            );
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
        if patch == 0 || !h.is_multiple_of(patch) || !w.is_multiple_of(patch) || weight.shape != [dim, c, patch, patch]
        {
            return Err(shape_err(format!(
                "patch_embed: pixels {:?}, weight {:?}, patch {patch}",
                pixels.shape, weight.shape
            )));
        }
        let n = (h / patch) * (w / patch);
        let width = c * patch * patch;
        if class.len() != dim || position.len() != (n + 1) * dim || bias.len() != dim {
            return Err(shape_err(format!("patch_embed: class {:?} position {:?}", class.shape, position.shape)));
        }
        let (pixels, weight) = (self.dense(pixels), self.dense(weight));
        let cols = self.alloc(n * width);
        let p = params::Im2col { c: c as u32, h: h as u32, w: w as u32, p: patch as u32 };
        self.run::<kernels::Im2col>(p, &[], &[&pixels.buf, &cols], groups_1d((n * width).div_ceil(256)));
        let patches = self.alloc(n * dim);
        self.linear_raw(
            (n, dim, width),
            (&cols, width, 0),
            (&weight.buf, &self.dummy, WeightFormat::F32),
            Some(&bias.buf),
            false,
            None,
            &patches,
        );
        let out = self.tensor_of(vec![1, n + 1, dim]);
        let p = params::PatchFinish { patches: n as u32, d: dim as u32 };
        self.run::<kernels::PatchFinish>(
            p,
            &[],
            &[&patches, &class.buf, &position.buf, &out.buf],
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
        let p = params::Embedding { count: count as u32, cols: cols as u32, rows: rows as u32 };
        let groups = groups_1d((count * cols).div_ceil(256));
        match table {
            GpuWeight::Q8 { quants, scales, .. } => {
                self.run::<kernels::EmbeddingQ8>(p, &[], &[&ids.buf, &out.buf, quants, scales], groups)
            }
            GpuWeight::Q4 { quants, scales, .. } => {
                self.run::<kernels::EmbeddingQ4>(p, &[], &[&ids.buf, &out.buf, quants, scales], groups)
            }
            GpuWeight::F32 { buf, .. } => self.run::<kernels::EmbeddingF32>(p, &[], &[&ids.buf, &out.buf, buf], groups),
        }
        Ok(out)
    }

    fn last_position(&self, x: &GpuTensor) -> Result<GpuTensor> {
        let &[b, s, d] = x.shape.as_slice() else {
            return Err(shape_err(format!("last_position: {:?}", x.shape)));
        };
        if s == 1 {
            return Ok(x.clone());
        }
        let out = self.tensor_of(vec![b, 1, d]);
        self.copy_view((&x.buf, x.offset + (s - 1) * x.stride, [b, 1, d], [s * x.stride, 0, 1]), &out.buf, 0);
        Ok(out)
    }

    fn new_cache(&self, capacity: usize, width: usize) -> Result<GpuCache> {
        Ok(GpuCache { buf: None, batch: 0, capacity, width, len: 0 })
    }

    fn cached_attention(&self, qkv: &GpuTensor, cache: &mut GpuCache, heads: usize) -> Result<GpuTensor> {
        let &[b, s, w3] = qkv.shape.as_slice() else {
            return Err(shape_err(format!("cached_attention: qkv {:?}", qkv.shape)));
        };
        let width = cache.width;
        if w3 != 3 * width || heads == 0 || !width.is_multiple_of(heads) || s == 0 {
            return Err(shape_err(format!("cached_attention: qkv {:?} for width {width}, {heads} heads", qkv.shape)));
        }
        if width / heads > MAX_HEAD_SIZE || cache.capacity > MAX_CACHED_POSITIONS {
            return Err(shape_err(format!(
                "cached_attention: heads of {} features, {} positions (the GPU kernel takes {MAX_HEAD_SIZE}, {MAX_CACHED_POSITIONS})",
                width / heads,
                cache.capacity
            )));
        }
        if cache.len + s > cache.capacity {
            return Err(shape_err(format!(
                "cached_attention: {} positions past a cache of {}",
                cache.len + s,
                cache.capacity
            )));
        }
        let buf = match &cache.buf {
            Some(buf) if cache.batch == b => buf.clone(),
            Some(_) => {
                return Err(shape_err(format!("cached_attention: batch {b} for a cache of batch {}", cache.batch)))
            }
            None => {
                self.fits("a self-attention cache", bytes_of(b * 2 * cache.capacity * width))?;
                let buf = self.alloc(b * 2 * cache.capacity * width);
                cache.buf = Some(buf.clone());
                cache.batch = b;
                buf
            }
        };
        let qkv = self.dense(qkv);
        let out = self.tensor_of(vec![b, s, width]);
        let d = width / heads;
        let p = params::CachedAttention {
            batch: b as u32,
            heads: heads as u32,
            s: s as u32,
            len: cache.len as u32,
            capacity: cache.capacity as u32,
            d: d as u32,
            scale: (d as f32).powf(-0.5),
        };
        self.run::<kernels::CachedAttention>(p, &[], &[&qkv.buf, &buf, &out.buf], [heads as u32, b as u32, 1]);
        cache.len += s;
        Ok(out)
    }

    fn reorder_cache(&self, cache: &mut GpuCache, parents: &[usize]) -> Result<()> {
        let Some(src) = cache.buf.clone() else { return Ok(()) };
        if parents.len() != cache.batch || parents.iter().any(|&p| p >= cache.batch) {
            return Err(shape_err(format!("reorder_cache: parents {parents:?} for a batch of {}", cache.batch)));
        }
        let per = 2 * cache.capacity * cache.width;
        let dst = self.alloc(cache.batch * per);
        for (i, &parent) in parents.iter().enumerate() {
            self.copy_view((&src, parent * per, [1, 1, per], [0, 0, 1]), &dst, i * per);
        }
        cache.buf = Some(dst);
        Ok(())
    }

    fn argmax(&self, logits: &GpuTensor, suppress: Option<u32>) -> Result<GpuIds> {
        let vocab = logits.cols();
        if vocab == 0 {
            return Err(shape_err("argmax over an empty dimension".into()));
        }
        let logits = self.dense(logits);
        let rows = logits.rows();
        let ids = self.alloc(rows);
        let p = params::Argmax { rows: rows as u32, vocab: vocab as u32, suppress: suppress.unwrap_or(u32::MAX) };
        self.run::<kernels::Argmax>(p, &[], &[&logits.buf, &ids], groups_1d(rows));
        Ok(GpuIds { buf: ids, batch: rows, len: 1, host: None })
    }

    async fn read_ids(&self, ids: &GpuIds) -> Result<Vec<u32>> {
        Ok(self.read_ids_many(std::slice::from_ref(ids)).await?.pop().unwrap_or_default())
    }

    async fn read_ids_many(&self, ids: &[GpuIds]) -> Result<Vec<Vec<u32>>> {
        let parts: Vec<(&wgpu::Buffer, u64)> =
            ids.iter().map(|i| (i.buf.raw(), ((i.batch * i.len) * 4) as u64)).collect();
        let bytes = self.read_bytes(&parts).await?;
        Ok(bytes
            .iter()
            .map(|b| b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            .collect())
    }

    async fn read_f32(&self, x: &GpuTensor) -> Result<Vec<f32>> {
        let x = self.dense(x);
        let bytes = self.read_bytes(&[(x.buf.raw(), (x.len() * 4) as u64)]).await?;
        Ok(bytes[0].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    fn mark(&self, what: Mark) {
        let now = self.recorder.borrow().stats;
        let mut m = self.marks.borrow_mut();
        match what {
            Mark::Vision => m.vision_start = now,
            Mark::Decode => {
                m.vision = diff(now, m.vision_start);
                m.step_start = now;
            }
            Mark::Step => {
                m.last_step = diff(now, m.step_start);
                m.step_start = now;
            }
        }
    }

    /// A few steps per readback: each map costs a GPU round trip, and real captions end after
    /// about ten tokens, so at most four steps are computed past [SEP].
    fn steps_per_read(&self) -> usize {
        5
    }
}
