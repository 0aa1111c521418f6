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
mod panic;
mod runner;
mod semihosting;
mod store;
mod time_driver;
mod uart;
mod wfi;

#[cfg(feature = "defmt")]
use defmt_rtt as _;

use embassy_executor::Spawner;
use static_cell::StaticCell;

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
            error!("no command line: -append \"id=N members=A,B,C\"");
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

/// The command line's settings, kept for the node's whole life (a task's
/// argument would be kept twice in its future).
static SETTINGS: StaticCell<Settings> = StaticCell::new();

fn start(spawner: Spawner, settings: Settings) {
    #[cfg(feature = "eth")]
    net::start(
        spawner,
        &settings,
        u64::from(semihosting::host_time()) << 16 | u64::from(settings.id),
    );
    let settings = SETTINGS.init(settings);
    spawner.spawn(node_task(settings).expect("node task spawned once"));
}

/// The flash the record store uses: any `embedded-storage-async` `NorFlash`
/// (a blocking `embedded-storage` one through `flash::AsAsync`), all of it
/// given to the store (on a real board, a partition of at least two erase
/// pages).
#[cfg(feature = "semihosting-flash")]
type Flash = flash::AsAsync<flash::HostFileFlash>;

/// The running node: in a static, so that no future holds it (see
/// `runner::start_node`).
static RUNNER: StaticCell<runner::Runner<Flash>> = StaticCell::new();

#[embassy_executor::task]
async fn node_task(settings: &'static Settings) {
    // Everything here but the runner is for the start only: the block ends
    // their storage before the node runs.
    let runner = {
        #[cfg(feature = "semihosting-flash")]
        let flash = match flash::HostFileFlash::open(settings.flash_path.as_bytes()) {
            Ok(flash) => flash::AsAsync(flash),
            Err(e) => {
                error!("cannot open flash file: {}", e);
                semihosting::exit(3);
            }
        };
        let mut store = FlashStore::new(flash::Counted::new(flash));
        // The core mixes in the node id and the record's incarnation; the host
        // clock makes the jitter differ between starts even if a record was lost.
        // (A real board would read its RNG.) Earlier builds kept a boot counter
        // in flash for this: one flash write per boot and 1 % of the image.
        let seed = u64::from(semihosting::host_time()) << 16 | u64::from(settings.id);
        let node = runner::start_node(settings, &mut store, seed).await;
        RUNNER.init_with(move || runner::Runner::new(node, store))
    };
    runner.boot().await;
    runner.run().await
}
