//! One output buffer written by many rayon tasks at once, each into its own disjoint part (a
//! block of rows, a range of columns). Rust cannot prove the parts disjoint, so the tasks share a
//! raw pointer; the callers keep to their parts.

#[derive(Clone, Copy)]
pub(super) struct SharedOut(*mut f32);

// SAFETY: the pointer is only used through `at` and `slice`, whose callers give every task a part
// of the buffer no other task reads or writes.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub(super) fn new(out: &mut [f32]) -> Self {
        Self(out.as_mut_ptr())
    }

    /// The element at `offset`, as a pointer for a raw-pointer kernel. A method, so closures
    /// capture the whole Send + Sync wrapper rather than its raw field.
    pub(super) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }

    /// # Safety
    /// `start + len` must lie inside the buffer, and no other live reference may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [f32] {
        // SAFETY: upheld by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}
