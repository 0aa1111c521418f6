//! The panic handler: reports the panic and stops the node (exit code 101).
//!
//! A release build formats nothing: it prints `PANIC` (text build) or logs
//! `panic` (defmt). Reading anything out of the `PanicInfo`, even only the
//! location, keeps every panic site's message arguments alive and with them
//! `core::fmt`, the panic message texts and their source paths: 9,136 B of
//! flash when measured (text build; 8,584 B with defmt). Debug builds, and
//! release builds with the `panic-message` feature, print the whole message
//! with its location (`core::fmt` then links, also with defmt).
//!
//! Nothing in the firmware is meant to panic: bad input (frames, command
//! lines, flash contents) is dropped and counted or refused with an exit
//! code. A panic is a bug; rebuild with `--features panic-message` (or a
//! debug build) to see where.

#[cfg(any(debug_assertions, feature = "panic-message"))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    #[cfg(feature = "defmt")]
    defmt::error!("panic: {}", defmt::Display2Format(info));
    #[cfg(not(feature = "defmt"))]
    let _ = core::fmt::Write::write_fmt(&mut crate::board::Console, format_args!("PANIC {info}\n"));
    crate::semihosting::exit(101);
}

#[cfg(not(any(debug_assertions, feature = "panic-message")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    #[cfg(feature = "defmt")]
    defmt::error!("panic");
    #[cfg(not(feature = "defmt"))]
    crate::fmt::put(b"PANIC\n");
    crate::semihosting::exit(101);
}
