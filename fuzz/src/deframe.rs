//! `deframe`: arbitrary byte streams through `FrameReader`, and `frame` round trips.

use arbitrary::Unstructured;
use tenure::auth::open;
use tenure::wire::MAX_STREAM_FRAME;
use tenure::{frame, Auth, FrameReader, WireError, MAX_FRAME_SIZE};

/// Most payloads one input is split into, and the longest one (several COBS blocks,
/// more than a reader holds).
const MAX_PAYLOADS: usize = 16;
const MAX_PAYLOAD: usize = 3 * MAX_FRAME_SIZE;

/// What a reader must yield for one zero-terminated segment.
#[derive(Debug, PartialEq, Eq)]
enum Yield {
    Frame(Vec<u8>),
    Err(WireError),
}

/// Plain COBS decoding (Cheshire and Baker) of one segment without its terminator.
fn cobs_reference(seg: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(seg.len());
    let mut i = 0;
    while i < seg.len() {
        let code = usize::from(seg[i]);
        if code == 0 || i + code > seg.len() {
            return None;
        }
        out.extend_from_slice(&seg[i + 1..i + code]);
        i += code;
        if code != 0xFF && i < seg.len() {
            out.push(0);
        }
    }
    Some(out)
}

/// What a reader of capacity `cap` must yield for `stream`.
fn reference(stream: &[u8], cap: usize) -> Vec<Yield> {
    let mut out = Vec::new();
    let mut seg = Vec::new();
    for &b in stream {
        if b != 0 {
            seg.push(b);
            continue;
        }
        if seg.len() > cap {
            out.push(Yield::Err(WireError::FrameTooLong));
        } else if !seg.is_empty() {
            out.push(match cobs_reference(&seg) {
                Some(f) => Yield::Frame(f),
                None => Yield::Err(WireError::Malformed),
            });
        }
        seg.clear();
    }
    out
}

/// Feeds `stream` to a reader of capacity `CAP`; every frame goes to `auth::open`.
fn read_all<const CAP: usize>(stream: &[u8]) -> Vec<Yield> {
    let auth = Auth::key(crate::KEY);
    let mut reader: FrameReader<CAP> = FrameReader::new();
    let mut out = Vec::new();
    for &b in stream {
        match reader.push(b) {
            None => {}
            Some(Ok(f)) => {
                assert!(f.len() <= CAP, "a frame longer than the reader");
                let _ = open(f, &auth);
                let _ = open(f, &Auth::Insecure);
                out.push(Yield::Frame(f.to_vec()));
            }
            Some(Err(e)) => out.push(Yield::Err(e)),
        }
    }
    out
}

fn check_stream(stream: &[u8]) {
    assert_eq!(read_all::<1>(stream), reference(stream, 1));
    assert_eq!(read_all::<16>(stream), reference(stream, 16));
    assert_eq!(read_all::<64>(stream), reference(stream, 64));
    assert_eq!(
        read_all::<MAX_STREAM_FRAME>(stream),
        reference(stream, MAX_STREAM_FRAME)
    );
}

/// Frames built with `frame` from payloads cut out of `data` come back identical.
fn check_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut payloads: Vec<&[u8]> = Vec::new();
    let mut resync = Vec::new();
    while payloads.len() < MAX_PAYLOADS && !u.is_empty() {
        let len = usize::from(u.arbitrary::<u16>().unwrap_or(0)) % (MAX_PAYLOAD + 1);
        let lone_zero = u.arbitrary::<bool>().unwrap_or(false);
        let Ok(p) = u.bytes(len.min(u.len())) else {
            break;
        };
        payloads.push(p);
        resync.push(lone_zero);
    }
    let mut stream = Vec::new();
    for (p, &lone_zero) in payloads.iter().zip(&resync) {
        let need = p.len() + p.len() / 254 + 2;
        let mut buf = vec![0u8; need];
        assert_eq!(
            frame(p, &mut buf[..need - 1]),
            Err(WireError::BufferTooSmall)
        );
        let n = frame(p, &mut buf).expect("buffer of the documented size");
        assert!(n <= need);
        assert_eq!(buf[n - 1], 0, "frame without terminator");
        assert!(!buf[..n - 1].contains(&0), "zero inside a frame");
        assert_eq!(cobs_reference(&buf[..n - 1]).as_deref(), Some(*p));
        if lone_zero {
            stream.push(0); // resynchronisation zeros are skipped
        }
        stream.extend_from_slice(&buf[..n]);
    }
    let expect = |cap: usize| -> Vec<Yield> {
        payloads
            .iter()
            .map(|p| {
                let encoded = p.len() + p.len() / 254 + 1; // without terminator, upper bound
                let mut buf = vec![0u8; encoded + 1];
                let n = frame(p, &mut buf).unwrap();
                if n - 1 > cap {
                    Yield::Err(WireError::FrameTooLong)
                } else {
                    Yield::Frame(p.to_vec())
                }
            })
            .collect()
    };
    assert_eq!(
        read_all::<MAX_STREAM_FRAME>(&stream),
        expect(MAX_STREAM_FRAME)
    );
    assert_eq!(read_all::<64>(&stream), expect(64));
    check_stream(&stream);
}

/// The whole target.
pub fn check(data: &[u8]) {
    check_stream(data);
    check_round_trip(data);
}
