//! The few semihosting calls we use: the command line, and a host file
//! (for the emulated flash). Semihosting halts the core until the debugger or
//! QEMU answers, so these are for QEMU and bench setups, not the field.

use cortex_m_semihosting::{nr, syscall, syscall1};

/// The host's clock in seconds since 1970 (SYS_TIME): differs between
/// starts, which is all the jitter seed needs.
pub fn host_time() -> u32 {
    // SAFETY: SYS_TIME takes no argument block and only returns a value.
    unsafe { syscall!(TIME) as u32 }
}

/// Copies the command line QEMU was started with (`<kernel path> <-append
/// string>`) into `buf` and returns it, or `None` if there is none, it
/// does not fit, or it is not ASCII.
pub fn command_line(buf: &mut [u8]) -> Option<&str> {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `buf.len()` bytes into `buf` and
    // the length into `block[1]`; both stay alive across the call. The call
    // takes the block's address, so the compiler must assume it is written.
    let status = unsafe { syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    if status != 0 {
        return None;
    }
    let len = block[1].min(buf.len());
    let bytes = &buf[..len];
    // The host may or may not count a terminating NUL.
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or(bytes);
    crate::cmdline::ascii(bytes)
}

/// An open host file.
pub struct HostFile {
    handle: usize,
}

/// A host file call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HostIoError;

impl HostFile {
    /// Opens `path` (NUL-terminated) with an `fopen`-style `mode`
    /// (`nr::open::*`).
    pub fn open(path: &[u8], mode: usize) -> Result<Self, HostIoError> {
        let name_len = path.len().checked_sub(1).ok_or(HostIoError)?;
        if path.last() != Some(&0) {
            return Err(HostIoError);
        }
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let handle = unsafe { syscall!(OPEN, path.as_ptr(), mode, name_len) };
        if handle == usize::MAX {
            Err(HostIoError)
        } else {
            Ok(Self { handle })
        }
    }

    /// The file's length in bytes.
    pub fn len(&self) -> Result<usize, HostIoError> {
        // SAFETY: `handle` is an open file.
        let len = unsafe { syscall!(FLEN, self.handle) };
        if len == usize::MAX {
            Err(HostIoError)
        } else {
            Ok(len)
        }
    }

    /// Moves to absolute byte offset `pos`.
    pub fn seek(&mut self, pos: usize) -> Result<(), HostIoError> {
        // SAFETY: `handle` is an open file.
        let status = unsafe { syscall!(SEEK, self.handle, pos) };
        if status == 0 {
            Ok(())
        } else {
            Err(HostIoError)
        }
    }

    /// Fills `buf` from the current position.
    pub fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), HostIoError> {
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`, which
        // is borrowed mutably for the call.
        let not_read = unsafe { syscall!(READ, self.handle, buf.as_mut_ptr(), buf.len()) };
        if not_read == 0 {
            Ok(())
        } else {
            Err(HostIoError)
        }
    }

    /// Writes all of `buf` at the current position.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<(), HostIoError> {
        // SAFETY: the host reads `buf.len()` bytes from `buf`.
        let not_written = unsafe { syscall!(WRITE, self.handle, buf.as_ptr(), buf.len()) };
        if not_written == 0 {
            Ok(())
        } else {
            Err(HostIoError)
        }
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        // SAFETY: `handle` is open and is not used after this.
        unsafe { syscall!(CLOSE, self.handle) };
    }
}

/// Ends the QEMU run with `code` as its exit status (0 success).
///
/// SYS_EXIT_EXTENDED (0x20), reason ADP_Stopped_ApplicationExit with `code`
/// as the subcode: QEMU exits with `code`. (Plain SYS_EXIT on 32-bit Arm
/// carries no code: QEMU would exit with 1 for every failure.)
pub fn exit(code: i32) -> ! {
    const SYS_EXIT_EXTENDED: usize = 0x20;
    const ADP_STOPPED_APPLICATION_EXIT: usize = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, code as usize];
    // SAFETY: the call reads the two-word block, which outlives it; it does
    // not return under QEMU.
    unsafe { syscall1(SYS_EXIT_EXTENDED, block.as_ptr() as usize) };
    // A host without the extended call: exit without the code.
    cortex_m_semihosting::debug::exit(if code == 0 {
        cortex_m_semihosting::debug::EXIT_SUCCESS
    } else {
        cortex_m_semihosting::debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}
