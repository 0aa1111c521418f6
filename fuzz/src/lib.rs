//! The checks behind Tenure's fuzz targets, as plain functions.
//!
//! Each `fuzz_targets/<name>.rs` is a one-line wrapper around a function here, so the
//! same checks run on stable (`cargo test --lib` replays the committed seed corpus) and
//! under libFuzzer (`cargo +nightly fuzz run <name>`). Every function panics when a
//! property fails; it never panics on input that is merely invalid.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod decode;
pub mod deframe;
pub mod hostile;

/// The cluster key used by every target (any fixed key will do).
pub const KEY: [u8; 32] = [0x5a; 32];

/// For the tests that the executor refuses a send: takes a fresh campaign's Prepare
/// off `node` (it goes ahead of the promise's record), loses that record on the way
/// (a driver bug), answers the Prepare with node 2's Promise and loses the acceptance's
/// record as well. The node's next output, its Accept, claims an acceptance its
/// executor never saw stored.
#[cfg(test)]
fn lose_the_promise_and_answer<const N: usize>(node: &mut tenure::Node<N>, now: tenure::Instant) {
    use tenure::{Message, Output};
    let Some(Output::Send { packet, .. }) = node.poll_output() else {
        panic!("the campaign's first output is not its Prepare");
    };
    let Message::Prepare { instance, ballot } = packet.message else {
        panic!("the campaign sent {:?}", packet.message);
    };
    assert!(matches!(node.poll_output(), Some(Output::Persist)));
    let promise = tenure::Packet {
        header: tenure::Header {
            from: tenure::NodeId(2),
            ..packet.header
        },
        message: Message::Promise {
            instance,
            ballot,
            accepted: None,
            age: tenure::Duration::ZERO,
        },
    };
    node.handle_message(now, &promise).unwrap();
    // The acceptance's record, due before the Accept, is lost too.
    assert!(matches!(node.poll_output(), Some(Output::Persist)));
}

#[cfg(test)]
mod corpus_tests {
    use std::path::Path;

    fn replay(target: &str, f: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            f(&bytes);
            n += 1;
        }
        assert!(n > 0, "empty corpus {dir:?}");
        let found = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("artifacts-found")
            .join(target);
        if let Ok(entries) = std::fs::read_dir(&found) {
            for entry in entries {
                let path = entry.unwrap().path();
                // Reproducers of bugs the core has fixed must pass; ones still open are
                // named `open-*` and are skipped here (run them with `cargo fuzz run`).
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.starts_with("open-") {
                    f(&std::fs::read(&path).unwrap());
                }
            }
        }
    }

    #[test]
    fn decode_corpus() {
        replay("decode", crate::decode::check);
    }

    #[test]
    fn deframe_corpus() {
        replay("deframe", crate::deframe::check);
    }

    #[test]
    fn cluster_corpus() {
        replay("cluster", crate::cluster::check);
    }

    #[test]
    fn hostile_corpus() {
        replay("hostile", crate::hostile::check);
    }
}
