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
mod link;
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
use crate::store::{FlashStore, Key};

/// Members as `1,2,3` in logs.
struct MemberList<'a>(&'a [u16]);

impl core::fmt::Display for MemberList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
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

    let mut line = [0u8; 256];
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
    info!(
        "node id={} members={}",
        settings.id,
        MemberList(&settings.members)
    );
    event!(
        "EVENT boot id={} members={}",
        settings.id,
        MemberList(&settings.members)
    );

    link::init();
    console::init();
    wfi::run(|spawner| start(spawner, settings))
}

fn start(spawner: Spawner, settings: Settings) {
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
    let mut store = FlashStore::new(flash);
    let boots = match store.load_u32(Key::Boots).await {
        Ok(n) => n.unwrap_or(0).wrapping_add(1),
        Err(e) => {
            error!("flash read failed: {}", e);
            semihosting::exit(4);
        }
    };
    if let Err(e) = store.save_u32(Key::Boots, boots).await {
        error!("flash write failed: {}", e);
        semihosting::exit(5);
    }
    info!("boot number {}", boots);
    // The core mixes in the node id and incarnation too; the boot count
    // makes the jitter differ even if a record was lost.
    let seed = u64::from(boots) << 16 | u64::from(settings.id);
    let mut runner = runner::Runner::start(&settings, store, seed).await;
    runner.run().await
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    #[cfg(feature = "defmt")]
    defmt::error!("panic: {}", defmt::Display2Format(info));
    #[cfg(not(feature = "defmt"))]
    fmt::text_line(format_args!("PANIC {}", info));
    semihosting::exit(101);
}
