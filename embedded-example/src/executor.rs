//! A thread-mode executor that sleeps with WFI.
//!
//! embassy's own Cortex-M thread executor sleeps with WFE and wakes itself
//! with SEV. QEMU 7.2+ runs WFE as a yield, so an idle node would spin a host
//! core; WFI really halts the emulated CPU until an interrupt. We therefore
//! drive `embassy_executor::raw::Executor` ourselves: the pender only raises
//! a flag, and the loop sleeps when no task was woken.

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{raw, Spawner};

/// Set when a task was woken and the executor must poll again.
static WORK_PENDING: AtomicBool = AtomicBool::new(false);

/// Called by embassy whenever a task is woken (from a task or an interrupt).
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WORK_PENDING.store(true, Ordering::Release);
}

/// Creates the executor, lets `init` spawn the tasks, then runs it forever.
pub fn run(init: impl FnOnce(Spawner)) -> ! {
    let executor: &'static mut raw::Executor =
        cortex_m::singleton!(: raw::Executor = raw::Executor::new(core::ptr::null_mut()))
            .expect("the executor is created once");
    let executor: &'static raw::Executor = executor;
    init(executor.spawner());
    loop {
        WORK_PENDING.store(false, Ordering::Release);
        // SAFETY: `poll` is only ever called from this loop, in thread mode,
        // never reentrantly.
        unsafe { executor.poll() };
        // Masking interrupts closes the race between the check and the sleep:
        // WFI still wakes on an interrupt that PRIMASK holds back, which then
        // runs as soon as the mask is lifted.
        cortex_m::interrupt::free(|_| {
            if !WORK_PENDING.load(Ordering::Acquire) {
                cortex_m::asm::wfi();
            }
        });
    }
}
