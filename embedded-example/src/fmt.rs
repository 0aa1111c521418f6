//! Logging macros, declared first so every other module sees them.
//!
//! With the `defmt` feature, `info!`..`error!` and `event!` go to defmt (RTT);
//! without it they print one text line each on UART0, which is what QEMU runs
//! and the host harness read.
//!
//! Text format: `<seconds>.<micros> <LEVEL> <message>` for logs, and a bare
//! `EVENT <name> key=value ...` for the machine-readable events, so a harness
//! can match `^EVENT `.
#![macro_use]
#![allow(unused_macros)]

#[cfg(not(feature = "defmt"))]
macro_rules! log_at {
    ($level:literal, $($arg:tt)*) => {
        $crate::fmt::text_log($level, format_args!($($arg)*))
    };
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        log_at!("DEBUG", $($arg)*);
    }};
}

macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        log_at!("INFO ", $($arg)*);
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        log_at!("WARN ", $($arg)*);
    }};
}

macro_rules! error {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::error!($($arg)*);
        #[cfg(not(feature = "defmt"))]
        log_at!("ERROR", $($arg)*);
    }};
}

/// A machine-readable line, for the host harness. The literal spells the
/// whole line, `EVENT ` prefix included (defmt needs a plain literal):
/// `event!("EVENT master node={} version={}", n, v)` prints
/// `EVENT master node=2 version=7`.
macro_rules! event {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($fmt $(, $arg)*);
        #[cfg(not(feature = "defmt"))]
        $crate::fmt::text_line(format_args!($fmt $(, $arg)*));
    }};
}

/// Prints one timestamped log line on UART0.
#[cfg(not(feature = "defmt"))]
pub fn text_log(level: &str, args: core::fmt::Arguments<'_>) {
    let micros = embassy_time::Instant::now().as_micros();
    text_line(format_args!(
        "{}.{:06} {} {}",
        micros / 1_000_000,
        micros % 1_000_000,
        level,
        args
    ));
}

/// Prints `args` and a newline on UART0.
#[cfg(not(feature = "defmt"))]
pub fn text_line(args: core::fmt::Arguments<'_>) {
    use core::fmt::Write;
    let mut console = crate::board::Console;
    // The console never fails; a formatting error of ours would only cut the line.
    let _ = console.write_fmt(args);
    let _ = console.write_str("\n");
}
