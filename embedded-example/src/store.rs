//! The node's durable record in NOR flash: an append-only log of records
//! over the flash's erase pages, the newest valid one wins.
//!
//! Each save appends one item with a single program operation:
//!
//! ```text
//! magic u16 | length u16 | sequence u32 | value | CRC-32 of all before | 0xFF padding
//! ```
//!
//! little-endian, starting and ending on the flash's write (and read) unit.
//! Items fill a page from its start; when the next item does not fit, the
//! following page (cyclically) is erased and the item goes at its start. The
//! page that holds the newest item is never erased, so a save that is cut
//! off (power loss, reset) leaves the previous record in place: the torn item
//! fails its CRC and is ignored. On start, [`FlashStore::load`] reads every
//! item of every page and returns the valid item with the highest sequence
//! number. It then appends after that item only if the rest of its page
//! reads erased; otherwise (a torn item, half-programmed bytes) the next save
//! starts on the next page.
//!
//! A flash with data on it but no valid item is an error, never an empty
//! store: a node must not start from nothing over a record it cannot read.
//!
//! The store needs at least two erase pages; more pages spread the wear. It
//! uses the whole flash it is given (on a real board, a partition of the
//! chip) and only the `embedded-storage-async` NOR traits, so any driver
//! fits. This module depends on nothing else in the firmware, so the host
//! tests (`store-test/`) build it as it is.

use embedded_storage_async::nor_flash::NorFlash;

/// Largest value [`FlashStore::save`] accepts.
pub const MAX_VALUE: usize = 336;

/// Marks the start of an item.
const MAGIC: u16 = 0x54E7;
/// Bytes before the value: magic, length, sequence number.
const HEADER: usize = 8;
/// Bytes after the value: the CRC.
const TRAILER: usize = 4;
/// Largest write or read unit supported (a power of two).
const MAX_UNIT: usize = 64;
/// Room for the largest item rounded up to any supported unit.
const BUF: usize = (HEADER + MAX_VALUE + TRAILER).div_ceil(MAX_UNIT) * MAX_UNIT;

/// Why the store failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError<E> {
    /// The flash driver failed.
    Flash(E),
    /// The flash holds data but no valid item.
    Corrupt,
    /// A value longer than [`MAX_VALUE`].
    TooLarge,
    /// An item read back differs from what was written: not stored.
    Verify,
    /// The flash has fewer than two erase pages, or a write or read unit
    /// that is not a power of two of at most 64 bytes dividing the page.
    Layout,
}

impl<E> From<E> for StoreError<E> {
    fn from(e: E) -> Self {
        Self::Flash(e)
    }
}

/// Where the next item goes.
#[derive(Clone, Copy, Debug)]
struct Cursor {
    page: u32,
    offset: u32,
    /// The page must be erased before the item is written.
    erase: bool,
}

/// The newest valid item found by a scan.
#[derive(Clone, Copy, Debug)]
struct Newest {
    seq: u32,
    page: u32,
    offset: u32,
    len: usize,
}

/// This node's record in NOR flash.
pub struct FlashStore<F: NorFlash> {
    flash: F,
    /// Set by the first [`load`](Self::load) (or save): where to append, and
    /// the sequence number of the newest item.
    state: Option<(Cursor, u32)>,
    buf: [u8; BUF],
}

impl<F: NorFlash> FlashStore<F> {
    /// Write and read unit: items start and end on it.
    const UNIT: usize = if F::WRITE_SIZE > F::READ_SIZE {
        F::WRITE_SIZE
    } else {
        F::READ_SIZE
    };
    /// Bytes read to see an item's header.
    const HEAD_READ: usize = HEADER.div_ceil(Self::UNIT) * Self::UNIT;

    /// A store over all of `flash`. Nothing is read until
    /// [`load`](Self::load).
    pub fn new(flash: F) -> Self {
        Self {
            flash,
            state: None,
            buf: [0xFF; BUF],
        }
    }

    /// The flash driver.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    fn page_size() -> u32 {
        F::ERASE_SIZE as u32
    }

    fn pages(&self) -> Result<u32, StoreError<F::Error>> {
        let unit = Self::UNIT;
        let page = F::ERASE_SIZE;
        let pages = self.flash.capacity() / page.max(1);
        if !unit.is_power_of_two() || unit > MAX_UNIT || page % unit != 0 || pages < 2 {
            return Err(StoreError::Layout);
        }
        Ok(u32::try_from(pages).unwrap_or(u32::MAX))
    }

    /// Size of an item holding `len` value bytes, padded to the unit.
    fn item_size(len: usize) -> usize {
        (HEADER + len + TRAILER).div_ceil(Self::UNIT) * Self::UNIT
    }

    /// The value saved last, if any. Reads the whole flash the first time.
    pub async fn load(&mut self) -> Result<Option<&[u8]>, StoreError<F::Error>> {
        let newest = self.scan().await?;
        let Some(n) = newest else {
            return Ok(None);
        };
        let at = n.page * Self::page_size() + n.offset;
        let size = Self::item_size(n.len);
        self.flash.read(at, &mut self.buf[..size]).await?;
        if parse(&self.buf[..size]) != Some((n.seq, n.len)) {
            return Err(StoreError::Corrupt);
        }
        Ok(Some(&self.buf[HEADER..HEADER + n.len]))
    }

    /// Saves `value`, replacing what was saved before. When this returns
    /// `Ok`, the value is on flash and has been read back. (The firmware
    /// uses [`save_with`](Self::save_with); the host tests use this.)
    #[allow(dead_code)]
    pub async fn save(&mut self, value: &[u8]) -> Result<(), StoreError<F::Error>> {
        self.save_with(|buf| {
            let slot = buf.get_mut(..value.len())?;
            slot.copy_from_slice(value);
            Some(value.len())
        })
        .await
    }

    /// [`save`](Self::save) of the value `write` puts at the start of the
    /// buffer it is handed ([`MAX_VALUE`] bytes, in the store), returning its
    /// length; `None` saves nothing ([`StoreError::TooLarge`]). The caller
    /// then needs no buffer of its own (in a future, one would be kept across
    /// the flash operations).
    pub async fn save_with(
        &mut self,
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) -> Result<(), StoreError<F::Error>> {
        let (mut cursor, seq) = match self.state {
            Some(state) => state,
            None => {
                self.scan().await?;
                self.state.ok_or(StoreError::Corrupt)?
            }
        };
        let pages = self.pages()?;
        // After the scan, which reads through the same buffer.
        let len = write(&mut self.buf[HEADER..HEADER + MAX_VALUE])
            .filter(|&n| n <= MAX_VALUE)
            .ok_or(StoreError::TooLarge)?;
        let size = Self::item_size(len);
        if cursor.offset as usize + size > F::ERASE_SIZE {
            cursor = Cursor {
                page: (cursor.page + 1) % pages,
                offset: 0,
                erase: true,
            };
        }
        let page_start = cursor.page * Self::page_size();
        if cursor.erase {
            // Forget the cursor first: should the erase or the write fail,
            // the next save scans again instead of trusting this one.
            self.state = None;
            self.flash
                .erase(page_start, page_start + Self::page_size())
                .await?;
        }
        let seq = seq.checked_add(1).ok_or(StoreError::Corrupt)?;
        let item = &mut self.buf[..size];
        item[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        item[2..4].copy_from_slice(&(len as u16).to_le_bytes());
        item[4..8].copy_from_slice(&seq.to_le_bytes());
        let crc = crc32(&item[..HEADER + len]);
        item[HEADER + len..HEADER + len + TRAILER].copy_from_slice(&crc.to_le_bytes());
        item[HEADER + len + TRAILER..].fill(0xFF);
        let at = page_start + cursor.offset;
        self.state = None;
        self.flash.write(at, item).await?;
        // Read back and compared byte for byte, a few units at a time (the
        // item stays in the buffer to compare against).
        let mut chunk = [0u8; MAX_UNIT];
        let mut done = 0;
        while done < size {
            // `size` and MAX_UNIT are multiples of the unit: aligned reads.
            let n = (size - done).min(MAX_UNIT);
            let got = &mut chunk[..n];
            self.flash.read(at + done as u32, got).await?;
            if *got != self.buf[done..done + n] {
                return Err(StoreError::Verify);
            }
            done += n;
        }
        cursor.offset += size as u32;
        cursor.erase = false;
        self.state = Some((cursor, seq));
        Ok(())
    }

    /// Reads every page: finds the newest valid item and sets where the next
    /// one goes.
    async fn scan(&mut self) -> Result<Option<Newest>, StoreError<F::Error>> {
        let pages = self.pages()?;
        let page_size = F::ERASE_SIZE;
        let mut newest: Option<Newest> = None;
        // Set when a page's items end in erased flash: (page, offset).
        let mut clean_end: Option<(u32, u32)> = None;
        let mut written = false;
        for page in 0..pages {
            let base = page * Self::page_size();
            let mut offset = 0usize;
            let mut last_valid_end = None;
            while offset + Self::HEAD_READ <= page_size {
                let head = &mut self.buf[..Self::HEAD_READ];
                self.flash.read(base + offset as u32, head).await?;
                if head[..HEADER].iter().all(|&b| b == 0xFF) {
                    if self.erased_from(base, offset).await? {
                        if let Some(end) = last_valid_end {
                            if newest.is_some_and(|n| n.page == page) {
                                clean_end = Some((page, end));
                            }
                        }
                    } else {
                        written = true;
                    }
                    break;
                }
                written = true;
                let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
                if u16::from_le_bytes([head[0], head[1]]) != MAGIC || len > MAX_VALUE {
                    break;
                }
                let size = Self::item_size(len);
                if offset + size > page_size {
                    break;
                }
                let item = &mut self.buf[..size];
                self.flash.read(base + offset as u32, item).await?;
                let Some((seq, _)) = parse(item) else {
                    break;
                };
                if newest.is_none_or(|n| seq > n.seq) {
                    newest = Some(Newest {
                        seq,
                        page,
                        offset: offset as u32,
                        len,
                    });
                    clean_end = None;
                }
                offset += size;
                last_valid_end = Some(offset as u32);
            }
        }
        let cursor = match newest {
            None if written => return Err(StoreError::Corrupt),
            None => Cursor {
                page: 0,
                offset: 0,
                erase: true,
            },
            Some(n) => match clean_end {
                // The newest item is the last of its page and erased flash
                // follows: append there.
                Some((page, end))
                    if page == n.page && end == n.offset + Self::item_size(n.len) as u32 =>
                {
                    Cursor {
                        page,
                        offset: end,
                        erase: false,
                    }
                }
                _ => Cursor {
                    page: (n.page + 1) % pages,
                    offset: 0,
                    erase: true,
                },
            },
        };
        self.state = Some((cursor, newest.map_or(0, |n| n.seq)));
        Ok(newest)
    }

    /// Whether the page at `base` reads erased from `offset` to its end.
    async fn erased_from(&mut self, base: u32, mut offset: usize) -> Result<bool, F::Error> {
        while offset < F::ERASE_SIZE {
            let n = (F::ERASE_SIZE - offset).min(BUF);
            let chunk = &mut self.buf[..n];
            self.flash.read(base + offset as u32, chunk).await?;
            if chunk.iter().any(|&b| b != 0xFF) {
                return Ok(false);
            }
            offset += n;
        }
        Ok(true)
    }
}

/// The sequence number and value length of a valid item at the start of
/// `bytes`, or `None`.
fn parse(bytes: &[u8]) -> Option<(u32, usize)> {
    let head = bytes.get(..HEADER)?;
    if u16::from_le_bytes([head[0], head[1]]) != MAGIC {
        return None;
    }
    let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
    let seq = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let crc = bytes.get(HEADER + len..HEADER + len + TRAILER)?;
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    (len <= MAX_VALUE && crc32(&bytes[..HEADER + len]) == crc).then_some((seq, len))
}

/// CRC-32 (IEEE 802.3, reflected), bit by bit: no table in flash.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
