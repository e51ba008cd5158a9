//! Records dispatches into one command encoder, each with its parameters in a slot of a uniform
//! arena bound with a dynamic offset; nothing is submitted until something must be read, the
//! arena is full, or the command buffer holds `submit_every` dispatches (iOS's WebGPU fails on
//! very large command buffers, so the bound is a setting, never a host wait).
//!
//! Bind groups are made once per (pipeline, buffers) and kept: the parameters live in the arena
//! at a dynamic offset, so a decoder step that binds the same buffers as the last one creates
//! none. Buffers are named by the id the pool gave them (ids are never reused).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::device::gpu_err;
use super::kernels::Compiled;
use super::pool::{GpuBuffer, Pool};
use crate::Result;

/// Bytes of one dispatch's parameter slot: the uniform offset alignment WebGPU guarantees.
const SLOT: usize = 256;
/// Dispatches per command buffer before the arena forces a submit.
const SLOTS: usize = 4096;
/// Dispatches per command buffer while profiling: two timestamps each, and a query set holds at
/// most 4096.
const PROFILED_SLOTS: usize = 2048;
/// Bind groups kept before the cache is emptied (a caption uses a few hundred distinct ones).
const BIND_GROUPS_KEPT: usize = 16_384;

/// Counters, cumulative over the backend's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub submits: u64,
    pub dispatches: u64,
    /// Buffer-to-buffer copies recorded (each ends the compute pass).
    pub copies: u64,
    pub bind_groups_created: u64,
    /// The most dispatches any one command buffer carried.
    pub max_dispatches_per_submit: u64,
}

/// GPU time per kernel from timestamp queries (only where the adapter has
/// `TIMESTAMP_QUERY_INSIDE_PASSES` and profiling was asked for).
struct Profiler {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    period_ns: f32,
    /// Kernel name of each dispatch in the open command buffer.
    names: Vec<&'static str>,
    totals: HashMap<&'static str, (u64, f64)>,
}

pub(super) struct Recorder {
    /// Dispatches share one open compute pass (wgpu orders them with barriers where one reads
    /// what another wrote); it is closed before a copy or a submit.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    params: Vec<u8>,
    arena: wgpu::Buffer,
    bind_groups: HashMap<(u32, Vec<u64>), wgpu::BindGroup>,
    /// Makes and destroys the recorder's buffers, and holds those retired until the next submit
    /// (upload staging buffers, weights let go: see pool.rs).
    pool: Rc<Pool>,
    /// Dispatches per command buffer at most (`None`: only the arena bounds it).
    submit_every: Option<usize>,
    in_buffer: u64,
    profiler: Option<Profiler>,
    pub stats: RecorderStats,
}

impl Recorder {
    pub fn new(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pool: Rc<Pool>,
        submit_every: Option<usize>,
        profile: bool,
    ) -> Self {
        let arena = pool.create(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (SLOT * SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let profiler =
            (profile && device.features().contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)).then(|| {
                let count = 2 * PROFILED_SLOTS as u32;
                let bytes = count as u64 * 8;
                Profiler {
                    queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("kernel times"),
                        ty: wgpu::QueryType::Timestamp,
                        count,
                    }),
                    resolve: pool.create(&wgpu::BufferDescriptor {
                        label: Some("timestamps"),
                        size: bytes,
                        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    }),
                    read: pool.create(&wgpu::BufferDescriptor {
                        label: Some("timestamps read"),
                        size: bytes,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    period_ns: queue.get_timestamp_period(),
                    names: Vec::new(),
                    totals: HashMap::new(),
                }
            });
        Self {
            pass: None,
            encoder: None,
            params: Vec::with_capacity(SLOT * 64),
            arena,
            bind_groups: HashMap::new(),
            pool,
            submit_every: match (submit_every.filter(|&n| n > 0), profiler.is_some()) {
                (n, true) => Some(n.unwrap_or(PROFILED_SLOTS).min(PROFILED_SLOTS)),
                (n, false) => n.map(|n| n.min(SLOTS)),
            },
            in_buffer: 0,
            profiler,
            stats: RecorderStats::default(),
        }
    }

    pub fn profiling(&self) -> bool {
        self.profiler.is_some()
    }

    /// The encoder for a copy: ends the open compute pass first.
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("caption") })
        })
    }

    /// A buffer-to-buffer copy in the stream of work (counted: a decoder step should have none).
    pub fn copy(
        &mut self,
        device: &wgpu::Device,
        src: &wgpu::Buffer,
        src_at: u64,
        dst: &wgpu::Buffer,
        dst_at: u64,
        bytes: u64,
    ) {
        self.encoder(device).copy_buffer_to_buffer(src, src_at, dst, dst_at, bytes);
        self.stats.copies += 1;
    }

    /// A copy into a readback buffer (the one transfer a read is for; not counted as work).
    pub fn read_copy(
        &mut self,
        device: &wgpu::Device,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        dst_at: u64,
        bytes: u64,
    ) {
        self.encoder(device).copy_buffer_to_buffer(src, 0, dst, dst_at, bytes);
    }

    /// Submits what was recorded, after writing its parameters (queue writes land before the
    /// commands of the next submit and after those of earlier ones, so the arena can be reused).
    pub fn flush(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) {
        self.pass = None;
        if let Some(mut encoder) = self.encoder.take() {
            if !self.params.is_empty() {
                queue.write_buffer(&self.arena, 0, &self.params);
            }
            let timed = self.profiler.as_ref().map_or(0, |p| p.names.len() as u32);
            if let Some(p) = self.profiler.as_ref().filter(|_| timed > 0) {
                encoder.resolve_query_set(&p.queries, 0..2 * timed, &p.resolve, 0);
                encoder.copy_buffer_to_buffer(&p.resolve, 0, &p.read, 0, 16 * timed as u64);
            }
            queue.submit([encoder.finish()]);
            self.params.clear();
            self.stats.submits += 1;
            self.stats.max_dispatches_per_submit = self.stats.max_dispatches_per_submit.max(self.in_buffer);
            self.in_buffer = 0;
            if timed > 0 {
                self.collect_times(device);
            }
        }
        self.pool.destroy_retired();
    }

    /// Waits for the profiled submit and adds each dispatch's GPU time to its kernel's total
    /// (benchmarks only: this blocks natively and does nothing in the browser).
    fn collect_times(&mut self, device: &wgpu::Device) {
        let Some(p) = self.profiler.as_mut() else { return };
        let names = std::mem::take(&mut p.names);
        #[cfg(not(target_arch = "wasm32"))]
        {
            let slice = p.read.slice(..16 * names.len() as u64);
            slice.map_async(wgpu::MapMode::Read, |_| {});
            if device.poll(wgpu::PollType::wait_indefinitely()).is_err() {
                return;
            }
            if let Ok(view) = slice.get_mapped_range() {
                let stamps: &[u64] = bytemuck::cast_slice(&view);
                for (i, name) in names.iter().enumerate() {
                    let ns = stamps[2 * i + 1].saturating_sub(stamps[2 * i]) as f64 * p.period_ns as f64;
                    let e = p.totals.entry(name).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += ns;
                }
            }
            p.read.unmap();
        }
        #[cfg(target_arch = "wasm32")]
        let _ = (device, names);
    }

    /// Per-kernel (dispatches, GPU ns) since the last call; empty without profiling.
    pub fn take_times(&mut self) -> Vec<(&'static str, u64, f64)> {
        let Some(p) = self.profiler.as_mut() else { return Vec::new() };
        let mut v: Vec<_> = p.totals.drain().map(|(k, (n, ns))| (k, n, ns)).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    /// Drops what was recorded and not submitted (the backend is going away), so that the buffers
    /// it uses may be destroyed.
    pub fn discard(&mut self) {
        self.pass = None;
        self.encoder = None;
        self.params.clear();
        self.in_buffer = 0;
        if let Some(p) = self.profiler.as_mut() {
            p.names.clear();
        }
    }

    /// Hands over a buffer that recorded commands read, to be destroyed after their submit.
    pub fn retire(&mut self, buffer: wgpu::Buffer) {
        self.pool.retire(buffer);
    }

    pub fn dispatch(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernel: &Compiled,
        params: &[u8],
        buffers: &[&Rc<GpuBuffer>],
        groups: [u32; 3],
    ) {
        debug_assert!(params.len() <= SLOT);
        debug_assert_eq!(buffers.len(), kernel.storage, "{}: buffers passed vs declared", kernel.name);
        let full = self.params.len() + SLOT > SLOT * SLOTS;
        if full || self.submit_every.is_some_and(|n| self.in_buffer as usize >= n) {
            self.flush(device, queue);
        }
        let offset = self.params.len();
        self.params.extend_from_slice(params);
        self.params.resize(offset + SLOT, 0);
        let key = (kernel.id, buffers.iter().map(|b| b.id()).collect::<Vec<_>>());
        if !self.bind_groups.contains_key(&key) {
            if self.bind_groups.len() >= BIND_GROUPS_KEPT {
                self.bind_groups.clear();
            }
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.arena,
                    offset: 0,
                    size: wgpu::BufferSize::new(params.len().next_multiple_of(16) as u64),
                }),
            }];
            entries.extend(
                buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: b.raw().as_entire_binding(),
                }),
            );
            let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.name),
                layout: &kernel.layout,
                entries: &entries,
            });
            self.stats.bind_groups_created += 1;
            self.bind_groups.insert(key.clone(), group);
        }
        if self.pass.is_none() {
            let encoder = self.encoder(device);
            let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            self.pass = Some(pass.forget_lifetime());
        }
        let group = &self.bind_groups[&key];
        let pass = self.pass.as_mut().expect("just opened");
        let timed = self.profiler.as_mut().map(|p| {
            let i = p.names.len() as u32;
            p.names.push(kernel.name);
            pass.write_timestamp(&p.queries, 2 * i);
            i
        });
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, group, &[offset as u32]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        if let (Some(i), Some(p)) = (timed, self.profiler.as_ref()) {
            pass.write_timestamp(&p.queries, 2 * i + 1);
        }
        self.stats.dispatches += 1;
        self.in_buffer += 1;
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.discard();
        self.pool.destroy(&self.arena);
        if let Some(p) = &self.profiler {
            self.pool.destroy(&p.resolve);
            self.pool.destroy(&p.read);
        }
    }
}

/// Workgroups for `n` groups of 1-D work: past 65535 they spill into y (the kernels fold it back).
pub(super) fn groups_1d(n: usize) -> [u32; 3] {
    let n = n.max(1);
    if n <= 65_535 {
        [n as u32, 1, 1]
    } else {
        [65_535, n.div_ceil(65_535) as u32, 1]
    }
}

type MapResult = std::result::Result<(), wgpu::BufferAsyncError>;

/// Resolves when wgpu calls back from `map_async`. In the browser the callback comes from the
/// event loop, so awaiting this never blocks; natively the device is polled first.
struct MapWait(Arc<Mutex<(Option<MapResult>, Option<Waker>)>>);

impl Future for MapWait {
    type Output = MapResult;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<MapResult> {
        let Ok(mut state) = self.0.lock() else { return Poll::Ready(Err(wgpu::BufferAsyncError)) };
        match state.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                state.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Maps a MAP_READ buffer and copies its bytes out.
pub(super) async fn read_mapped(device: &wgpu::Device, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let state = Arc::new(Mutex::new((None, None::<Waker>)));
    let callback_state = state.clone();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        if let Ok(mut s) = callback_state.lock() {
            s.0 = Some(r);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        }
    });
    #[cfg(not(target_arch = "wasm32"))]
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| gpu_err(format!("waiting for the GPU: {e}")))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    MapWait(state).await.map_err(|e| gpu_err(format!("reading back from the GPU: {e}")))?;
    let bytes = staging.get_mapped_range(..).map_err(|e| gpu_err(format!("reading back from the GPU: {e}")))?.to_vec();
    staging.unmap();
    Ok(bytes)
}
