//! SipHash-2-4 with a 128-bit output (Aumasson and Bernstein, "SipHash: a fast
//! short-input PRF", 2012; the 128-bit variant as in the authors' reference code): the
//! frame tag of [`crate::auth`].
//!
//! Written as loops (two compression rounds per 8-byte word, four finalization rounds
//! per output half) rather than unrolled: on a 32-bit core each 64-bit round is about
//! fifty instructions, and the firmware's flash is tight.

/// The initial state: the key words xored with the constants "somepseudorandomlygenerat
/// edbytes", and `0xee` in `v1` for the 128-bit output.
pub(crate) fn init(k0: u64, k1: u64) -> [u64; 4] {
    [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ]
}

/// The key words of a 16-byte key (little-endian halves).
pub(crate) fn key_words(k: &[u8; 16]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&k[..8]);
    b.copy_from_slice(&k[8..]);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

/// SipRound, `n` times. Inlined into [`sip`]'s one call, so that the state lives in
/// registers rather than behind a reference.
#[inline(always)]
fn rounds(v: &mut [u64; 4], n: usize) {
    for _ in 0..n {
        v[0] = v[0].wrapping_add(v[1]);
        v[2] = v[2].wrapping_add(v[3]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[1]);
        v[0] = v[0].wrapping_add(v[3]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].rotate_left(32);
    }
}

/// SipHash-2-4 of `msg` from the state `start`: with `wide`, the 128-bit output (`start`
/// from [`init`]); without, the original 64-bit one in the first 8 bytes (`start`
/// without `init`'s `0xee`).
///
/// The message is read as its whole 8-byte words (little-endian), then a last word of
/// the remaining bytes, zero-padded, with the length modulo 256 in the top byte; each
/// word is xored into `v3`, two rounds (the "2"), xored into `v0`. Each output half is
/// four rounds (the "4") and the xor of the state: `v2 ^= 0xee` (64-bit: `0xff`) before
/// the first, `v1 ^= 0xdd` before the second; halves little-endian, first half first
/// (as the reference code writes them). All of it is one loop of steps, so that the
/// rounds are written out once: the words, then the halves.
#[inline(always)]
fn sip(start: &[u64; 4], msg: &[u8], wide: bool) -> [u8; 16] {
    let mut v = *start;
    let mut words = msg.chunks_exact(8);
    let rest = words.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    last[7] = msg.len() as u8;
    // The message's words, the last one included.
    let n = words.len() + 1;
    let mut out = [0u8; 16];
    for step in 0..n + 1 + usize::from(wide) {
        let word = (step < n).then(|| match words.next() {
            Some(w) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                u64::from_le_bytes(b)
            }
            None => u64::from_le_bytes(last),
        });
        match word {
            Some(m) => v[3] ^= m,
            None if step == n => v[2] ^= if wide { 0xee } else { 0xff },
            None => v[1] ^= 0xdd,
        }
        rounds(&mut v, if word.is_some() { 2 } else { 4 });
        match word {
            Some(m) => v[0] ^= m,
            None => {
                let half = if step == n {
                    &mut out[..8]
                } else {
                    &mut out[8..]
                };
                half.copy_from_slice(&(v[0] ^ v[1] ^ v[2] ^ v[3]).to_le_bytes());
            }
        }
    }
    out
}

/// SipHash-2-4-128 of `msg` from the initial state `start` ([`init`]).
pub(crate) fn sip128(start: &[u64; 4], msg: &[u8]) -> [u8; 16] {
    sip(start, msg, true)
}

/// SipHash-2-4 with the original 64-bit output (test only: it pins the rounds and the
/// message padding against the paper's vectors, through the same code as the 128-bit
/// variant).
#[cfg(test)]
pub(crate) fn sip64(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut v = init(k0, k1);
    v[1] ^= 0xee;
    let out = sip(&v, msg, false);
    let mut b = [0u8; 8];
    b.copy_from_slice(&out[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;
    use siphasher::sip128::Hasher128;

    /// The reference key 00..0f and message 00..n-1 of the paper and the reference code.
    fn reference_input() -> ((u64, u64), [u8; 64]) {
        let k: [u8; 16] = core::array::from_fn(|i| i as u8);
        (key_words(&k), core::array::from_fn(|i| i as u8))
    }

    #[test]
    fn sip64_matches_the_papers_vectors() {
        let ((k0, k1), m) = reference_input();
        // Appendix A of the paper: the 15-byte message 00..0e.
        assert_eq!(sip64(k0, k1, &m[..15]), 0xa129_ca61_49be_45e5);
        // The reference code's vectors_sip64: the empty message and 00..07 (one whole
        // word, then a length-only last word).
        assert_eq!(sip64(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        assert_eq!(sip64(k0, k1, &m[..8]), 0x93f5_f579_9a93_2462);
    }

    #[test]
    fn sip128_matches_the_reference_vectors() {
        // The reference code's vectors_sip128, rows 0 and 1 (key 00..0f, message 00..n-1).
        let ((k0, k1), m) = reference_input();
        let s = init(k0, k1);
        assert_eq!(
            sip128(&s, &[]),
            [
                0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55,
                0x02, 0x93
            ]
        );
        assert_eq!(
            sip128(&s, &m[..1]),
            [
                0xda, 0x87, 0xc1, 0xd8, 0x6b, 0x99, 0xaf, 0x44, 0x34, 0x76, 0x59, 0x11, 0x9b, 0x22,
                0xfc, 0x45
            ]
        );
    }

    #[test]
    fn both_outputs_match_siphasher_for_every_length() {
        // Every length 0..=200 (empty, part words, whole words, past 64 bytes), two keys,
        // against the `siphasher` crate (the length byte's wrap: the next test).
        let mut input = [0u8; 200];
        for (i, b) in input.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        for key in [[0u8; 16], core::array::from_fn(|i| 0xA0 ^ i as u8)] {
            let (k0, k1) = key_words(&key);
            let s = init(k0, k1);
            for len in 0..=input.len() {
                let msg = &input[..len];
                let mut h = siphasher::sip128::SipHasher24::new_with_key(&key);
                h.write(msg);
                let want = h.finish128().as_bytes();
                assert_eq!(sip128(&s, msg), want, "128, length {len}");
                let mut h = siphasher::sip::SipHasher24::new_with_key(&key);
                h.write(msg);
                assert_eq!(sip64(k0, k1, msg), h.finish(), "64, length {len}");
            }
        }
    }

    #[test]
    fn the_length_byte_wraps_at_256() {
        let key: [u8; 16] = core::array::from_fn(|i| 3 * i as u8);
        let (k0, k1) = key_words(&key);
        let input = [0x5au8; 300];
        for len in [255, 256, 257, 263, 264, 300] {
            let mut h = siphasher::sip128::SipHasher24::new_with_key(&key);
            h.write(&input[..len]);
            assert_eq!(
                sip128(&init(k0, k1), &input[..len]),
                h.finish128().as_bytes(),
                "length {len}"
            );
        }
    }
}
