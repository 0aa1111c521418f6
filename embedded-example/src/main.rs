//! Tenure firmware for a Cortex-M4, run under QEMU's `mps2-an386` board.
//!
//! UART0 carries text logs and `EVENT` lines; UART1 carries COBS frames to
//! and from the other nodes; the node id and member list come from the
//! semihosting command line; the durable record lives in (emulated) NOR
//! flash. See README.md in this folder.
#![no_std]
#![no_main]

// Declared first: the logging macros the other modules use.
mod fmt;

mod board;
mod cmdline;
mod console;
mod flash;
#[cfg(feature = "eth")]
mod lan9118;
#[cfg(not(feature = "eth"))]
mod link;
mod mem;
#[cfg(feature = "eth")]
mod net;
mod runner;
mod semihosting;
mod store;
mod time_driver;
mod uart;
mod wfi;

#[cfg(feature = "defmt")]
use defmt_rtt as _;

use embassy_executor::Spawner;

use crate::board::{CmsdkUart, UART0_BASE};
use crate::cmdline::Settings;
use crate::store::FlashStore;

/// Members as `1,2,3` in logs.
struct MemberList<'a>(&'a [u16]);

#[cfg(not(feature = "defmt"))]
impl fmt::Show for MemberList<'_> {
    fn show(&self) {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                fmt::put(b",");
            }
            m.show();
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for MemberList<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[?]}", self.0);
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().expect("taken once, here");
    CmsdkUart::at(UART0_BASE).enable();
    time_driver::init(peripherals.SYST);

    // The Ethernet build's command line also lists every member's address.
    let mut line = [0u8; if cfg!(feature = "eth") { 512 } else { 256 }];
    let settings = match semihosting::command_line(&mut line).map(cmdline::parse) {
        Some(Ok(settings)) => settings,
        Some(Err(e)) => {
            error!("bad command line: {}", e);
            semihosting::exit(2);
        }
        None => {
            error!("no command line: start QEMU with -append \"id=N members=A,B,C\"");
            semihosting::exit(2);
        }
    };
    event!(
        "EVENT boot id={} members={}",
        settings.id,
        MemberList(&settings.members)
    );

    #[cfg(not(feature = "eth"))]
    link::init();
    console::init();
    wfi::run(|spawner| start(spawner, settings))
}

fn start(spawner: Spawner, settings: Settings) {
    #[cfg(feature = "eth")]
    net::start(
        spawner,
        &settings,
        u64::from(semihosting::host_time()) << 16 | u64::from(settings.id),
    );
    spawner.spawn(node_task(settings).expect("node task spawned once"));
}

#[embassy_executor::task]
async fn node_task(settings: Settings) {
    #[cfg(feature = "semihosting-flash")]
    let flash = match flash::HostFileFlash::open(settings.flash_path.as_bytes()) {
        Ok(flash) => flash,
        Err(e) => {
            error!("cannot open flash file: {}", e);
            semihosting::exit(3);
        }
    };
    let store = FlashStore::new(flash);
    // The core mixes in the node id and the record's incarnation; the host
    // clock makes the jitter differ between starts even if a record was lost.
    // (A real board would read its RNG.) Earlier builds kept a boot counter
    // in flash for this: one flash write per boot and 1 % of the image.
    let seed = u64::from(semihosting::host_time()) << 16 | u64::from(settings.id);
    let mut runner = runner::Runner::start(&settings, store, seed).await;
    runner.run().await
}

/// Reports a panic and stops. A release build prints only where it
/// happened: formatting the message would link `core::fmt`'s panic machinery
/// (and, with defmt, all of `core::fmt`) into an image with little flash to
/// spare. A debug build prints the message too.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    #[cfg(all(feature = "defmt", debug_assertions))]
    defmt::error!("panic: {}", defmt::Display2Format(info));
    #[cfg(all(feature = "defmt", not(debug_assertions)))]
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
        None => defmt::error!("panic"),
    }
    #[cfg(all(not(feature = "defmt"), debug_assertions))]
    let _ = core::fmt::Write::write_fmt(&mut board::Console, format_args!("PANIC {info}\n"));
    #[cfg(all(not(feature = "defmt"), not(debug_assertions)))]
    fmt::panic_line(info.location());
    semihosting::exit(101);
}
