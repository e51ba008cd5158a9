//! Device buffers for activations, recycled by size: a caption's shapes repeat from one frame to
//! the next, so after the first caption a camera loop allocates nothing. A buffer goes back to
//! the pool when its last handle drops; reusing it within the same recording is safe because the
//! GPU runs the recorded commands in order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};

pub(super) const USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

#[derive(Default)]
pub(super) struct Pool {
    free: RefCell<HashMap<u64, Vec<(wgpu::Buffer, u64)>>>,
    /// Buffers ever created by the pool, to show a long run's memory stays flat.
    created: std::cell::Cell<usize>,
}

/// A device buffer; returns itself to its pool on drop (weights have no pool and are freed).
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Option<Weak<Pool>>,
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

    pub(super) fn owned(buffer: wgpu::Buffer) -> Rc<Self> {
        Rc::new(Self { buffer: Some(buffer), pool: None, id: next_id() })
    }

    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let (Some(buffer), Some(pool)) = (self.buffer.take(), self.pool.as_ref().and_then(Weak::upgrade)) {
            pool.free.borrow_mut().entry(buffer.size()).or_default().push((buffer, self.id));
        }
    }
}

/// Byte size of `n` 4-byte values as a buffer takes it (never zero: wgpu rejects empty bindings).
pub(super) fn bytes_of(n: usize) -> u64 {
    (n.max(1) * 4) as u64
}

impl Pool {
    pub fn take(self: &Rc<Self>, device: &wgpu::Device, size: u64) -> Rc<GpuBuffer> {
        let reused = self.free.borrow_mut().get_mut(&size).and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            self.created.set(self.created.get() + 1);
            (device.create_buffer(&wgpu::BufferDescriptor { label: Some("activation"), size, usage: USAGE, mapped_at_creation: false }), next_id())
        });
        // A recycled buffer keeps its id: the bind groups made for it are still valid.
        Rc::new(GpuBuffer { buffer: Some(buffer.0), pool: Some(Rc::downgrade(self)), id: buffer.1 })
    }

    pub fn created(&self) -> usize {
        self.created.get()
    }
}
