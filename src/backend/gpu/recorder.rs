//! Recording: every op appends a compute pass to one command encoder, with its parameters in a
//! slot of a uniform arena; nothing is submitted until something must be read (or the arena is
//! full). A greedy caption is thus a handful of submits, and the only traffic back is token ids.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::device::gpu_err;
use super::kernels::Compiled;
use crate::Result;

/// Bytes of one dispatch's parameter slot: the largest uniform offset alignment WebGPU allows.
const SLOT: usize = 256;
/// What the kernels declare (`array<vec4<u32>, 8>`).
pub(super) const PARAM_WORDS: usize = 32;
/// Dispatches per command buffer before the arena forces a submit (a greedy caption of
/// BLIP-base records about 4000).
const SLOTS: usize = 8192;

pub(super) struct Recorder {
    /// Dispatches share one open compute pass (wgpu orders them with barriers where one reads
    /// what another wrote); it is closed before a copy or a submit.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    params: Vec<u8>,
    arena: wgpu::Buffer,
    /// Upload staging buffers whose copies are recorded but not yet submitted: destroyed right
    /// after the submit that reads them. Dropping is not enough in the browser, where wgpu leaves
    /// a dropped buffer's memory to the garbage collector (a frame's pixels per caption).
    retired: Vec<wgpu::Buffer>,
    pub submits: u64,
    pub dispatches: u64,
}

impl Recorder {
    pub fn new(device: &wgpu::Device) -> Self {
        let arena = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (SLOT * SLOTS) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self { pass: None, encoder: None, params: Vec::with_capacity(SLOT * 64), arena, retired: Vec::new(), submits: 0, dispatches: 0 }
    }

    /// The encoder for a copy: ends the open compute pass first.
    pub fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("caption") }))
    }

    /// Submits what was recorded, after writing its parameters (queue writes land before the
    /// commands of the next submit and after those of earlier ones, so the arena can be reused).
    pub fn flush(&mut self, queue: &wgpu::Queue) {
        self.pass = None;
        if let Some(encoder) = self.encoder.take() {
            if !self.params.is_empty() {
                queue.write_buffer(&self.arena, 0, &self.params);
            }
            queue.submit([encoder.finish()]);
            self.params.clear();
            self.submits += 1;
        }
        // Work already submitted keeps a destroyed buffer alive until it completes (WebGPU and
        // wgpu-core both defer the free), so this is safe as soon as the submit is queued.
        for buffer in self.retired.drain(..) {
            buffer.destroy();
        }
    }

    /// Hands over a buffer that recorded commands read, to be destroyed after their submit.
    pub fn retire(&mut self, buffer: wgpu::Buffer) {
        self.retired.push(buffer);
    }

    pub fn dispatch(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        kernel: &Compiled,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) {
        debug_assert!(params.len() <= PARAM_WORDS);
        if self.params.len() + SLOT > SLOT * SLOTS {
            self.flush(queue);
        }
        let offset = self.params.len();
        let mut slot = [0u32; PARAM_WORDS];
        slot[..params.len()].copy_from_slice(params);
        self.params.extend(slot.iter().flat_map(|w| w.to_le_bytes()));
        self.params.resize(offset + SLOT, 0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.arena,
                offset: offset as u64,
                size: std::num::NonZeroU64::new((PARAM_WORDS * 4) as u64),
            }),
        }];
        entries.extend(
            buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }),
        );
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &kernel.layout, entries: &entries });
        if self.pass.is_none() {
            let encoder = self.encoder(device);
            let pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
            self.pass = Some(pass.forget_lifetime());
        }
        let pass = self.pass.as_mut().expect("just opened");
        pass.set_pipeline(&kernel.pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        self.dispatches += 1;
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
