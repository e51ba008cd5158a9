//! The backend's GPU memory. Activation buffers are recycled by size: a caption's shapes repeat
//! from one frame to the next, so after the first caption a camera loop allocates nothing. A
//! buffer goes back to the pool when its last handle drops; reusing it within the same recording
//! is safe because the GPU runs the recorded commands in order.
//!
//! Every buffer is destroyed explicitly, never left to a drop: wgpu's WebGPU backend does nothing
//! when a buffer drops, so its memory would stay until the JS garbage collector ran, and WebKit
//! counts it against the web process's limit (about 1.5 GB on iOS) all that time. Weights and other
//! owned buffers are destroyed when let go (after the next submit while the backend records:
//! destroying a buffer that recorded commands use fails that submit); pooled buffers and the
//! device when the backend and the last buffer are gone.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(super) const USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

/// Live GPU memory of one backend, readable after the backend is gone (to show it all went).
#[derive(Debug, Default)]
pub struct GpuMemory {
    buffers: Cell<usize>,
    bytes: Cell<u64>,
    device_destroyed: Cell<bool>,
}

impl GpuMemory {
    /// Buffers created and not yet destroyed.
    pub fn live_buffers(&self) -> usize {
        self.buffers.get()
    }

    /// Their bytes.
    pub fn live_bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// Whether the device has been destroyed (after the backend and its last buffer were dropped).
    pub fn device_destroyed(&self) -> bool {
        self.device_destroyed.get()
    }
}

pub(super) struct Pool {
    device: wgpu::Device,
    free: RefCell<HashMap<u64, Vec<(wgpu::Buffer, u64)>>>,
    /// Let go while recorded commands may still read them: destroyed after the next submit.
    retired: RefCell<Vec<wgpu::Buffer>>,
    /// False once the backend is gone: nothing will be submitted again, so whatever is let go
    /// from then on is destroyed at once.
    recording: Cell<bool>,
    /// Buffers ever created by the pool, to show a long run's memory stays flat.
    created: Cell<usize>,
    memory: Rc<GpuMemory>,
}

/// A device buffer: a pooled one returns to its pool on drop, an owned one (weights, ids) is
/// destroyed.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Rc<Pool>,
    pooled: bool,
    /// Never reused: bind groups are cached by the ids of the buffers they bind.
    id: u64,
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        let pool = &self.pool;
        if self.pooled && pool.recording.get() {
            pool.free.borrow_mut().entry(buffer.size()).or_default().push((buffer, self.id));
        } else {
            pool.retire(buffer);
        }
    }
}

/// Byte size of `n` 4-byte values as a buffer takes it (never zero: wgpu rejects empty bindings).
pub(super) fn bytes_of(n: usize) -> u64 {
    (n.max(1) * 4) as u64
}

impl Pool {
    pub fn new(device: &wgpu::Device) -> Rc<Self> {
        Rc::new(Self {
            device: device.clone(),
            free: RefCell::default(),
            retired: RefCell::default(),
            recording: Cell::new(true),
            created: Cell::new(0),
            memory: Rc::default(),
        })
    }

    /// Every buffer of the backend is made here, so that `memory` counts them all.
    pub fn create(&self, descriptor: &wgpu::BufferDescriptor) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(descriptor);
        self.memory.buffers.set(self.memory.buffers.get() + 1);
        self.memory.bytes.set(self.memory.bytes.get() + buffer.size());
        buffer
    }

    /// Frees `buffer`'s GPU memory now. Call once per buffer, when no unsubmitted command uses it.
    pub fn destroy(&self, buffer: &wgpu::Buffer) {
        buffer.destroy();
        self.memory.buffers.set(self.memory.buffers.get().saturating_sub(1));
        self.memory.bytes.set(self.memory.bytes.get().saturating_sub(buffer.size()));
    }

    pub fn take(self: &Rc<Self>, size: u64) -> Rc<GpuBuffer> {
        let reused = self.free.borrow_mut().get_mut(&size).and_then(Vec::pop);
        let (buffer, id) = reused.unwrap_or_else(|| {
            self.created.set(self.created.get() + 1);
            (
                self.create(&wgpu::BufferDescriptor {
                    label: Some("activation"),
                    size,
                    usage: USAGE,
                    mapped_at_creation: false,
                }),
                next_id(),
            )
        });
        // A recycled buffer keeps its id: the bind groups made for it are still valid.
        Rc::new(GpuBuffer { buffer: Some(buffer), pool: self.clone(), pooled: true, id })
    }

    /// A buffer made with [`Pool::create`] that is destroyed, not recycled, when let go.
    pub fn own(self: &Rc<Self>, buffer: wgpu::Buffer) -> Rc<GpuBuffer> {
        Rc::new(GpuBuffer { buffer: Some(buffer), pool: self.clone(), pooled: false, id: next_id() })
    }

    /// A buffer that recorded commands read, destroyed after their submit (or at once when the
    /// backend is gone).
    pub fn retire(&self, buffer: wgpu::Buffer) {
        if self.recording.get() {
            self.retired.borrow_mut().push(buffer);
        } else {
            self.destroy(&buffer);
        }
    }

    /// After a submit: what it read may go (work already submitted keeps a destroyed buffer
    /// alive until it completes; WebGPU and wgpu-core both defer the free).
    pub fn destroy_retired(&self) {
        let retired = std::mem::take(&mut *self.retired.borrow_mut());
        for buffer in &retired {
            self.destroy(buffer);
        }
    }

    /// The backend is gone (its unsubmitted commands with it): frees the recycled and retired
    /// buffers now, and every buffer still held as soon as it is let go.
    pub fn close(&self) {
        self.recording.set(false);
        self.destroy_retired();
        let free = std::mem::take(&mut *self.free.borrow_mut());
        for (buffer, _) in free.into_values().flatten() {
            self.destroy(&buffer);
        }
    }

    pub fn created(&self) -> usize {
        self.created.get()
    }

    pub fn memory(&self) -> Rc<GpuMemory> {
        self.memory.clone()
    }
}

impl Drop for Pool {
    /// The backend and every buffer are gone: the device goes too (a device lost before stays so).
    fn drop(&mut self) {
        self.close();
        self.device.destroy();
        self.memory.device_destroyed.set(true);
    }
}
