//! Authenticated frames: a SipHash-2-4-128 tag on every packet.
//!
//! Without it, anyone who can send a datagram or a serial frame to a node can pose as a
//! member (a forged Accept carrying BeMaster for the attacker's choice of node would be
//! obeyed). With a pre-shared cluster key, every frame is `packet bytes || tag`, where the
//! tag is SipHash-2-4 with its 128-bit output (Aumasson and Bernstein, "SipHash: a fast
//! short-input PRF"; the 128-bit variant of the authors' reference code) over the whole
//! encoded packet, header included. A frame whose tag does not verify is dropped before
//! any field of it is trusted; the comparison is constant-time.
//!
//! **Key rotation** without stopping the cluster: configure the new key as `previous` on
//! every node (they still send with the old one and accept both); then, node by node,
//! swap them (send with the new key, accept the old); then remove the old key everywhere.
//!
//! **The key.** The cluster key stays 32 bytes ([`KEY_LEN`]); SipHash takes 16. A
//! [`TagKey`] derives its SipHash key once, when the key is configured: SipHash-2-4-128
//! keyed by the cluster key's first 16 bytes, over its last 16 bytes. For a uniformly
//! random cluster key the first half alone is a uniform SipHash key, so the derived key
//! is a PRF output (pseudorandom); the second half is its input, so every byte of the
//! cluster key counts (keys differing anywhere give different tag keys, but for a 2^-128
//! chance), and structured keys do not collapse (an xor of the halves would map every
//! key of two equal halves to the zero key). Security is SipHash's 128-bit key and tag.
//! The tags of the frames are SipHash-2-4-128 under the derived key; `TagKey` keeps
//! SipHash's initial state under it, so a tag costs the message's rounds only.
//!
//! **Why SipHash.** It is a standard keyed PRF, and so a MAC, with a 128-bit key and (in
//! this variant) a 128-bit tag, designed for short inputs: every protocol frame is under
//! 64 bytes, where SipHash costs two rounds per 8-byte word plus eight finalization
//! rounds, against one full 64-byte compression of ten rounds for keyed BLAKE2s (the tag
//! of protocol 4 and earlier). Its code is small: 64-bit additions, rotations and xors in
//! one loop (`siphash.rs`, 432 B in the firmware at opt-level "z", about the size of the
//! BLAKE2s compression it replaced, 420 B without its tables). Measured per tag at 12, 32 and 64 bytes of frame
//! (Wed 2 Dec 2026):
//!
//! | | 12 B | 32 B | 64 B |
//! | --- | --- | --- | --- |
//! | host (x86-64, divan median, `benches/benches/tags.rs`), BLAKE2s | 110 ns | 96 ns | 96 ns |
//! | host, SipHash-2-4-128 | 28 ns | 33 ns | 44 ns |
//! | Cortex-M4 (QEMU, instructions, `embedded-example/examples/tag_cost.rs`), BLAKE2s | 8,367 | 8,374 | 8,408 |
//! | Cortex-M4, SipHash-2-4-128 | 736 | 1,081 | 1,565 |
//!
//! (A shared 2-core host at load average about 3; QEMU counts instructions, not
//! cycles.) The tests check every tag against the `siphasher` crate (a dev-dependency
//! only) for every length 0 to 200, and the rounds against the paper's and the
//! reference code's vectors.

use core::fmt;

use crate::siphash;
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

/// A cluster key ready to tag frames: the SipHash-2-4-128 state keyed by the derived
/// 16-byte key, computed once (see the [module docs](self)). Its `Debug` form shows
/// nothing of it.
#[derive(Clone)]
pub struct TagKey {
    /// SipHash's initial state under the derived key (before any message word).
    start: [u64; 4],
}

impl fmt::Debug for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TagKey(<redacted>)")
    }
}

/// The SipHash key of a cluster key: SipHash-2-4-128 keyed by the key's first 16 bytes,
/// over its last 16 bytes (see the [module docs](self)).
fn derive(key: &Key) -> [u8; 16] {
    let mut first = [0u8; 16];
    first.copy_from_slice(&key.0[..16]);
    let (k0, k1) = siphash::key_words(&first);
    siphash::sip128(&siphash::init(k0, k1), &key.0[16..])
}

impl TagKey {
    /// Derives the 16-byte SipHash key from `key` and keeps the keyed initial state.
    pub fn new(key: &Key) -> Self {
        let (k0, k1) = siphash::key_words(&derive(key));
        TagKey {
            start: siphash::init(k0, k1),
        }
    }

    /// SipHash-2-4-128 of `bytes` under the derived key.
    pub fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        siphash::sip128(&self.start, bytes)
    }

    /// Whether `tag` is the tag of `bytes`, compared in constant time.
    pub fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let want = self.tag(bytes);
        let diff = want.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b));
        core::hint::black_box(diff) == 0
    }
}

/// The [`TagKey`]s of an [`Auth`]: what a node keeps to seal and open frames.
#[derive(Clone, Debug)]
pub(crate) enum Tags {
    Insecure,
    Keys {
        current: TagKey,
        previous: Option<TagKey>,
    },
}

impl Tags {
    pub(crate) fn new(auth: &Auth) -> Self {
        match auth {
            Auth::Insecure => Tags::Insecure,
            Auth::Keys { current, previous } => Tags::Keys {
                current: TagKey::new(current),
                previous: previous.as_ref().map(TagKey::new),
            },
        }
    }

    /// Appends the tag to the `n` encoded bytes at the start of `buf`.
    pub(crate) fn seal_encoded(&self, buf: &mut [u8], n: usize) -> Result<usize, WireError> {
        match self {
            Tags::Insecure => Ok(n),
            Tags::Keys { current, .. } => {
                let t = current.tag(&buf[..n]);
                let out = buf
                    .get_mut(n..n + TAG_LEN)
                    .ok_or(WireError::BufferTooSmall)?;
                out.copy_from_slice(&t);
                Ok(n + TAG_LEN)
            }
        }
    }

    pub(crate) fn open(&self, frame: &[u8]) -> Result<Packet, WireError> {
        match self {
            Tags::Insecure => decode(frame),
            Tags::Keys { current, previous } => {
                if frame.len() > MAX_SEALED_SIZE {
                    return Err(WireError::TooLarge);
                }
                if frame.len() <= TAG_LEN {
                    return Err(WireError::BadTag);
                }
                let (body, t) = frame.split_at(frame.len() - TAG_LEN);
                let ok =
                    current.verify(body, t) || previous.as_ref().is_some_and(|k| k.verify(body, t));
                if !ok {
                    return Err(WireError::BadTag);
                }
                decode(body)
            }
        }
    }
}

/// Encodes `packet` and appends its tag; returns the frame length. (A node seals with
/// its keys' [`TagKey`]s computed once: [`Node::seal`](crate::Node::seal).)
pub fn seal(packet: &Packet, auth: &Auth, buf: &mut [u8]) -> Result<usize, WireError> {
    let n = encode(packet, buf)?;
    Tags::new(auth).seal_encoded(buf, n)
}

/// Verifies a frame's tag (when keys are configured), then decodes the packet. Nothing
/// of the packet is read before the tag verified.
pub fn open(frame: &[u8], auth: &Auth) -> Result<Packet, WireError> {
    Tags::new(auth).open(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;
    use siphasher::sip128::Hasher128;

    /// SipHash-2-4-128 through the `siphasher` crate, with the derivation spelled out: the
    /// reference.
    fn reference_tag(key: &Key, bytes: &[u8]) -> [u8; TAG_LEN] {
        let sip = |k: &[u8], m: &[u8]| {
            let mut h = siphasher::sip128::SipHasher24::new_with_key(k.try_into().unwrap());
            h.write(m);
            h.finish128().as_bytes()
        };
        sip(&sip(&key.0[..16], &key.0[16..]), bytes)
    }
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
    fn the_derivation_and_tag_are_siphash_2_4_128() {
        // Key 00..1f: the derived key is SipHash-2-4-128 keyed by 00..0f over 10..1f.
        // Pinned by value (what this implementation and `siphasher` both give), so a
        // change to the derivation or the tag cannot pass unnoticed.
        let key = Key(core::array::from_fn(|i| i as u8));
        let t = TagKey::new(&key).tag(b"abc");
        assert_eq!(t, reference_tag(&key, b"abc"));
        assert_eq!(
            t,
            [
                0x9d, 0x9f, 0xee, 0xd8, 0xa0, 0x89, 0x37, 0x66, 0x9e, 0xab, 0xfe, 0xf0, 0x34, 0x46,
                0xae, 0x85
            ]
        );
    }

    #[test]
    fn tags_match_the_reference_for_every_length() {
        // Every length 0..=200 (empty, part words, whole words, past 64 bytes), for two
        // keys, against `siphasher` with the derivation spelled out.
        let mut input = [0u8; 200];
        for (i, b) in input.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        for key in [Key([0; 32]), Key(core::array::from_fn(|i| 0xA0 ^ i as u8))] {
            let fast = TagKey::new(&key);
            for len in 0..=input.len() {
                let want = reference_tag(&key, &input[..len]);
                assert_eq!(fast.tag(&input[..len]), want, "length {len}");
                assert!(fast.verify(&input[..len], &want));
                let mut bad = want;
                bad[len % TAG_LEN] ^= 1;
                assert!(!fast.verify(&input[..len], &bad));
                assert!(!fast.verify(&input[..len], &want[..TAG_LEN - 1]));
            }
        }
    }

    #[test]
    fn every_byte_of_the_cluster_key_counts() {
        // Flipping any one bit of the 32-byte key changes the tag: neither half is
        // ignored by the derivation. Keys with equal halves are not weak (an xor of the
        // halves would make them all the zero key).
        let base = Key(core::array::from_fn(|i| (i as u8).wrapping_mul(7)));
        let t = TagKey::new(&base).tag(b"frame");
        for i in 0..KEY_LEN {
            for bit in 0..8 {
                let mut k = base.clone();
                k.0[i] ^= 1 << bit;
                assert_ne!(TagKey::new(&k).tag(b"frame"), t, "byte {i} bit {bit}");
            }
        }
        let a = TagKey::new(&Key([0x5a; 32])).tag(b"frame");
        let b = TagKey::new(&Key([0x33; 32])).tag(b"frame");
        assert_ne!(a, b);
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
