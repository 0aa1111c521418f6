//! Authenticated frames: a keyed BLAKE2s tag on every packet.
//!
//! Without it, anyone who can send a datagram or a serial frame to a node can pose as a
//! member (a forged Accept carrying BeMaster for the attacker's choice of node would be
//! obeyed). With a pre-shared cluster key, every frame is `packet bytes || tag`, where the
//! tag is keyed BLAKE2s (RFC 7693) with a 16-byte output over the whole encoded packet,
//! header included. A frame whose tag does not verify is dropped before any field of it
//! is trusted; the comparison is constant-time.
//!
//! **Key rotation** without stopping the cluster: configure the new key as `previous` on
//! every node (they still send with the old one and accept both); then, node by node,
//! swap them (send with the new key, accept the old); then remove the old key everywhere.
//!
//! Why BLAKE2s: it is a standard keyed MAC with no extra construction (HMAC needs two
//! hash passes), it is fast in software on 32-bit microcontrollers without crypto
//! hardware, and RustCrypto's `blake2` is `no_std`, allocation-free and widely reviewed.

use blake2::digest::consts::U16;
use blake2::digest::{KeyInit, Mac};
use blake2::Blake2sMac;
use core::fmt;

use crate::wire::{decode, encode, Packet, WireError, MAX_PACKET_SIZE};

/// Length of a cluster key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the tag appended to every authenticated frame.
pub const TAG_LEN: usize = 16;
/// The largest sealed frame (packet plus tag).
pub const MAX_SEALED_SIZE: usize = MAX_PACKET_SIZE + TAG_LEN;

/// A pre-shared cluster key. Its `Debug` form never shows the bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; KEY_LEN]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Key {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Key(<redacted>)")
    }
}

/// How frames are protected.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Auth {
    /// No tag: anyone who can reach a node can pose as a member. Only for closed test
    /// networks; adapters log a loud warning when a node starts like this.
    Insecure,
    /// Tag every frame with `current`; accept frames tagged with `current` or
    /// `previous` (key rotation).
    Keys {
        /// The key frames are sent with.
        current: Key,
        /// A second key still accepted.
        previous: Option<Key>,
    },
}

impl Auth {
    /// Authentication with one key.
    pub fn key(key: [u8; KEY_LEN]) -> Self {
        Auth::Keys {
            current: Key(key),
            previous: None,
        }
    }
    /// Whether frames carry tags.
    pub fn is_secure(&self) -> bool {
        matches!(self, Auth::Keys { .. })
    }
}

fn mac(key: &Key) -> Blake2sMac<U16> {
    // A 32-byte key is within BLAKE2s's limit, so this cannot fail.
    <Blake2sMac<U16> as KeyInit>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable!())
}

fn tag(key: &Key, bytes: &[u8]) -> [u8; TAG_LEN] {
    let mut m = mac(key);
    m.update(bytes);
    m.finalize().into_bytes().into()
}

fn verify(key: &Key, bytes: &[u8], tag: &[u8]) -> bool {
    let mut m = mac(key);
    m.update(bytes);
    m.verify_slice(tag).is_ok() // constant-time comparison
}

/// Encodes `packet` and appends its tag; returns the frame length.
pub fn seal(packet: &Packet, auth: &Auth, buf: &mut [u8]) -> Result<usize, WireError> {
    let n = encode(packet, buf)?;
    match auth {
        Auth::Insecure => Ok(n),
        Auth::Keys { current, .. } => {
            let t = tag(current, &buf[..n]);
            let out = buf
                .get_mut(n..n + TAG_LEN)
                .ok_or(WireError::BufferTooSmall)?;
            out.copy_from_slice(&t);
            Ok(n + TAG_LEN)
        }
    }
}

/// Verifies a frame's tag (when keys are configured), then decodes the packet. Nothing
/// of the packet is read before the tag verified.
pub fn open(frame: &[u8], auth: &Auth) -> Result<Packet, WireError> {
    match auth {
        Auth::Insecure => decode(frame),
        Auth::Keys { current, previous } => {
            if frame.len() > MAX_SEALED_SIZE {
                return Err(WireError::TooLarge);
            }
            if frame.len() <= TAG_LEN {
                return Err(WireError::BadTag);
            }
            let (body, t) = frame.split_at(frame.len() - TAG_LEN);
            let ok =
                verify(current, body, t) || previous.as_ref().is_some_and(|k| verify(k, body, t));
            if !ok {
                return Err(WireError::BadTag);
            }
            decode(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeId;
    use crate::wire::{Header, Message, PROTOCOL_VERSION};

    fn packet() -> Packet {
        Packet {
            header: Header {
                protocol: PROTOCOL_VERSION,
                cluster: 1,
                from: NodeId(2),
                renewal: crate::Renewal::Lease,
            },
            message: Message::CatchUp { next_instance: 5 },
        }
    }

    #[test]
    fn keyed_blake2s_matches_an_independent_implementation() {
        // Keyed BLAKE2s-128 of "abc" with key 00..1f, computed independently (Python
        // hashlib.blake2s(b"abc", key=bytes(range(32)), digest_size=16)).
        let key = Key(core::array::from_fn(|i| i as u8));
        let t = tag(&key, b"abc");
        assert_eq!(
            t,
            [
                0x61, 0xba, 0x5f, 0x16, 0x5c, 0x19, 0x46, 0x92, 0xe0, 0x9d, 0x12, 0x52, 0x0c, 0xc4,
                0xc7, 0x4a
            ]
        );
    }

    #[test]
    fn sealed_frames_open_with_either_key_and_nothing_else() {
        let old = Auth::key([1; 32]);
        let new = Auth::key([2; 32]);
        let rotating = Auth::Keys {
            current: Key([2; 32]),
            previous: Some(Key([1; 32])),
        };
        let mut buf = [0u8; MAX_SEALED_SIZE];
        let n = seal(&packet(), &old, &mut buf).unwrap();
        assert_eq!(open(&buf[..n], &old), Ok(packet()));
        assert_eq!(open(&buf[..n], &rotating), Ok(packet()));
        assert_eq!(open(&buf[..n], &new), Err(WireError::BadTag));
        // Every single bit flip is caught.
        for i in 0..n {
            let mut bad = buf;
            bad[i] ^= 0x10;
            assert_eq!(open(&bad[..n], &old), Err(WireError::BadTag), "byte {i}");
        }
        // A frame without a tag, or an unauthenticated packet, is refused.
        assert_eq!(open(&buf[..TAG_LEN], &old), Err(WireError::BadTag));
        let plain = seal(&packet(), &Auth::Insecure, &mut buf).unwrap();
        assert_eq!(open(&buf[..plain], &old), Err(WireError::BadTag));
        assert_eq!(open(&buf[..plain], &Auth::Insecure), Ok(packet()));
    }
}
