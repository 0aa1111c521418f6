//! The thread-mode task loop: polls embassy's tasks and sleeps with WFI.
//!
//! embassy's own Cortex-M thread-mode loop sleeps with WFE and wakes itself
//! with SEV. QEMU 7.2+ runs WFE as a yield, so an idle node would spin a host
//! core; WFI really halts the emulated CPU until an interrupt. We therefore
//! poll embassy's task queue (`embassy_executor::raw::Executor`) from our own
//! loop: the pender only raises a flag, and the loop sleeps when no task was
//! woken.

use core::sync::atomic::{AtomicBool, Ordering};

use embassy_executor::{raw, Spawner};

/// Set when a task was woken and the task queue must be polled again.
static WORK_PENDING: AtomicBool = AtomicBool::new(false);

/// Called by embassy whenever a task is woken (from a task or an interrupt).
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    WORK_PENDING.store(true, Ordering::Release);
}

/// Creates the task queue, lets `init` spawn the tasks, then polls them
/// forever, sleeping with WFI while none is woken.
pub fn run(init: impl FnOnce(Spawner)) -> ! {
    let tasks: &'static mut raw::Executor =
        cortex_m::singleton!(: raw::Executor = raw::Executor::new(core::ptr::null_mut()))
            .expect("the task queue is created once");
    let tasks: &'static raw::Executor = tasks;
    init(tasks.spawner());
    loop {
        WORK_PENDING.store(false, Ordering::Release);
        // SAFETY: `poll` is only ever called from this loop, in thread mode,
        // never reentrantly.
        unsafe { tasks.poll() };
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
