//! State shared by every thread but only touched while holding the GIL.
//!
//! The per-call path must not take a lock; the GIL already serialises every caller of the
//! selectors (free-threaded builds are not supported), so a cell guarded by it is enough.

use std::cell::UnsafeCell;

use pyo3::Python;

pub struct GilCell<T>(UnsafeCell<T>);

// SAFETY: every access goes through `get`/`get_mut`, which require a `Python` token, i.e. the
// caller holds the GIL, so no two threads touch the value at once.
unsafe impl<T: Send> Sync for GilCell<T> {}

impl<T> GilCell<T> {
    pub const fn new(value: T) -> Self {
        GilCell(UnsafeCell::new(value))
    }

    /// Shared access. Callers must not hold the reference across code that may run Python
    /// (which could re-enter and take `get_mut`).
    pub fn get<'a>(&'a self, _py: Python<'a>) -> &'a T {
        // SAFETY: the GIL is held (token), see the type's comment.
        unsafe { &*self.0.get() }
    }

    /// Exclusive access, with the same rule as `get`.
    #[allow(clippy::mut_from_ref)]
    pub fn get_mut<'a>(&'a self, _py: Python<'a>) -> &'a mut T {
        // SAFETY: the GIL is held, and no reference from `get` outlives a Python call.
        unsafe { &mut *self.0.get() }
    }
}
