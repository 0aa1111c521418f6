//! embassy-time driver on SysTick, tickless.
//!
//! SysTick is a 24-bit down-counter on the processor clock. Rather than
//! interrupting at a fixed rate, each period is as long as the time to the
//! next alarm (at most 2^24 cycles, 0.67 s at 25 MHz), so an idle node wakes
//! about once or twice a second. Time is kept in cycles as a 64-bit count:
//! `start` is when the running period began, `len` its length in cycles.
//!
//! A SysTick period of `len` cycles: the counter loads `len - 1`, counts down
//! to 0 (pending the exception on reaching 0) and reloads on the next cycle,
//! which is when the next period begins.
//!
//! Reprogramming (an alarm earlier than the end of the running period) writes
//! the reload value and clears the counter, which starts a new period from
//! `now`; this loses less than a cycle, and `now` is clamped to be monotonic.

use core::cell::RefCell;
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

use crate::board::SYSCLK_HZ;

/// Cycles per embassy tick (1 µs ticks, `tick-hz-1_000_000`).
const CYCLES_PER_TICK: u64 = SYSCLK_HZ as u64 / embassy_time_driver::TICK_HZ;
const _: () = assert!((SYSCLK_HZ as u64).is_multiple_of(embassy_time_driver::TICK_HZ));

/// The longest SysTick period: the reload register has 24 bits.
const MAX_PERIOD: u32 = 1 << 24;
/// The shortest period we program, so an alarm just ahead never races the
/// counter (and QEMU's timer keeps a sane minimum period). 40 µs at 25 MHz.
const MIN_PERIOD: u32 = 1_000;

const SCB_ICSR_PENDSTSET: u32 = 1 << 26;
const SCB_ICSR_PENDSTCLR: u32 = 1 << 25;

struct State {
    /// Cycle count when the running period began.
    start: u64,
    /// Length of the running period in cycles (reload + 1).
    len: u32,
    /// The latest time handed out, to keep `now` monotonic.
    last: u64,
    /// The earliest alarm, in cycles; `u64::MAX` for none.
    alarm: u64,
    queue: Queue,
}

struct SysTickDriver {
    state: Mutex<RefCell<State>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    state: Mutex::new(RefCell::new(State {
        start: 0,
        len: MAX_PERIOD,
        last: 0,
        alarm: u64::MAX,
        queue: Queue::new(),
    })),
});

fn syst() -> &'static cortex_m::peripheral::syst::RegisterBlock {
    // SAFETY: SysTick's registers are always mapped; this driver is their only
    // user once `init` has run, and it touches them inside critical sections.
    unsafe { &*SYST::PTR }
}

fn icsr() -> u32 {
    // SAFETY: reading ICSR has no side effects.
    unsafe { (*SCB::PTR).icsr.read() }
}

/// Starts SysTick free-running with the longest period and its interrupt on.
/// Call once, before the task loop starts.
pub fn init(mut syst: SYST) {
    syst.disable_counter();
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(MAX_PERIOD - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

impl State {
    /// The current time in cycles.
    fn now(&mut self) -> u64 {
        let regs = syst();
        let before = regs.cvr.read();
        let wrapped = icsr() & SCB_ICSR_PENDSTSET != 0;
        let after = regs.cvr.read();
        let cycles = if wrapped {
            // The period ended and its interrupt has not run yet: `after` was
            // read in the next period (or at its very start), whose length is
            // the reload register.
            let next_reload = regs.rvr.read();
            let elapsed = if after == 0 { 0 } else { next_reload - after };
            self.start + u64::from(self.len) + u64::from(elapsed)
        } else if before == 0 {
            // Just cleared by `program` (a counter that reached 0 on its own
            // would have pended the interrupt): the period starts now.
            self.start
        } else {
            self.start + u64::from(self.len - 1 - before)
        };
        self.last = self.last.max(cycles);
        self.last
    }

    /// Accounts for a finished period; called from the SysTick handler.
    fn on_wrap(&mut self) {
        self.start += u64::from(self.len);
        self.len = syst().rvr.read() + 1;
    }

    /// Makes a period end at the alarm, or within `MAX_PERIOD`.
    ///
    /// From `schedule_wake` (`at_wrap == false`) it restarts the counter only
    /// if the alarm comes before the running period ends; from the SysTick
    /// handler, right at the start of a period, it restarts unless that period
    /// already has the wanted length (the steady idle case: no restarts).
    fn program(&mut self, at_wrap: bool) {
        let now = self.now();
        let wanted = self
            .alarm
            .saturating_sub(now)
            .clamp(u64::from(MIN_PERIOD), u64::from(MAX_PERIOD)) as u32;
        let end = self.start + u64::from(self.len);
        let keep = if at_wrap {
            self.len == wanted
        } else {
            end > now && end <= now + u64::from(wanted)
        };
        if keep {
            return;
        }
        let regs = syst();
        // SAFETY: `wanted - 1` fits the 24-bit reload register. The clear
        // comes right after the reload write and right after `now` was read,
        // so the cycles lost to the restart are a handful.
        unsafe {
            regs.rvr.write(wanted - 1);
            // Any write clears the counter; it reloads on the next cycle.
            regs.cvr.write(0);
            // A wrap that pended before the clear is counted in `now` already.
            (*SCB::PTR).icsr.write(SCB_ICSR_PENDSTCLR);
        }
        self.start = now;
        self.len = wanted;
    }

    /// Wakes expired timers and sets `alarm` to the earliest one left.
    fn fire_expired(&mut self) {
        loop {
            let now_ticks = self.now() / CYCLES_PER_TICK;
            let next = self.queue.next_expiration(now_ticks);
            self.alarm = next.saturating_mul(CYCLES_PER_TICK);
            if next == u64::MAX || self.alarm > self.now() {
                return;
            }
        }
    }
}

impl SysTickDriver {
    fn with<R>(&self, f: impl FnOnce(&mut State, CriticalSection<'_>) -> R) -> R {
        critical_section::with(|cs| f(&mut self.state.borrow_ref_mut(cs), cs))
    }
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        self.with(|s, _| s.now() / CYCLES_PER_TICK)
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        self.with(|s, _| {
            if s.queue.schedule_wake(at, waker) {
                s.fire_expired();
                s.program(false);
            }
        });
    }
}

#[cortex_m_rt::exception]
fn SysTick() {
    DRIVER.with(|s, _| {
        s.on_wrap();
        if s.alarm <= s.now() {
            s.fire_expired();
        }
        s.program(true);
    });
}
