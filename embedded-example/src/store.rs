//! Durable key/value records in NOR flash through sequential-storage.
//!
//! Keys are small integers ([`Key`]). The page-state, page-pointer and
//! key-pointer caches are on: uncached, a store after the flash has wrapped
//! rescans every page and can stall for about half a second on QEMU's
//! semihosting flash.

use embedded_storage::nor_flash::NorFlash;
use sequential_storage::cache::key_pointers::ArrayKeyPointers;
use sequential_storage::cache::page_pointers::ArrayPagePointers;
use sequential_storage::cache::page_states::ArrayPageStates;
use sequential_storage::cache::Cache;
use sequential_storage::map::{MapConfig, MapStorage};

use crate::flash::{AsAsync, Wear, FLASH_SIZE, PAGE_COUNT};

/// What a stored item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Key {
    /// The election core's durable record.
    Record = 0,
}

/// Keys kept in the key-pointer cache. Key 1 held a boot counter in earlier
/// builds; an old flash file may still have it (it is ignored).
const KEY_COUNT: usize = 2;

/// Largest value we store, plus room for the key and word alignment.
pub const MAX_VALUE: usize = 240;

type StoreCache = Cache<
    ArrayPageStates<PAGE_COUNT>,
    ArrayPagePointers<PAGE_COUNT>,
    ArrayKeyPointers<u8, KEY_COUNT>,
    u8,
>;

/// An error from the store, carrying the flash driver's error type.
pub type StoreError<F> =
    sequential_storage::Error<<F as embedded_storage::nor_flash::ErrorType>::Error>;

/// This node's values in NOR flash, by [`Key`].
pub struct FlashStore<F: NorFlash> {
    map: MapStorage<u8, AsAsync<F>, StoreCache>,
    buf: [u8; MAX_VALUE + 16],
}

impl<F: NorFlash> FlashStore<F> {
    /// A store over the first [`FLASH_SIZE`] bytes of `flash`.
    pub fn new(flash: F) -> Self {
        let cache = Cache::new(
            ArrayPageStates::new(),
            ArrayPagePointers::new(),
            ArrayKeyPointers::new(),
        );
        Self {
            map: MapStorage::new(
                AsAsync::new(flash),
                MapConfig::new(0..FLASH_SIZE as u32),
                cache,
            ),
            buf: [0; MAX_VALUE + 16],
        }
    }

    /// The bytes last saved under `key`, if any.
    pub async fn load(&mut self, key: Key) -> Result<Option<&[u8]>, StoreError<F>> {
        self.map
            .fetch_item::<&[u8]>(&mut self.buf, &(key as u8))
            .await
    }

    /// Saves `value` under `key`, replacing what was there. When this
    /// returns `Ok`, the value is on flash.
    pub async fn save(&mut self, key: Key, value: &[u8]) -> Result<(), StoreError<F>> {
        self.map
            .store_item(&mut self.buf, &(key as u8), &value)
            .await
    }

    /// Flash program and erase operations since boot (every key, the boot
    /// counter's included).
    pub fn wear(&mut self) -> Wear {
        self.map.flash().wear()
    }
}
