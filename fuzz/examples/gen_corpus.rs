//! Writes the committed seed corpus: `cargo run --example gen_corpus` (from fuzz/).
//!
//! decode: real encoded packets of every message kind, the same sealed with the fuzz key,
//! and encoded records taken from a running cluster. deframe: COBS frames and streams of
//! those. cluster: hand-written scenarios (election, renewal, crash, restart, release,
//! hand-over, held and pipelined drivers, network faults, replay).

use std::fs;
use std::path::{Path, PathBuf};

use tenure::auth::seal;
use tenure::{
    encode, frame, Auth, Ballot, Duration, ElectionState, Header, Message, NodeId, Op, OpId,
    Packet, Proposal, Renewal, MAX_FRAME_SIZE, MAX_PACKET_SIZE, MAX_RECORD_SIZE, MAX_SEALED_SIZE,
    PROTOCOL_VERSION,
};
use tenure_fuzz::cluster::{self, Step, Step::*};

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&d).unwrap();
    for e in fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            fs::remove_file(p).unwrap();
        }
    }
    d
}

fn write(d: &Path, n: &mut usize, name: &str, bytes: &[u8]) {
    fs::write(d.join(format!("seed-{:02}-{name}", *n)), bytes).unwrap();
    *n += 1;
}

fn packets() -> Vec<(&'static str, Packet)> {
    let header = Header {
        protocol: PROTOCOL_VERSION,
        cluster: 7,
        from: NodeId(2),
        renewal: Renewal::Lease,
    };
    let ballot = Ballot {
        round: 3,
        node: NodeId(2),
    };
    let be_master = Op::BeMaster {
        node: NodeId(2),
        version: Some(41),
        lease: Duration::from_secs(1),
        id: OpId {
            incarnation: 2,
            seq: 17,
        },
    };
    let release = Op::Release {
        node: NodeId(2),
        version: 41,
        successor: Some(NodeId(3)),
        id: OpId {
            incarnation: 2,
            seq: 18,
        },
    };
    let state = ElectionState {
        master: Some(NodeId(2)),
        version: Some(41),
        lease: Duration::from_secs(1),
        op: Some(OpId {
            incarnation: 2,
            seq: 17,
        }),
        successor: None,
        term: Some(41),
        members_version: None,
        members_digest: 0,
    };
    let m = |message| Packet { header, message };
    vec![
        (
            "prepare",
            m(Message::Prepare {
                instance: 42,
                ballot,
            }),
        ),
        (
            "promise",
            m(Message::Promise {
                instance: 42,
                ballot,
                accepted: Some(Proposal {
                    ballot: Ballot {
                        round: 2,
                        node: NodeId(1),
                    },
                    op: be_master,
                }),
                age: Duration::ZERO,
            }),
        ),
        (
            "promise-empty",
            m(Message::Promise {
                instance: 0,
                ballot,
                accepted: None,
                age: Duration::from_millis(250),
            }),
        ),
        (
            "accept",
            m(Message::Accept {
                instance: 42,
                ballot,
                op: be_master,
                age: Duration::ZERO,
            }),
        ),
        (
            "accept-release",
            m(Message::Accept {
                instance: 42,
                ballot,
                op: release,
                age: Duration::from_millis(40),
            }),
        ),
        (
            "accepted",
            m(Message::Accepted {
                instance: 42,
                ballot,
            }),
        ),
        (
            "reject",
            m(Message::Reject {
                instance: 42,
                ballot,
                promised: Ballot {
                    round: 9,
                    node: NodeId(3),
                },
            }),
        ),
        (
            "commit",
            m(Message::Commit {
                instance: 42,
                ballot,
            }),
        ),
        (
            "chosen",
            m(Message::Chosen {
                instance: 41,
                op: be_master,
            }),
        ),
        ("catch-up", m(Message::CatchUp { next_instance: 40 })),
        (
            "rejoin-query",
            m(Message::RejoinQuery { nonce: 0x1234_5678 }),
        ),
        (
            "rejoin-reply",
            m(Message::RejoinReply {
                nonce: 0x1234_5678,
                instance: 42,
                promised: ballot,
            }),
        ),
        (
            "snapshot",
            m(Message::Snapshot {
                next_instance: 42,
                state,
            }),
        ),
        (
            "accept-max",
            m(Message::Accept {
                instance: u64::MAX,
                ballot: Ballot {
                    round: u64::MAX,
                    node: NodeId(u16::MAX),
                },
                op: Op::BeMaster {
                    node: NodeId(u16::MAX),
                    version: Some(u64::MAX),
                    lease: Duration::MAX,
                    id: OpId {
                        incarnation: u32::MAX,
                        seq: u32::MAX,
                    },
                },
                age: Duration::MAX,
            }),
        ),
        (
            "renew",
            m(Message::Renew {
                ballot,
                term: 41,
                seq: 7,
            }),
        ),
        (
            "renewed",
            m(Message::Renewed {
                ballot,
                term: 41,
                seq: 7,
            }),
        ),
        (
            "renew-max",
            m(Message::Renew {
                ballot: Ballot {
                    round: u64::MAX,
                    node: NodeId(u16::MAX),
                },
                term: u64::MAX,
                seq: u32::MAX,
            }),
        ),
        (
            "commit-logged",
            Packet {
                header: Header {
                    renewal: Renewal::Logged,
                    ..header
                },
                message: Message::Commit {
                    instance: 42,
                    ballot,
                },
            },
        ),
    ]
}

fn main() {
    let auth = Auth::key(tenure_fuzz::KEY);
    let mut sealed_frames = Vec::new();

    // decode
    let d = dir("decode");
    let mut n = 0;
    for (name, p) in packets() {
        let mut buf = [0u8; MAX_PACKET_SIZE];
        let len = encode(&p, &mut buf).unwrap();
        write(&d, &mut n, name, &buf[..len]);
        let mut buf = [0u8; MAX_SEALED_SIZE];
        let len = seal(&p, &auth, &mut buf).unwrap();
        write(&d, &mut n, &format!("{name}-sealed"), &buf[..len]);
        sealed_frames.push(buf[..len].to_vec());
    }
    // Records from a cluster that elected a master, restarted a node and released.
    let mut steps = vec![Run(64); 4];
    steps.extend([
        Reboot(1),
        Run(64),
        Release(0),
        Release(1),
        Release(2),
        Run(64),
    ]);
    let c = cluster::run(&cluster::encode(0, false, &steps));
    for (i, r) in c.records().into_iter().enumerate() {
        let mut buf = [0u8; MAX_RECORD_SIZE];
        let len = r.encode(&mut buf).unwrap();
        write(&d, &mut n, &format!("record-{i}"), &buf[..len]);
    }
    // Frames the cluster really sent.
    for (i, f) in c.sent().iter().take(6).enumerate() {
        write(&d, &mut n, &format!("sent-{i}"), f);
        sealed_frames.push(f.clone());
    }
    write(&d, &mut n, "empty", &[]);
    // A prepare whose ballot node is an overlong varint (`85 00` for 5): it decodes.
    write(
        &d,
        &mut n,
        "overlong-varint",
        &[0, 7, 2, 0, 0x31, 3, 0x85, 0],
    );

    // deframe
    let d = dir("deframe");
    let mut n = 0;
    let framed = |bytes: &[u8]| {
        let mut buf = vec![0u8; bytes.len() + bytes.len() / 254 + 2];
        let len = frame(bytes, &mut buf).unwrap();
        buf.truncate(len);
        buf
    };
    for (i, f) in sealed_frames.iter().enumerate().step_by(3) {
        write(&d, &mut n, &format!("frame-{i}"), &framed(f));
    }
    let mut stream = vec![0u8];
    for f in sealed_frames.iter().take(4) {
        stream.extend(framed(f));
        stream.extend([1, 9, 3, 0, 0]); // a malformed frame and a resync zero
    }
    write(&d, &mut n, "stream", &stream);
    let long: Vec<u8> = (0..3 * MAX_FRAME_SIZE)
        .map(|i| (i % 255) as u8 + 1)
        .collect();
    write(&d, &mut n, "overlong", &framed(&long));
    let runs: Vec<u8> = (0..600)
        .map(|i| if i % 97 == 0 { 0 } else { (i % 251) as u8 + 1 })
        .collect();
    write(&d, &mut n, "runs", &framed(&runs));
    write(&d, &mut n, "254", &framed(&[7u8; 254]));
    write(&d, &mut n, "zeros", &framed(&[0u8; 40]));
    write(&d, &mut n, "lone-zeros", &[0, 0, 0]);
    write(&d, &mut n, "unterminated", &framed(&sealed_frames[0])[..20]);

    // cluster
    let d = dir("cluster");
    let mut n = 0;
    let mut scenario = |name: &str, seed: u8, pipelined: bool, steps: &[Step]| {
        let bytes = cluster::encode(seed, pipelined, steps);
        let c = cluster::run(&bytes);
        println!("cluster {name}: {:?}", c.stats);
        write(&d, &mut n, name, &bytes);
    };
    let elect = [Run(64), Run(64), Run(64)];
    scenario("elect", 0, false, &elect);
    scenario(
        "renew",
        1,
        false,
        &[
            &elect[..],
            &[Sleep(20), Run(64), Sleep(20), Run(64), Sleep(20), Run(64)],
        ]
        .concat(),
    );
    for i in 0..3 {
        scenario(
            &format!("crash-{i}"),
            2,
            false,
            &[
                &elect[..],
                &[
                    Crash(i),
                    Sleep(60),
                    Run(64),
                    Run(64),
                    Restart(i),
                    Run(64),
                    Sleep(30),
                    Run(64),
                ],
            ]
            .concat(),
        );
        scenario(
            &format!("reboot-{i}"),
            3,
            false,
            &[
                &elect[..],
                &[Reboot(i), Run(64), Sleep(60), Run(64), Run(64)],
            ]
            .concat(),
        );
    }
    scenario(
        "release",
        4,
        false,
        &[
            &elect[..],
            &[
                Release(0),
                Release(1),
                Release(2),
                Run(64),
                Run(64),
                Sleep(10),
                Run(64),
            ],
        ]
        .concat(),
    );
    scenario(
        "hand-over",
        5,
        false,
        &[
            &elect[..],
            &[
                HandOver(0, 2),
                HandOver(1, 3),
                HandOver(2, 1),
                Run(64),
                Run(64),
                Sleep(15),
                Run(64),
            ],
        ]
        .concat(),
    );
    scenario(
        "duel",
        6,
        false,
        &[
            Campaign(0),
            Campaign(1),
            Campaign(2),
            Run(64),
            Run(64),
            Sleep(10),
            Run(64),
            Run(64),
        ],
    );
    scenario(
        "hold-crash",
        7,
        false,
        &[
            Run(64),
            Run(64),
            Hold(0),
            Hold(1),
            Hold(2),
            Sleep(20),
            Run(64),
            Exec(0, 1),
            Exec(1, 2),
            Crash(2),
            Run(64),
            Restart(2),
            Hold(0),
            Hold(1),
            Run(64),
            Sleep(60),
            Run(64),
        ],
    );
    scenario(
        "pipelined",
        8,
        true,
        &[
            Hold(0),
            Hold(1),
            Hold(2),
            Timeout(0),
            Timeout(1),
            Timeout(2),
            Exec(0, 3),
            Exec(1, 3),
            Exec(2, 3),
            Run(64),
            Exec(0, 9),
            Exec(1, 9),
            Exec(2, 9),
            Run(64),
            Crash(1),
            Restart(1),
            Run(64),
            Sleep(60),
            Hold(0),
            Hold(2),
            Run(64),
        ],
    );
    scenario(
        "network",
        9,
        false,
        &[
            Timeout(0),
            Timeout(1),
            Duplicate(0),
            Drop(1),
            Redirect(0, 2),
            Mutate(0, 5, 1),
            Truncate(1, 10),
            Deliver(2),
            Deliver(0),
            Run(64),
            Sleep(10),
            Timeout(2),
            Duplicate(0),
            Duplicate(1),
            Run(64),
            Run(64),
        ],
    );
    scenario(
        "replay",
        10,
        false,
        &[
            &elect[..],
            &[
                Reboot(0),
                Reboot(1),
                Run(64),
                Sleep(60),
                Run(64),
                Replay(0, 0x80),
                Replay(3, 1),
                Replay(7, 2),
                Replay(11, 0),
                Replay(20, 1),
                Replay(40, 2),
                Run(64),
                Sleep(30),
                Run(64),
            ],
        ]
        .concat(),
    );
    scenario(
        "lease-edge",
        11,
        false,
        &[
            &elect[..],
            &[
                Crash(0),
                Crash(1),
                Crash(2),
                Restart(0),
                Restart(1),
                Restart(2),
                Run(64),
                Advance(200),
                Advance(200),
                Advance(200),
                Advance(200),
                Advance(190),
                Nudge(255),
                Run(64),
                Sleep(50),
                Run(64),
            ],
        ]
        .concat(),
    );
    scenario(
        "slow",
        12,
        false,
        &[
            Timeout(0),
            Advance(40),
            Deliver(0),
            Advance(40),
            Deliver(0),
            Timeout(1),
            Advance(60),
            Tick,
            Tick,
            Tick,
            Tick,
            Tick,
            Sleep(3),
            Tick,
            Tick,
            Tick,
            Tick,
        ],
    );
    // A few pseudo-random scenarios.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for k in 0..8 {
        // Flags: bit 0 pipelined, bit 1 logged renewal.
        let mut bytes = vec![k as u8, (k % 4) as u8];
        for _ in 0..120 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push((x >> 24) as u8);
        }
        let c = cluster::run(&bytes);
        println!("cluster random-{k}: {:?}", c.stats);
        write(&d, &mut n, &format!("random-{k}"), &bytes);
    }

    // The same election, renewals, crash and hand-over in logged mode.
    for (name, pipelined, steps) in [
        ("logged-elect", false, vec![Run(64); 3]),
        (
            "logged-renew",
            true,
            [
                vec![Run(64); 3],
                vec![Sleep(20), Run(64), Sleep(20), Run(64), Sleep(20), Run(64)],
            ]
            .concat(),
        ),
        (
            "logged-crash",
            false,
            [
                vec![Run(64); 3],
                vec![Crash(0), Sleep(60), Run(64), Run(64), Restart(0), Run(64)],
            ]
            .concat(),
        ),
    ] {
        let bytes = cluster::encode_with(3, pipelined, Renewal::Logged, &steps);
        let c = cluster::run(&bytes);
        println!("cluster {name}: {:?}", c.stats);
        write(&d, &mut n, name, &bytes);
    }

    // hostile: the node campaigns (timer), a peer promises and accepts its own ballot and
    // op, the node becomes master and renews; then edge values.
    let d = dir("hostile");
    let mut n = 0;
    let write = |d: &Path, n: &mut usize, name: &str, bytes: &[u8]| {
        println!(
            "hostile {name}: (master, instance) {:?}",
            tenure_fuzz::hostile::run(bytes)
        );
        write(d, n, name, bytes);
    };
    let timer = [7u8];
    // from n2, instance = node's, Promise(mine, none, age zero)
    let promise = [0u8, 0, 3, 0, 1, 0, 0, 0];
    let accepted = [0u8, 0, 3, 0, 3, 0]; // from n2, Accepted(mine)
    let commit = [0u8, 1, 3, 0, 5, 0]; // from n3, Commit(mine)
    let elect: Vec<u8> = [&timer[..], &promise, &accepted, &commit].concat();
    write(&d, &mut n, "empty", &[0]);
    write(&d, &mut n, "elect", &[&[0u8][..], &elect].concat());
    // Lease mode (seed byte's top bit clear): the timer sends a Renew, n2 echoes it.
    let mut renew = vec![1u8];
    renew.extend(&elect);
    for _ in 0..4 {
        renew.extend([7u8, 0, 0, 3, 0, 9, 1]); // timer (Renew), Renewed (the echo)
    }
    write(&d, &mut n, "renew", &renew);
    // Logged mode (top bit set): each renewal is an Accept of a fresh BeMaster.
    let mut logged = vec![0x81u8];
    logged.extend(&elect);
    for _ in 0..4 {
        logged.extend([7u8, 0, 0, 3, 0, 3, 0]); // timer (renewal Accept), Accepted
    }
    write(&d, &mut n, "renew-logged", &logged);
    write(
        &d,
        &mut n,
        "release",
        &[&renew[..], &[9u8, 1], &[0, 0, 3, 0, 3, 0]].concat(),
    );
    write(
        &d,
        &mut n,
        "restart",
        &[&renew[..], &[10u8], &timer, &promise, &accepted].concat(),
    );
    // Snapshot far ahead (instance near u64::MAX), then chosen at the same instance.
    write(
        &d,
        &mut n,
        "edge-snapshot",
        &[
            0u8, 0, 0, 3, 5, 8, 0, 0, 0, 0, 0, 0, 3, 5, 6, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5,
        ],
    );
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for k in 0..6 {
        let mut bytes = vec![k as u8];
        for _ in 0..150 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push((x >> 24) as u8);
        }
        write(&d, &mut n, &format!("random-{k}"), &bytes);
    }
}
