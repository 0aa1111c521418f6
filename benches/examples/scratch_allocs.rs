use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tenure_benches::measure::Steady;
use tenure_benches::sim::Params;
use tenure_benches::tenure_side::TenureCluster;
thread_local! { static TRAP: Cell<bool> = const { Cell::new(false) }; static IN: Cell<bool> = const { Cell::new(false) }; }
struct A;
unsafe impl GlobalAlloc for A {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        hit(l.size());
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        hit(n);
        System.realloc(p, l, n)
    }
}
fn hit(size: usize) {
    if TRAP.with(|t| t.get()) && !IN.with(|i| i.get()) {
        IN.with(|i| i.set(true));
        eprintln!(
            "ALLOC {size}\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        IN.with(|i| i.set(false));
        TRAP.with(|t| t.set(false));
    }
}
#[global_allocator]
static ALLOC: A = A;
fn main() {
    let mut st = Steady::<TenureCluster>::leader_only(&Params::default(), 1);
    st.run_rounds(100);
    TRAP.with(|t| t.set(true));
    st.run_rounds(1);
    TRAP.with(|t| t.set(false));
}
