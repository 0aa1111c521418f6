//! A counting global allocator.
//!
//! Every binary of this crate (the `compare` report and the divan benches)
//! installs [`CountingAlloc`] as its `#[global_allocator]`, so that the
//! measurement code can read how many heap allocations a piece of work made
//! and how many bytes are live on the heap.

//!
//! The counters are per thread (the harness is single-threaded, and test
//! threads running side by side must not see each other's allocations).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, plus per-thread counters.
pub struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
}

fn note(allocs: u64, bytes: i64) {
    // `try_with`: never fail inside the allocator, even during thread exit.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + allocs));
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + bytes));
}

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(1, layout.size() as i64);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(1, layout.size() as i64);
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(0, -(layout.size() as i64));
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A realloc is an allocation as far as the hot path is concerned.
        note(1, new_size as i64 - layout.size() as i64);
        System.realloc(ptr, layout, new_size)
    }
}

/// Number of allocations (including reallocations) this thread made so far.
pub fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Bytes allocated minus bytes freed by this thread so far.
pub fn live_bytes() -> i64 {
    LIVE_BYTES.with(Cell::get)
}

/// Allocations made by `f` (counts only if [`CountingAlloc`] is the global
/// allocator of the running binary).
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = allocations();
    let r = f();
    (r, allocations() - before)
}
