//! `decode`: arbitrary bytes as a packet, a sealed frame and a durable record.

use core::hash::Hasher;
use siphasher::sip128::{Hasher128, SipHasher24};
use tenure::auth::{open, TAG_LEN};
use tenure::{decode, encode, Auth, Key, Record, WireError, MAX_PACKET_SIZE, MAX_RECORD_SIZE};
use tenure::{MAX_SEALED_SIZE, PROTOCOL_VERSION};

/// SipHash-2-4-128 keyed by `key`, over `m` (the `siphasher` crate).
fn sip128(key: &[u8], m: &[u8]) -> [u8; 16] {
    let mut h = SipHasher24::new_with_key(key.try_into().expect("16-byte key"));
    h.write(m);
    h.finish128().as_bytes()
}

/// The tag `tenure::auth` appends, computed independently: SipHash-2-4-128 under the key
/// derived from the cluster key (SipHash-2-4-128 keyed by its first half, over its
/// second half).
pub fn tag(key: &[u8; 32], body: &[u8]) -> [u8; TAG_LEN] {
    sip128(&sip128(&key[..16], &key[16..]), body)
}

/// Runs every decoder on `data` and checks the round trips.
pub fn check(data: &[u8]) {
    let auth = Auth::key(crate::KEY);
    let rotating = Auth::Keys {
        current: Key([0xa5; 32]),
        previous: Some(Key(crate::KEY)),
    };

    // 1. The bare packet decoder.
    let decoded = decode(data);
    if let Ok(packet) = decoded {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        let n =
            encode(&packet, &mut buf).expect("a decoded packet re-encodes within MAX_PACKET_SIZE");
        assert!(n <= MAX_PACKET_SIZE);
        assert_eq!(
            decode(&buf[..n]),
            Ok(packet),
            "re-encoded packet decodes differently"
        );
        // Not injective: postcard also accepts overlong varints (`85 00` for 5), so the
        // canonical re-encoding can be shorter than the input, never longer. Harmless for
        // security: the tag covers the bytes, and nothing dedups frames by their bytes.
        assert!(n <= data.len(), "re-encoding grew: {n} > {}", data.len());
        let _ = packet.message.kind();
        let _ = packet.header.protocol == PROTOCOL_VERSION;
    } else if data.len() > MAX_PACKET_SIZE {
        assert_eq!(decoded, Err(WireError::TooLarge));
    }

    // 2. `open` on the raw bytes: insecure is exactly `decode`; keyed almost always
    //    refuses (the fuzzer cannot forge tags), and never panics.
    assert_eq!(open(data, &Auth::Insecure), decoded);
    let keyed = open(data, &auth);
    if let Ok(packet) = keyed {
        // Only possible if the input carries a valid tag (e.g. from the seed corpus).
        assert_eq!(decode(&data[..data.len() - TAG_LEN]), Ok(packet));
    }
    assert_eq!(
        open(data, &rotating),
        keyed,
        "the previous key must open the same frames"
    );

    // 3. `open` past the tag check: tag the input as a body with the cluster key.
    if data.len() <= MAX_PACKET_SIZE {
        let mut frame = [0u8; MAX_SEALED_SIZE];
        frame[..data.len()].copy_from_slice(data);
        frame[data.len()..data.len() + TAG_LEN].copy_from_slice(&tag(&crate::KEY, data));
        let frame = &frame[..data.len() + TAG_LEN];
        // (An empty body is a frame of a bare tag: refused as such.)
        let want = if data.is_empty() {
            Err(WireError::BadTag)
        } else {
            decoded
        };
        assert_eq!(
            open(frame, &auth),
            want,
            "a validly tagged body opens as decode"
        );
        assert_eq!(open(frame, &rotating), want);
        // Any single flipped bit is refused before decoding.
        let mut bad = [0u8; MAX_SEALED_SIZE];
        bad[..frame.len()].copy_from_slice(frame);
        let at = data.first().map_or(0, |&b| usize::from(b)) % frame.len();
        bad[at] ^= 1 << (data.len() % 8);
        assert_eq!(open(&bad[..frame.len()], &auth), Err(WireError::BadTag));
        // A packet that decodes seals to exactly this frame.
        if let Ok(packet) = decoded {
            let mut sealed = [0u8; MAX_SEALED_SIZE];
            let n = tenure::auth::seal(&packet, &auth, &mut sealed).expect("fits MAX_SEALED_SIZE");
            assert_eq!(open(&sealed[..n], &auth), Ok(packet));
        }
    }

    // 4. The durable record.
    if let Ok(record) = Record::decode(data) {
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let n = record
            .encode(&mut buf)
            .expect("a decoded record re-encodes within MAX_RECORD_SIZE");
        assert_eq!(Record::decode(&buf[..n]), Ok(record));
        // (A record of an older format re-encodes in today's, with the member list.)
        if data[3] == buf[3] {
            assert!(n <= data.len());
        }
    }

    // 5. The record body past the checksum: wrap the input as magic || body || CRC-32.
    if data.len() + 8 <= 4 * MAX_RECORD_SIZE {
        let mut buf = [0u8; 4 * MAX_RECORD_SIZE];
        buf[..4].copy_from_slice(b"TNR\x01");
        buf[4..4 + data.len()].copy_from_slice(data);
        let end = 4 + data.len();
        let crc = crc32(&buf[..end]);
        buf[end..end + 4].copy_from_slice(&crc.to_le_bytes());
        if let Ok(record) = Record::decode(&buf[..end + 4]) {
            let mut again = [0u8; MAX_RECORD_SIZE];
            let n = record.encode(&mut again).expect("fits MAX_RECORD_SIZE");
            assert_eq!(Record::decode(&again[..n]), Ok(record));
            // (Wrapped as format 1, it re-encodes in today's format, which holds more:
            // the member list and the rejoin bound; only today's format is compared by
            // length, above.)
        }
    }
}

/// CRC-32 (IEEE 802.3), as the record format uses it.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}
