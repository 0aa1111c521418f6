//! The network-namespace harness itself (`tenure_e2e::netns`): nodes reach each other
//! over the bridge, and each kind of fault rule drops what it should and nothing else.
//! Skipped with a message without root, `ip` or `nft`; a failure when `CI` is set.

#![cfg(target_os = "linux")]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tenure_e2e::netns::{skip_or_fail, Faults, Lab};

const PORT: u16 = 7400;

/// A socket bound to `lab`'s node `i` address, created on a thread inside its namespace
/// (a socket stays in the namespace it was created in).
fn socket(lab: &Arc<Lab>, i: usize) -> UdpSocket {
    let lab = Arc::clone(lab);
    std::thread::spawn(move || {
        lab.enter(&lab.node_ns(i)).unwrap();
        let s = UdpSocket::bind(SocketAddr::from((lab.addr(i), PORT))).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        s
    })
    .join()
    .unwrap()
}

/// How many of `n` datagrams sent by `from` to `to` arrive (all fit in the receive
/// buffer: sent first, then read until 50 ms pass without one).
fn delivered(lab: &Lab, socks: &[UdpSocket], from: usize, to: usize, n: usize) -> usize {
    let dest = SocketAddr::from((lab.addr(to), PORT));
    let (tx, rx) = (&socks[from - 1], &socks[to - 1]);
    let mut buf = [0u8; 64];
    rx.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    while rx.recv_from(&mut buf).is_ok() {} // stale ones
    for k in 0..n {
        tx.send_to(&(k as u32).to_le_bytes(), dest).unwrap();
        if k % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut got = 0;
    while rx.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    got
}

#[test]
fn namespaces_connect_and_fault_rules_drop_what_they_should() {
    if !skip_or_fail("netns_harness") {
        return;
    }
    let lab = Arc::new(Lab::new(3));
    let socks: Vec<UdpSocket> = (1..=3).map(|i| socket(&lab, i)).collect();
    let n = 200;
    // The first datagrams may wait for ARP; warm up, then all arrive.
    delivered(&lab, &socks, 1, 2, 5);
    delivered(&lab, &socks, 2, 1, 5);
    delivered(&lab, &socks, 1, 3, 5);
    assert_eq!(delivered(&lab, &socks, 1, 2, n), n);
    assert_eq!(delivered(&lab, &socks, 2, 1, n), n);

    // One-way cut 1 -> 2: 1 -> 2 dropped, 2 -> 1 and 1 -> 3 untouched.
    lab.set_faults(&Faults::none().cut_one_way(1, 2));
    assert_eq!(delivered(&lab, &socks, 1, 2, n), 0);
    assert_eq!(delivered(&lab, &socks, 2, 1, n), n);
    assert_eq!(delivered(&lab, &socks, 1, 3, n), n);

    // Deaf node 1: hears nothing, is still heard.
    lab.set_faults(&Faults::none().deaf(1));
    assert_eq!(delivered(&lab, &socks, 2, 1, n), 0);
    assert_eq!(delivered(&lab, &socks, 1, 2, n), n);

    // Split {1} | {2, 3}: nothing crosses, 2 <-> 3 untouched.
    lab.set_faults(&Faults::none().split(&[1], 3));
    assert_eq!(delivered(&lab, &socks, 1, 3, n), 0);
    assert_eq!(delivered(&lab, &socks, 3, 1, n), 0);
    assert_eq!(delivered(&lab, &socks, 2, 3, n), n);

    // 50 % random loss: some arrive, some do not (bounds far from chance).
    lab.set_faults(&Faults::loss(50));
    let got = delivered(&lab, &socks, 1, 2, n);
    assert!(n / 5 < got && got < n * 4 / 5, "{got} of {n} at 50 % loss");

    // Cleared: all arrive again; loopback is never touched by the rules.
    lab.clear_faults();
    assert_eq!(delivered(&lab, &socks, 2, 1, n), n);
    assert!(!lab.list_rules(1).contains("drop"), "{}", lab.list_rules(1));

    // A tap on the bridge (for QEMU guests) can be created.
    let tap = lab.add_tap(1);
    assert!(tap.contains(&std::process::id().to_string()));

    // Tear-down removes every namespace of this lab.
    let names: Vec<String> = (1..=3)
        .map(|i| lab.node_ns(i))
        .chain([lab.bridge_ns()])
        .collect();
    drop(socks);
    drop(Arc::try_unwrap(lab).unwrap());
    for ns in names {
        assert!(
            !std::path::Path::new(&format!("/run/netns/{ns}")).exists(),
            "{ns} left behind"
        );
    }
}
