//! What one frame tag costs on a Cortex-M4: `tenure::TagKey::tag` (and `verify`) at
//! 12, 32 and 64 bytes, timed with SysTick and printed on UART0; then QEMU exits.
//!
//! QEMU is not cycle-accurate, so what is counted is instructions: run with
//! `-icount shift=0` (one instruction per nanosecond of virtual time), SysTick then
//! advances once per 40 instructions (the board's 25 MHz system clock). A block of
//! `nop`s is timed first to check that rate. Each figure is the
//! difference between a loop of tags and the same loop without them, over 2,000 runs.
//!
//! `bash embedded-example/ci.sh tagcost` builds and runs it (see that job for the
//! QEMU command line).
#![no_std]
#![no_main]

use core::fmt::Write;
use core::hint::black_box;
use core::ptr::{read_volatile, write_volatile};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use tenure::{Key, TagKey};

/// The board's system clock, which clocks SysTick (QEMU mps2-an386).
const SYSCLK_HZ: u32 = 25_000_000;
/// Instructions per SysTick tick under `-icount shift=0` (1 ns each, 25 MHz ticks).
const PER_TICK: u32 = 1_000_000_000 / SYSCLK_HZ;
/// Tags per measurement.
const RUNS: u32 = 2_000;
const UART0: usize = 0x4000_4000;

/// UART0 of the CMSDK (transmit only).
struct Uart;

impl Uart {
    fn enable() -> Self {
        // SAFETY: UART0's BAUDDIV (0x10) and CTRL (0x08) registers; TX enable only.
        unsafe {
            write_volatile((UART0 + 0x10) as *mut u32, SYSCLK_HZ / 115_200);
            write_volatile((UART0 + 0x08) as *mut u32, 1);
        }
        Uart
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            // SAFETY: UART0's STATE (bit 0: transmit buffer full) and DATA registers.
            unsafe {
                while read_volatile((UART0 + 0x04) as *const u32) & 1 != 0 {}
                write_volatile(UART0 as *mut u32, u32::from(b));
            }
        }
        Ok(())
    }
}

/// SysTick ticks that `f` takes (SysTick counts down from its 24-bit reload).
fn ticks(mut f: impl FnMut()) -> u32 {
    let start = SYST::get_current();
    f();
    let end = SYST::get_current();
    start.wrapping_sub(end) & 0x00FF_FFFF
}

#[entry]
fn main() -> ! {
    let mut uart = Uart::enable();
    let mut p = cortex_m::Peripherals::take().unwrap();
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(0x00FF_FFFF);
    p.SYST.clear_current();
    p.SYST.enable_counter();

    // Calibration: 50 nops, 40,000 times (2,000,000 nops; the loop adds a few
    // instructions per run, under a tenth).
    let nops = ticks(|| {
        for _ in 0..black_box(40_000u32) {
            // SAFETY: nops only.
            unsafe { core::arch::asm!(".rept 50", "nop", ".endr", options(nomem, nostack)) };
        }
    });
    let bare = ticks(|| {
        for _ in 0..black_box(40_000u32) {
            black_box(());
        }
    });
    let nops = nops - bare;
    let _ = writeln!(
        uart,
        "calibration: 2000000 nops = {nops} SysTick ticks ({} instructions per tick; {PER_TICK} expected with -icount shift=0)",
        2_000_000 / nops
    );

    let key = TagKey::new(&Key(core::array::from_fn(|i| i as u8 ^ 0x5a)));
    let frame: [u8; 64] = core::array::from_fn(|i| (i as u8).wrapping_mul(31));
    let tag = key.tag(&frame[..32]);
    for len in [12usize, 32, 64] {
        let empty = ticks(|| {
            for _ in 0..black_box(RUNS) {
                black_box(black_box(&frame[..len]));
            }
        });
        let tagged = ticks(|| {
            for _ in 0..black_box(RUNS) {
                black_box(key.tag(black_box(&frame[..len])));
            }
        });
        let verified = ticks(|| {
            for _ in 0..black_box(RUNS) {
                black_box(key.verify(black_box(&frame[..len]), black_box(&tag)));
            }
        });
        let per = |t: u32| t.saturating_sub(empty) * PER_TICK / RUNS;
        let _ = writeln!(
            uart,
            "tag {len} B: {} instructions per tag, {} per verify",
            per(tagged),
            per(verified)
        );
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}

unsafe extern "C" {
    /// cortex-m-rt's default handler (no interrupt is enabled here).
    fn DefaultHandler();
}

/// The external-interrupt part of the vector table (the board's 32 lines).
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = Uart.write_str("PANIC\n");
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
