//! Flash for the durable record.
//!
//! The record store (`store.rs`) takes any `embedded-storage-async`
//! `NorFlash`; a blocking `embedded-storage` [`NorFlash`] fits through
//! [`AsAsync`], so a real board only swaps the driver (see `main.rs`,
//! `Flash`). [`Counted`] counts the operations that wear the flash. Under
//! QEMU the `semihosting-flash` feature provides [`HostFileFlash`]: NOR flash
//! emulated in a host file, which survives killing and restarting QEMU.

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use embedded_storage_async::nor_flash::{ErrorType as AsyncErrorType, NorFlash as AsyncNorFlash};

/// Erase page size of the flash the record store uses.
pub const PAGE_SIZE: usize = 4096;
/// Pages given to the record store (it needs at least 2; more pages spread
/// the erases).
pub const PAGE_COUNT: usize = 4;
/// Bytes of flash given to the record store.
pub const FLASH_SIZE: usize = PAGE_SIZE * PAGE_COUNT;

/// Makes a blocking `NorFlash` usable where `embedded-storage-async` is
/// wanted; each operation completes before its future is first polled.
pub struct AsAsync<F>(pub F);

impl<F: ErrorType> ErrorType for AsAsync<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> embedded_storage_async::nor_flash::ReadNorFlash for AsAsync<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::NorFlash for AsAsync<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        self.0.erase(from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0.write(offset, bytes)
    }
}

/// Counts the program and erase operations that reach an (async) NOR flash,
/// the figures that wear it out.
pub struct Counted<F> {
    flash: F,
    wear: Wear,
}

/// Flash operations since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wear {
    /// `write` (program) calls that reached the flash.
    pub writes: u32,
    /// Bytes programmed by those calls.
    pub bytes: u32,
    /// Pages erased.
    pub erases: u32,
}

impl<F> Counted<F> {
    /// Wraps `flash`, with the counters at zero.
    pub const fn new(flash: F) -> Self {
        Self {
            flash,
            wear: Wear {
                writes: 0,
                bytes: 0,
                erases: 0,
            },
        }
    }

    /// Operations so far.
    pub const fn wear(&self) -> Wear {
        self.wear
    }
}

impl<F: AsyncErrorType> AsyncErrorType for Counted<F> {
    type Error = F::Error;
}

impl<F: AsyncNorFlash> embedded_storage_async::nor_flash::ReadNorFlash for Counted<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.flash.read(offset, bytes).await
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl<F: AsyncNorFlash> AsyncNorFlash for Counted<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let pages = to.saturating_sub(from) / F::ERASE_SIZE as u32;
        self.wear.erases = self.wear.erases.wrapping_add(pages);
        self.flash.erase(from, to).await
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.wear.writes = self.wear.writes.wrapping_add(1);
        self.wear.bytes = self.wear.bytes.wrapping_add(bytes.len() as u32);
        self.flash.write(offset, bytes).await
    }
}

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashError {
    /// Offset or length not a multiple of the read, write or erase size.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// The host file could not be read or written.
    Host,
}

#[cfg(not(feature = "defmt"))]
impl FlashError {
    /// What failed, in words.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotAligned => "not aligned",
            Self::OutOfBounds => "out of bounds",
            Self::Host => "host file I/O failed",
        }
    }
}

#[cfg(not(feature = "defmt"))]
impl crate::fmt::Show for FlashError {
    fn show(&self) {
        crate::fmt::put(self.as_str().as_bytes());
    }
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Self::Host => NorFlashErrorKind::Other,
        }
    }
}

fn kind_to_error(kind: NorFlashErrorKind) -> FlashError {
    match kind {
        NorFlashErrorKind::NotAligned => FlashError::NotAligned,
        NorFlashErrorKind::OutOfBounds => FlashError::OutOfBounds,
        _ => FlashError::Host,
    }
}

#[cfg(feature = "semihosting-flash")]
pub use host_file::HostFileFlash;

#[cfg(not(feature = "semihosting-flash"))]
compile_error!("no flash driver: enable `semihosting-flash`, or add the board's NorFlash here");

#[cfg(feature = "semihosting-flash")]
mod host_file {
    use super::*;
    use crate::semihosting::{HostFile, HostIoError};
    use cortex_m_semihosting::nr::open;

    impl From<HostIoError> for FlashError {
        fn from(_: HostIoError) -> Self {
            FlashError::Host
        }
    }

    /// NOR flash of [`FLASH_SIZE`] bytes kept in a host file.
    ///
    /// It keeps NOR semantics so the store is tested as on a chip: erase sets
    /// a page to 0xFF, and a write can only clear bits (the new contents are
    /// the old AND the data), which also makes it multi-write capable.
    pub struct HostFileFlash {
        file: HostFile,
    }

    /// Bytes moved per semihosting call in read-modify-write and erase.
    const CHUNK: usize = 128;

    impl HostFileFlash {
        /// Opens `path` (NUL-terminated), creating it erased if it does not
        /// exist, and extending it with erased bytes if it is short.
        pub fn open(path: &[u8]) -> Result<Self, FlashError> {
            let file = match HostFile::open(path, open::RW_BINARY) {
                Ok(file) => file,
                Err(HostIoError) => HostFile::open(path, open::RW_TRUNC_BINARY)?,
            };
            let mut flash = Self { file };
            let len = flash.file.len()?;
            if len < FLASH_SIZE {
                flash.file.seek(len)?;
                flash.fill_erased(FLASH_SIZE - len)?;
            }
            Ok(flash)
        }

        fn fill_erased(&mut self, mut count: usize) -> Result<(), FlashError> {
            let erased = [0xFF; CHUNK];
            while count > 0 {
                let n = count.min(CHUNK);
                self.file.write_all(&erased[..n])?;
                count -= n;
            }
            Ok(())
        }
    }

    impl ErrorType for HostFileFlash {
        type Error = FlashError;
    }

    impl ReadNorFlash for HostFileFlash {
        const READ_SIZE: usize = 1;

        // Not inlined: the store reads in several places.
        #[inline(never)]
        fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
            embedded_storage::nor_flash::check_read(self, offset, bytes.len())
                .map_err(kind_to_error)?;
            if bytes.is_empty() {
                return Ok(());
            }
            self.file.seek(offset as usize)?;
            Ok(self.file.read_exact(bytes)?)
        }

        fn capacity(&self) -> usize {
            FLASH_SIZE
        }
    }

    impl NorFlash for HostFileFlash {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = PAGE_SIZE;

        fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
            embedded_storage::nor_flash::check_erase(self, from, to).map_err(kind_to_error)?;
            self.file.seek(from as usize)?;
            self.fill_erased((to - from) as usize)
        }

        fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
            embedded_storage::nor_flash::check_write(self, offset, bytes.len())
                .map_err(kind_to_error)?;
            let mut old = [0u8; CHUNK];
            let mut at = offset as usize;
            for chunk in bytes.chunks(CHUNK) {
                let old = &mut old[..chunk.len()];
                self.file.seek(at)?;
                self.file.read_exact(old)?;
                for (o, n) in old.iter_mut().zip(chunk) {
                    *o &= *n;
                }
                self.file.seek(at)?;
                self.file.write_all(old)?;
                at += chunk.len();
            }
            Ok(())
        }
    }

    impl MultiwriteNorFlash for HostFileFlash {}
}
