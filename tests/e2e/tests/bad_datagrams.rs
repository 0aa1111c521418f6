//! Checks `docs/algorithm.md` §6 "Hostile networks: authentication and replay" on a
//! cluster without a key: garbage and foreign datagrams are dropped, each counted once
//! under its reason (the core's `DropReason`s, plus the adapter's `unknown_source`), and
//! the cluster keeps electing and renewing; failed sends are counted and never stop a
//! node.

use std::net::UdpSocket;
use std::time::Duration;

use tenure::{Header, Message, NodeId, Packet, Renewal, PROTOCOL_VERSION};
use tenure_e2e::*;
use tokio::time::Instant;

fn encode(cluster: u32, from: u16, protocol: u8) -> Vec<u8> {
    encode_in(cluster, from, protocol, Renewal::Lease)
}

fn encode_in(cluster: u32, from: u16, protocol: u8, renewal: Renewal) -> Vec<u8> {
    let packet = Packet {
        header: Header {
            protocol,
            cluster,
            from: NodeId(from),
            renewal,
        },
        message: Message::CatchUp { next_instance: 0 },
    };
    let mut buf = [0u8; tenure::MAX_PACKET_SIZE];
    let n = tenure::encode(&packet, &mut buf).unwrap();
    buf[..n].to_vec()
}

#[test]
fn garbage_and_foreign_datagrams_are_dropped_counted_and_harmless() {
    let _one = one_at_a_time();
    let dir = TempDir::new("hostile");
    // Three members, two running: node 3's address is the "attacker's" socket, so its
    // datagrams come from a member address and reach the decoder.
    let configs = configs(&dir, &candidates(3), LEASE);
    let member3 = UdpSocket::bind(configs[2].listen).unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cluster = configs[0].core.cluster_id;
    runtime().block_on(async {
        let handles = [start(&configs[0]), start(&configs[1])];
        let refs: Vec<&tenure_tokio::Handle> = handles.iter().collect();
        wait_master(&refs, liveness_bound(LEASE)).await;
        let target = configs[0].listen;

        let attacks: Vec<(&UdpSocket, Vec<u8>)> = vec![
            // Garbage after this protocol's version byte (without it, the first byte
            // would read as another protocol's version: the version comes first).
            (
                &member3,
                [&[PROTOCOL_VERSION][..], b"\xff\xfe garbage"].concat(),
            ),
            (&member3, Vec::new()),
            (&member3, vec![0xAB; 4000]),
            (&member3, encode(cluster + 1, 3, PROTOCOL_VERSION)),
            // Poses as node 2 from node 3's address.
            (&member3, encode(cluster, 2, PROTOCOL_VERSION)),
            (&member3, encode(cluster, 3, PROTOCOL_VERSION + 1)),
            // A protocol-1 node, and a node of the other renewal mode: a mixed cluster.
            (&member3, encode(cluster, 3, 1)),
            (
                &member3,
                encode_in(cluster, 3, PROTOCOL_VERSION, Renewal::Logged),
            ),
            // A non-member's id from a member's address: a mismatch too.
            (&member3, encode(cluster, 9, PROTOCOL_VERSION)),
            (&stranger, encode(cluster, 3, PROTOCOL_VERSION)),
        ];
        // Bounded flood: 20 rounds of every attack, while the cluster runs.
        let before = Instant::now();
        for _ in 0..20 {
            for (socket, bytes) in &attacks {
                socket.send_to(bytes, target).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Oversized, malformed and mismatched frames are the core's reasons now
        // (`Node::handle_frame_from`); only an unknown source is the adapter's.
        let expected = |c: &tenure_tokio::Counters| {
            let d = c.core.dropped;
            d.malformed >= 40
                && d.oversized >= 20
                && d.wrong_cluster >= 20
                && d.source_mismatch >= 40
                && d.newer_protocol >= 20
                && d.older_protocol >= 20
                && d.wrong_renewal >= 20
                && c.unknown_source >= 20
        };
        let counted = wait_for(Duration::from_secs(3), || {
            expected(&handles[0].counters()).then_some(())
        })
        .await;
        let c = handles[0].counters();
        assert!(
            counted.is_some(),
            "not every bad datagram was counted: {c:?}"
        );
        let metrics = handles[0].metrics();
        for reason in [
            "malformed",
            "oversized",
            "wrong_cluster",
            "source_mismatch",
            "newer_protocol",
            "older_protocol",
            "wrong_renewal",
            "unknown_source",
        ] {
            let line = metrics
                .lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "tenure_messages_dropped_total{{reason=\"{reason}\"}}"
                    ))
                })
                .unwrap_or_else(|| panic!("no metric for {reason}"));
            let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(value >= 20, "{line}");
        }
        // Each reason is one sample, and the samples add up to every drop: no datagram
        // is counted under two reasons.
        let samples: Vec<u64> = metrics
            .lines()
            .filter(|l| l.starts_with("tenure_messages_dropped_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(
            samples.len(),
            1 + tenure::DropReason::ALL.len(),
            "{metrics}"
        );
        let c = handles[0].counters();
        let by_reason: u64 = c.drops().iter().map(|(_, n)| n).sum();
        assert_eq!(by_reason, c.dropped_total(), "{c:?}");

        // The cluster kept working: a master, renewing (its completed renewal rounds
        // grow; in lease mode renewals move no version).
        let m = wait_master(&refs, liveness_bound(LEASE)).await;
        let r1 = handles[usize::from(m.0) - 1]
            .counters()
            .core
            .renewals_completed;
        tokio::time::sleep(LEASE).await;
        let m2 = wait_master(&refs, liveness_bound(LEASE)).await;
        let r2 = handles[usize::from(m2.0) - 1]
            .counters()
            .core
            .renewals_completed;
        assert!(
            m2 != m || r2 > r1,
            "no renewal under bad traffic ({r1} then {r2} rounds, after {:?})",
            before.elapsed()
        );
        for h in &handles {
            h.shutdown().await.unwrap();
        }
    });
}

#[test]
fn failed_sends_are_counted_and_never_stop_the_node() {
    let _one = one_at_a_time();
    let dir = TempDir::new("sendfail");
    // Member 3's address is the broadcast address: without SO_BROADCAST every send to
    // it fails with EACCES, as a host firewall's refusal would. Nodes 1 and 2 are a
    // majority and must elect and renew regardless.
    let mut configs = configs(&dir, &candidates(3), LEASE);
    let blocked: std::net::SocketAddr = "255.255.255.255:9".parse().unwrap();
    let pairs: Vec<_> = configs
        .iter()
        .map(|c| {
            let id = c.core.node_id;
            let addr = if id == NodeId(3) { blocked } else { c.listen };
            (tenure::Member::candidate(id.0), addr)
        })
        .collect();
    for c in configs.iter_mut() {
        let mut fresh = tenure_tokio::NodeConfig::new(
            c.core.cluster_id,
            c.core.node_id,
            &pairs,
            c.data_dir.clone(),
        )
        .unwrap();
        fresh.core.lease = c.core.lease;
        fresh.first_boot = true;
        *c = fresh;
    }
    runtime().block_on(async {
        let handles: Vec<_> = configs[..2].iter().map(start).collect();
        let refs: Vec<&tenure_tokio::Handle> = handles.iter().collect();
        let m = wait_master(&refs, liveness_bound(LEASE)).await;
        tokio::time::sleep(LEASE).await;
        let h = &handles[usize::from(m.0) - 1];
        assert!(h.is_master(), "the master lost the role over failing sends");
        // The master sends to all members (followers only answer it).
        let c = h.counters();
        assert!(c.datagrams_out > 0);
        assert!(
            c.send_failures(tenure_tokio::SendError::PermissionDenied) > 0,
            "sends to the broadcast address should fail: {c:?}"
        );
        assert!(h
            .metrics()
            .contains("tenure_send_failures_total{reason=\"permission_denied\"}"));
        for h in &handles {
            h.shutdown().await.unwrap();
        }
    });
}
