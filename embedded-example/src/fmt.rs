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
    ($level:literal, $fmt:literal $(, $arg:expr)* $(,)?) => {
        $crate::fmt::text_log($level, $fmt, &[$(&$arg as &dyn $crate::fmt::Show),*])
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
/// `event!("EVENT master node={} token={}", n, t)` prints
/// `EVENT master node=2 token=7`.
macro_rules! event {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($fmt $(, $arg)*);
        #[cfg(not(feature = "defmt"))]
        $crate::fmt::text_line($fmt, &[$(&$arg as &dyn $crate::fmt::Show),*]);
    }};
}

// Text output does not use `core::fmt`: its formatting machinery costs about
// 5 KiB of flash, which this image does not have. A line is its literal with
// each `{}` replaced by the next argument's `Show`; nothing else in the
// literal is special.
#[cfg(not(feature = "defmt"))]
pub use text::*;

#[cfg(not(feature = "defmt"))]
mod text {
    use crate::board::{CmsdkUart, UART0_BASE};

    /// Something a text line can show.
    pub trait Show {
        /// Writes `self` on UART0.
        fn show(&self);
    }

    /// Writes `bytes` on UART0.
    #[inline(never)]
    pub fn put(bytes: &[u8]) {
        CmsdkUart::at(UART0_BASE).write_all(bytes);
    }

    /// `n` in decimal, written into the end of `buf` (20 bytes hold any `u64`).
    pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
        let mut at = buf.len();
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || at == 0 {
                return &buf[at..];
            }
        }
    }

    #[inline(never)]
    fn put_u64(n: u64) {
        let mut buf = [0; 20];
        put(decimal(n, &mut buf));
    }

    macro_rules! show_unsigned {
        ($($t:ty),*) => {$(
            impl Show for $t {
                fn show(&self) {
                    put_u64(*self as u64);
                }
            }
        )*};
    }
    show_unsigned!(u8, u16, u32, u64, usize);

    impl Show for str {
        fn show(&self) {
            put(self.as_bytes());
        }
    }

    impl<T: Show + ?Sized> Show for &T {
        fn show(&self) {
            (**self).show();
        }
    }

    impl Show for tenure::Duration {
        fn show(&self) {
            put_u64(self.as_micros());
            put(b"us");
        }
    }

    impl Show for tenure::NodeId {
        fn show(&self) {
            self.0.show();
        }
    }

    /// Shows `template` with each `{}` replaced by the next of `args`; the
    /// error types below say what went wrong in words and figures, shorter
    /// than the core's `Display` texts.
    struct Text<'a>(&'a str, &'a [&'a dyn Show]);

    impl Show for Text<'_> {
        fn show(&self) {
            put_template(self.0, self.1);
        }
    }

    impl Show for tenure::ConfigError {
        fn show(&self) {
            use tenure::ConfigError as E;
            match self {
                // The command line already refuses a bad member list
                // (cmdline.rs): these cannot come from it.
                E::TooManyMembers { .. }
                | E::DuplicateMember(_)
                | E::SelfNotMember(_)
                | E::NoVoters
                | E::NoCandidates => "member list refused".show(),
                E::ZeroLease => "lease is zero".show(),
                E::ZeroRoundTimeout => "round timeout is zero".show(),
                E::DriftOutOfRange(ppm) => Text("drift {} ppm too large", &[ppm]).show(),
                // Derived from the lease and the round timeout.
                E::RenewEvery { .. } | E::TryWindow { .. } => {
                    "lease windows refused: raise lease_ms or lower round_ms".show()
                }
                E::LeaseTooShort {
                    master_lease,
                    needed,
                } => Text(
                    "term {} under {}: raise lease_ms or lower round_ms",
                    &[master_lease, needed],
                )
                .show(),
            }
        }
    }

    impl Show for tenure::RecordError {
        fn show(&self) {
            use tenure::RecordError as E;
            match self {
                E::Empty => "record is empty".show(),
                E::Truncated => "record is truncated".show(),
                E::NotARecord => "not a Tenure record".show(),
                E::UnknownFormat(v) => Text("unknown record format {}", &[v]).show(),
                E::Corrupt => "record is corrupt".show(),
                E::BufferTooSmall => "record buffer too small".show(),
                E::WrongCluster { expected, found } => {
                    Text("record of cluster {}, not {}", &[found, expected]).show()
                }
                E::WrongNode { expected, found } => {
                    Text("record of node {}, not {}", &[found, expected]).show()
                }
            }
        }
    }

    impl Show for tenure::StartError {
        fn show(&self) {
            match self {
                tenure::StartError::Config(e) => e.show(),
                tenure::StartError::Record(e) => e.show(),
            }
        }
    }

    impl<E: Show> Show for crate::store::StoreError<E> {
        fn show(&self) {
            use crate::store::StoreError as E;
            match self {
                E::Flash(e) => e.show(),
                E::Corrupt => "flash holds no valid record".show(),
                E::TooLarge => "record too large".show(),
                E::Verify => "record read back wrong".show(),
                E::Layout => "flash layout unusable".show(),
            }
        }
    }

    /// Writes `template` with each `{}` replaced by the next of `args`.
    #[inline(never)]
    fn put_template(template: &str, args: &[&dyn Show]) {
        let bytes = template.as_bytes();
        let mut args = args.iter();
        let mut from = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            if bytes[i] == b'{' && bytes[i + 1] == b'}' {
                put(&bytes[from..i]);
                if let Some(arg) = args.next() {
                    arg.show();
                }
                i += 2;
                from = i;
            } else {
                i += 1;
            }
        }
        put(&bytes[from..]);
    }

    /// Prints one line on UART0: `template` with its `{}` filled in.
    #[inline(never)]
    pub fn text_line(template: &str, args: &[&dyn Show]) {
        put_template(template, args);
        put(b"\n");
    }

    /// Prints one timestamped log line, `<seconds>.<micros> <LEVEL> <message>`.
    #[inline(never)]
    pub fn text_log(level: &str, template: &str, args: &[&dyn Show]) {
        let micros = embassy_time::Instant::now().as_micros();
        put_u64(micros / 1_000_000);
        let mut buf = [0; 20];
        // Six digits: 1_000_000 + the remainder, without its leading 1.
        put(b".");
        put(&decimal(1_000_000 + micros % 1_000_000, &mut buf)[1..]);
        put(b" ");
        put(level.as_bytes());
        put(b" ");
        text_line(template, args);
    }
}
