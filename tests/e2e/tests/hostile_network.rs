//! Checks `docs/algorithm.md` §6 "Hostile networks: authentication and replay" (and §1
//! "The promise" under attack), end to end (issue 7): three real tokio nodes on
//! 127.0.0.1, authenticated with a cluster key, and an attacker with a raw UDP socket.
//!
//! The nodes talk through a forwarding proxy that the test controls: node `j` believes
//! member `i` lives at the proxy socket `proxy[j][i]`, which forwards to `i`'s real socket
//! from `proxy[i][j]`. The proxy records every authentic frame (the "session"), and the
//! attacker sends from the very addresses the nodes know their peers by, without binding
//! or disturbing any node's own socket. Frames are also sent from an unknown address.
//!
//! While the attacks run, a sampler thread reads `is_master_at` of every node at one
//! instant of the shared monotonic clock, every millisecond: never two masters, exactly
//! one nearly all the time, and no gap without a master longer than the liveness bound.
//! Each attack kind must show up in the drop counters by exactly its reason, frame for
//! frame (frames of protocol 1 and of the other renewal mode, with valid tags, included:
//! a mixed cluster is refused; frames of protocol 4, whose tags this build cannot
//! verify, are counted as that protocol, not as bad tags); the replayed session (also after the master crashed and
//! restarted) must not create a second master nor lower any node's fencing token or
//! register version.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use siphasher::sip128::{Hasher128, SipHasher24};
use std::hash::Hasher;
use tenure::auth::{KEY_LEN, TAG_LEN};
use tenure::{
    Auth, DropReason, Member, NodeId, Packet, Renewal, MAX_PACKET_SIZE, MAX_SEALED_SIZE,
    PROTOCOL_VERSION,
};
use tenure_e2e::TempDir;
use tenure_tokio::{Counters, Handle, NodeConfig};
use tokio::time::Instant;

const NODES: usize = 3;
const ALL: [usize; NODES] = [0, 1, 2];
const CLUSTER: u32 = 0x7e57;
const KEY: [u8; KEY_LEN] = [0x5a; KEY_LEN];
const OTHER_KEY: [u8; KEY_LEN] = [0xa5; KEY_LEN];
const LEASE: Duration = Duration::from_millis(500);
/// Frames of each attack kind sent at each node.
const PER_NODE: usize = 100;
/// The longest the cluster may go without a master (a lease for a crashed master's term
/// to run out, plenty of Paxos rounds, slack for a loaded 2-core machine).
const LIVENESS: Duration = Duration::from_millis(500 + 3000);
/// The whole test must end well within this (every loop is bounded by it too).
const TEST_BOUND: Duration = Duration::from_secs(60);

// ----- small helpers ------------------------------------------------------------------

/// xorshift64*: reproducible bytes without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// SipHash-2-4-128 keyed by `key`'s first half, over `m`.
fn sip128(key: &[u8], m: &[u8]) -> [u8; 16] {
    let mut h = SipHasher24::new_with_key(key.try_into().unwrap());
    h.write(m);
    h.finish128().as_bytes()
}

/// The frame tag of arbitrary bytes, computed with the `siphasher` crate as
/// `tenure::auth` documents it (SipHash-2-4-128 under the key derived from the cluster
/// key's two halves): lets a key holder tag bytes that are no packet.
fn tag(key: &[u8; KEY_LEN], body: &[u8]) -> Vec<u8> {
    sip128(&sip128(&key[..16], &key[16..]), body).to_vec()
}

fn with_tag(key: &[u8; KEY_LEN], body: &[u8]) -> Vec<u8> {
    let mut frame = body.to_vec();
    frame.extend_from_slice(&tag(key, body));
    frame
}

fn seal(packet: &Packet, key: &[u8; KEY_LEN]) -> Vec<u8> {
    let mut buf = [0u8; MAX_SEALED_SIZE];
    let n = tenure::auth::seal(packet, &Auth::key(*key), &mut buf).unwrap();
    buf[..n].to_vec()
}

/// The packet inside an authentic frame.
fn body(frame: &[u8]) -> &[u8] {
    &frame[..frame.len() - TAG_LEN]
}

fn packet_of(frame: &[u8]) -> Packet {
    tenure::decode(body(frame)).unwrap()
}

/// `packet` as a protocol-1 node sends it, tagged with the cluster key: version byte 1,
/// and a header without the renewal mode (protocol 2 added it).
fn protocol_one(packet: &Packet) -> Vec<u8> {
    let encode = |renewal| {
        let mut p = *packet;
        p.header.renewal = renewal;
        let mut buf = [0u8; MAX_PACKET_SIZE];
        let n = tenure::encode(&p, &mut buf).unwrap();
        buf[..n].to_vec()
    };
    let (lease, logged) = (encode(Renewal::Lease), encode(Renewal::Logged));
    // The one byte where both encodings differ is the renewal field.
    let at = lease.iter().zip(&logged).position(|(a, b)| a != b).unwrap();
    let mut old = lease;
    old.remove(at);
    old[0] = 1;
    with_tag(&KEY, &old)
}

// ----- the recording, forwarding proxy ------------------------------------------------

/// One authentic frame seen on the wire.
#[derive(Clone)]
struct Recorded {
    from: usize,
    bytes: Vec<u8>,
}

struct Proxy {
    /// The nodes' own (listening) addresses.
    listen: Vec<SocketAddr>,
    /// `sockets[j][i]`: where node `j` believes member `i` is (`None` for `i == j`).
    sockets: Vec<Vec<Option<Arc<UdpSocket>>>>,
    recording: Arc<Mutex<Vec<Recorded>>>,
    record: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

const RECORDING_CAP: usize = 4000;

impl Proxy {
    fn start(listen: Vec<SocketAddr>) -> Self {
        let sockets: Vec<Vec<Option<Arc<UdpSocket>>>> = (0..NODES)
            .map(|j| {
                (0..NODES)
                    .map(|i| {
                        (i != j).then(|| {
                            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                            Arc::new(s)
                        })
                    })
                    .collect()
            })
            .collect();
        let mut proxy = Proxy {
            listen,
            sockets,
            recording: Arc::default(),
            record: Arc::new(AtomicBool::new(true)),
            forwarded: Arc::default(),
            stop: Arc::default(),
            threads: Vec::new(),
        };
        for j in 0..NODES {
            for i in (0..NODES).filter(|i| *i != j) {
                // Receives what node j sends to "i"; forwards it to i from where i
                // believes j is.
                let inbound = Arc::clone(proxy.sockets[j][i].as_ref().unwrap());
                let outbound = Arc::clone(proxy.sockets[i][j].as_ref().unwrap());
                let (from_addr, to_addr) = (proxy.listen[j], proxy.listen[i]);
                let recording = Arc::clone(&proxy.recording);
                let record = Arc::clone(&proxy.record);
                let forwarded = Arc::clone(&proxy.forwarded);
                let stop = Arc::clone(&proxy.stop);
                proxy.threads.push(std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    let end = std::time::Instant::now() + TEST_BOUND;
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < end {
                        let Ok((n, src)) = inbound.recv_from(&mut buf) else {
                            continue; // read timeout: look at `stop` again
                        };
                        if src != from_addr {
                            continue; // strays (the nodes' own frames all come from `from_addr`)
                        }
                        // Address hellos are the adapter's, not core frames: forwarded,
                        // not recorded as the session the attacks replay and edit.
                        let hello = tenure_tokio::addresses::is_hello(&buf[..n]);
                        if record.load(Ordering::Relaxed) && !hello {
                            let mut r = recording.lock().unwrap();
                            if r.len() < RECORDING_CAP {
                                r.push(Recorded {
                                    from: j,
                                    bytes: buf[..n].to_vec(),
                                });
                            }
                        }
                        if outbound.send_to(&buf[..n], to_addr).is_ok() {
                            forwarded.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
        }
        proxy
    }

    /// The socket node `target` knows member `claimed` by.
    fn as_member(&self, target: usize, claimed: usize) -> &UdpSocket {
        self.sockets[target][claimed].as_ref().unwrap()
    }

    fn config(&self, dir: &TempDir, j: usize) -> NodeConfig {
        let pairs: Vec<(Member, SocketAddr)> = (0..NODES)
            .map(|i| {
                let addr = if i == j {
                    self.listen[j]
                } else {
                    self.as_member(j, i).local_addr().unwrap()
                };
                (Member::candidate(i as u16 + 1), addr)
            })
            .collect();
        let mut c = NodeConfig::new(
            CLUSTER,
            NodeId(j as u16 + 1),
            &pairs,
            dir.0.join(format!("node-{}", j + 1)),
        )
        .unwrap();
        c.core.lease = tenure_tokio::clock::to_core(LEASE);
        c.core.auth = Auth::key(KEY);
        c.first_boot = true;
        c.validate().unwrap();
        c
    }

    fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

// ----- the sampler --------------------------------------------------------------------

#[derive(Debug, Default)]
struct Samples {
    total: u64,
    /// Samples after the first master appeared, by number of claimants.
    none: u64,
    one: u64,
    many: u64,
    longest_gap: Duration,
    /// Instants at which two nodes claimed the role (empty in a correct run).
    double: Vec<String>,
    /// A node's fencing token or register version going down: a replay rolled its view
    /// back.
    regressions: Vec<String>,
    /// Master changes seen by the sampler.
    changes: u64,
}

struct Sampler {
    /// `(generation, handle)` per node; the generation changes when the node restarts.
    slots: Arc<Mutex<Vec<(u32, Handle)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Samples>>,
}

impl Sampler {
    fn start(handles: Vec<Handle>) -> Self {
        let slots = Arc::new(Mutex::new(handles.into_iter().map(|h| (0, h)).collect()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let slots = Arc::clone(&slots);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || sample(&slots, &stop))
        };
        Sampler {
            slots,
            stop,
            thread: Some(thread),
        }
    }

    fn replace(&self, index: usize, handle: Handle) {
        let mut slots = self.slots.lock().unwrap();
        let generation = slots[index].0 + 1;
        slots[index] = (generation, handle);
    }

    fn finish(&mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn sample(slots: &Mutex<Vec<(u32, Handle)>>, stop: &AtomicBool) -> Samples {
    let mut s = Samples::default();
    let start = Instant::now();
    let mut last_master_at: Option<Instant> = None;
    let mut last_master: Option<NodeId> = None;
    let mut versions: Vec<(u32, Option<u64>)> = vec![(0, None); NODES];
    let mut tokens: Vec<(u32, Option<u64>)> = vec![(0, None); NODES];
    while !stop.load(Ordering::Relaxed) && start.elapsed() < TEST_BOUND {
        {
            let slots = slots.lock().unwrap();
            let t = Instant::now();
            let claimants: Vec<NodeId> = slots
                .iter()
                .filter(|(_, h)| h.is_master_at(t))
                .map(|(_, h)| h.id())
                .collect();
            s.total += 1;
            if claimants.len() > 1 {
                s.double
                    .push(format!("{claimants:?} at {:?}", t.duration_since(start)));
            }
            if let Some(first) = last_master_at {
                match claimants.len() {
                    0 => s.none += 1,
                    1 => s.one += 1,
                    _ => s.many += 1,
                }
                s.longest_gap = s.longest_gap.max(t.duration_since(first));
            }
            if let [m] = claimants[..] {
                last_master_at = Some(t);
                if last_master != Some(m) {
                    s.changes += 1;
                    last_master = Some(m);
                }
            }
            for (k, (generation, h)) in slots.iter().enumerate() {
                // `None` while no master is live in the view (token) or before any op
                // (version); only a known number may never go down.
                let view = h.view();
                for (name, seen, v) in [
                    ("version", &mut versions[k], view.version),
                    ("token", &mut tokens[k], view.token),
                ] {
                    if seen.0 != *generation {
                        *seen = (*generation, v);
                    } else if v.is_some() {
                        if v < seen.1 {
                            s.regressions.push(format!(
                                "node {} went from {name} {:?} to {v:?}",
                                h.id(),
                                seen.1
                            ));
                        }
                        seen.1 = v;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    s
}

// ----- attacks ------------------------------------------------------------------------

/// The drop counters an attack may move, as one vector: the adapter's own reason (a
/// datagram from an address that is no member's), then every reason of the core that is
/// not part of normal operation, in [`DropReason::ALL`] order (oversized, malformed and
/// bad-tag frames and source mismatches are the core's reasons: `handle_frame_from`).
const REASONS: [&str; R] = [
    "unknown_source",
    "oversized",
    "malformed",
    "bad_tag",
    "newer_protocol",
    "older_protocol",
    "wrong_renewal",
    "wrong_cluster",
    "not_member",
    "source_mismatch",
    "bad_field",
];

/// How many reasons [`REASONS`] holds.
const R: usize = 11;

fn hostile(c: &Counters) -> [u64; R] {
    let mut v = [c.unknown_source; R];
    let core = DropReason::ALL.into_iter().filter(|r| !r.is_benign());
    for (slot, reason) in v[1..].iter_mut().zip(core) {
        *slot = u64::from(c.core.dropped.get(reason));
    }
    v
}

#[test]
fn the_reasons_are_the_adapters_and_every_non_benign_core_reason() {
    let core: Vec<&str> = DropReason::ALL
        .into_iter()
        .filter(|r| !r.is_benign())
        .map(DropReason::label)
        .collect();
    assert_eq!(REASONS[0], tenure_tokio::metrics::UNKNOWN_SOURCE);
    assert_eq!(REASONS[1..], core[..]);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// From the address the target knows another member by.
    Member,
    /// From an address that is no member's.
    Stranger,
}

#[derive(Clone, Copy, Debug)]
enum Attack {
    RandomBytesFromStranger,
    AuthenticFramesFromStranger,
    RandomBytes,
    TruncatedFrames,
    BitFlippedFrames,
    WrongKey,
    OtherClusterOtherKey,
    OtherClusterRightKey,
    Oversized,
    SpoofedFrom,
    TaggedGarbage,
    NewerProtocol,
    OlderProtocol,
    /// Authentic in all but the protocol: a protocol-1 node of the cluster.
    ProtocolOne,
    /// A node of the previous protocol (4, whose tags were keyed BLAKE2s): its version
    /// byte and a tag this build cannot verify, counted as a version mismatch.
    PreviousProtocolTag,
    /// Authentic in all but the renewal mode: a node configured `renewal = "logged"`.
    WrongRenewal,
}

impl Attack {
    const ALL: [Attack; 16] = [
        Attack::RandomBytesFromStranger,
        Attack::AuthenticFramesFromStranger,
        Attack::RandomBytes,
        Attack::TruncatedFrames,
        Attack::BitFlippedFrames,
        Attack::WrongKey,
        Attack::OtherClusterOtherKey,
        Attack::OtherClusterRightKey,
        Attack::Oversized,
        Attack::SpoofedFrom,
        Attack::TaggedGarbage,
        Attack::NewerProtocol,
        Attack::OlderProtocol,
        Attack::ProtocolOne,
        Attack::PreviousProtocolTag,
        Attack::WrongRenewal,
    ];

    /// The drop reason every frame of this kind must be counted under.
    fn reason(self) -> &'static str {
        match self {
            Attack::RandomBytesFromStranger | Attack::AuthenticFramesFromStranger => {
                "unknown_source"
            }
            Attack::RandomBytes
            | Attack::TruncatedFrames
            | Attack::BitFlippedFrames
            | Attack::WrongKey
            | Attack::OtherClusterOtherKey => "bad_tag",
            Attack::OtherClusterRightKey => "wrong_cluster",
            Attack::Oversized => "oversized",
            Attack::SpoofedFrom => "source_mismatch",
            Attack::TaggedGarbage => "malformed",
            Attack::NewerProtocol => "newer_protocol",
            // Version 0 was never a protocol: the header is a bad field, not another
            // protocol (only plausible versions are reported as one).
            Attack::OlderProtocol => "bad_field",
            Attack::ProtocolOne | Attack::PreviousProtocolTag => "older_protocol",
            Attack::WrongRenewal => "wrong_renewal",
        }
    }

    fn source(self) -> Source {
        match self {
            Attack::RandomBytesFromStranger | Attack::AuthenticFramesFromStranger => {
                Source::Stranger
            }
            _ => Source::Member,
        }
    }

    /// One datagram of this kind, for `target`, appearing to come from member `claimed`
    /// (when sent from a member address). `session` holds authentic frames.
    fn datagram(
        self,
        rng: &mut Rng,
        session: &[Recorded],
        target: usize,
        claimed: usize,
    ) -> Vec<u8> {
        // An authentic frame that `claimed` sent (any of its frames, to anyone).
        let theirs: Vec<&Recorded> = session.iter().filter(|r| r.from == claimed).collect();
        let authentic = theirs[rng.below(theirs.len())].bytes.clone();
        let mut packet = packet_of(&authentic);
        match self {
            Attack::RandomBytesFromStranger => {
                let n = rng.below(MAX_SEALED_SIZE + 1);
                rng.bytes(n)
            }
            Attack::RandomBytes => {
                // A frame whose tag fails but whose first byte names another protocol
                // version is counted as that version (`PreviousProtocolTag`): random
                // bytes here start with anything else.
                let n = rng.below(MAX_SEALED_SIZE + 1);
                let mut f = rng.bytes(n);
                if let Some(b) = f.first_mut() {
                    if *b != PROTOCOL_VERSION && (1..=PROTOCOL_VERSION + 8).contains(b) {
                        *b |= 0x80;
                    }
                }
                f
            }
            Attack::AuthenticFramesFromStranger => authentic,
            Attack::TruncatedFrames => {
                let cut = rng.below(authentic.len());
                authentic[..cut].to_vec()
            }
            Attack::BitFlippedFrames => {
                // Any bit but the version byte's (a flip there can name another version,
                // counted as such: `PreviousProtocolTag`).
                let mut f = authentic;
                let bit = 8 + rng.below((f.len() - 1) * 8);
                f[bit / 8] ^= 1 << (bit % 8);
                f
            }
            Attack::WrongKey => seal(&packet, &OTHER_KEY),
            Attack::OtherClusterOtherKey => {
                packet.header.cluster = CLUSTER + 1 + rng.below(1000) as u32;
                seal(&packet, &OTHER_KEY)
            }
            Attack::OtherClusterRightKey => {
                // The same key in another cluster (a copy-pasted key): the tag verifies,
                // the cluster id does not.
                packet.header.cluster = CLUSTER + 1 + rng.below(1000) as u32;
                seal(&packet, &KEY)
            }
            Attack::Oversized => {
                let n = MAX_SEALED_SIZE + 1 + rng.below(8000);
                rng.bytes(n)
            }
            Attack::SpoofedFrom => {
                // A key holder posing as another member than the address it sends from:
                // the target itself, the third member, or a non-member.
                let third = (0..NODES).find(|k| *k != target && *k != claimed).unwrap();
                let pose = [target as u16 + 1, third as u16 + 1, 9][rng.below(3)];
                packet.header.from = NodeId(pose);
                seal(&packet, &KEY)
            }
            Attack::TaggedGarbage => {
                // What a buggy key holder might send: correctly tagged bytes that are no
                // packet (a strict prefix of a packet, or a varint that overflows). The
                // first byte is this protocol's version: any other would be read as a
                // frame of another version (the version byte comes first in every one).
                let b = body(&authentic);
                let garbage = if rng.below(2) == 0 {
                    b[..1 + rng.below(b.len() - 1)].to_vec()
                } else {
                    let mut g = vec![PROTOCOL_VERSION];
                    g.extend([0xFF; 6]);
                    let n = rng.below(40);
                    g.extend(rng.bytes(n));
                    g
                };
                with_tag(&KEY, &garbage)
            }
            Attack::NewerProtocol => {
                packet.header.protocol = PROTOCOL_VERSION + 1;
                seal(&packet, &KEY)
            }
            Attack::OlderProtocol => {
                packet.header.protocol = 0;
                seal(&packet, &KEY)
            }
            Attack::ProtocolOne => protocol_one(&packet),
            Attack::PreviousProtocolTag => {
                let mut f = body(&authentic).to_vec();
                f[0] = PROTOCOL_VERSION - 1;
                f.extend(rng.bytes(TAG_LEN));
                f
            }
            Attack::WrongRenewal => {
                packet.header.renewal = match packet.header.renewal {
                    Renewal::Lease => Renewal::Logged,
                    Renewal::Logged => Renewal::Lease,
                };
                seal(&packet, &KEY)
            }
        }
    }
}

/// Per kind: frames sent, and the drops counted under its reason (summed over nodes).
struct Figure {
    name: String,
    reason: &'static str,
    sent: u64,
    counted: u64,
}

struct Cluster {
    proxy: Proxy,
    stranger: UdpSocket,
    handles: Vec<Handle>,
    sampler: Sampler,
}

impl Cluster {
    fn counters(&self) -> Vec<Counters> {
        self.handles.iter().map(Handle::counters).collect()
    }

    /// The master, waiting for one (never two at once).
    async fn master(&self) -> usize {
        self.master_among(&ALL).await
    }

    /// The master, waiting for one of `nodes` to be it (a crashed master's handle keeps
    /// claiming until its term ends, as it should).
    async fn master_among(&self, nodes: &[usize]) -> usize {
        let end = Instant::now() + LIVENESS;
        loop {
            let t = Instant::now();
            let claimants: Vec<usize> = (0..NODES)
                .filter(|k| self.handles[*k].is_master_at(t))
                .collect();
            assert!(claimants.len() <= 1, "two masters at once: {claimants:?}");
            if let [m] = claimants[..] {
                if nodes.contains(&m) {
                    return m;
                }
            }
            assert!(t < end, "no master within {LIVENESS:?}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Every node's task still runs (a panic would have dropped its view's sender).
    fn assert_all_running(&self, nodes: &[usize]) {
        for &k in nodes {
            let h = &self.handles[k];
            assert!(
                h.watch().has_changed().is_ok() && h.view().running,
                "node {} stopped (panicked or failed): {:?}",
                h.id(),
                h.view()
            );
        }
    }

    /// Every node in `nodes` keeps handling authentic messages and sending, and the
    /// master keeps renewing (its completed renewal rounds grow), within a bound.
    async fn assert_alive(&self, nodes: &[usize]) {
        self.assert_all_running(nodes);
        let before = self.counters();
        let m = self.master_among(nodes).await;
        let r0 = before[m].core.renewals_completed;
        let end = Instant::now() + LIVENESS;
        loop {
            let now = self.counters();
            let progressed = nodes.iter().all(|&k| {
                now[k].core.messages_in > before[k].core.messages_in
                    && now[k].datagrams_out > before[k].datagrams_out
            });
            let m2 = self.master_among(nodes).await;
            let renewed = m2 != m || now[m].core.renewals_completed > r0;
            if progressed && renewed {
                break;
            }
            assert!(
                Instant::now() < end,
                "a node stalled or the master stopped renewing: {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for c in self.counters() {
            assert_eq!(c.core.queue_overflows, 0);
            assert_eq!(c.core.dropped.backlog, 0);
            assert_eq!(c.core.clock_regressions, 0);
        }
    }

    /// Waits until `target` has read all but `window` of the `sent` datagrams sent at it
    /// since its `datagrams_in` was `base`: flow control, so that no receive buffer
    /// overflows (the kernel would drop silently) and every datagram is counted.
    async fn flow(&self, target: usize, base: u64, sent: u64, window: u64) {
        let end = Instant::now() + Duration::from_secs(3);
        while self.handles[target].counters().datagrams_in + window < base + sent {
            assert!(
                Instant::now() < end,
                "node {} stopped reading its socket",
                target + 1
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Sends `PER_NODE` datagrams of `attack` at each of `targets` and checks that each
    /// was counted, once, under its reason and no other.
    async fn attack(
        &self,
        attack: Attack,
        rng: &mut Rng,
        session: &[Recorded],
        targets: &[usize],
    ) -> Figure {
        let before = self.counters();
        let window = if matches!(attack, Attack::Oversized) {
            1
        } else {
            8
        };
        let mut sent = [0u64; NODES];
        for _ in 0..PER_NODE {
            for &target in targets {
                let others: Vec<usize> = (0..NODES).filter(|k| *k != target).collect();
                let claimed = others[rng.below(others.len())];
                let bytes = attack.datagram(rng, session, target, claimed);
                let socket = match attack.source() {
                    Source::Member => self.proxy.as_member(target, claimed),
                    Source::Stranger => &self.stranger,
                };
                self.flow(target, before[target].datagrams_in, sent[target], window)
                    .await;
                socket.send_to(&bytes, self.proxy.listen[target]).unwrap();
                sent[target] += 1;
            }
        }
        let index = REASONS.iter().position(|r| *r == attack.reason()).unwrap();
        let expected: Vec<[u64; R]> = before
            .iter()
            .zip(sent)
            .map(|(c, n)| {
                let mut v = hostile(c);
                v[index] += n;
                v
            })
            .collect();
        let end = Instant::now() + Duration::from_secs(3);
        let mut now: Vec<[u64; R]>;
        loop {
            now = self.counters().iter().map(hostile).collect();
            if now == expected {
                break;
            }
            let overshoot = now
                .iter()
                .zip(&expected)
                .any(|(n, e)| n.iter().zip(e).any(|(n, e)| n > e));
            assert!(
                !overshoot && Instant::now() < end,
                "{attack:?}: every frame must be counted once as {}; \
                 expected {expected:?}, counted {now:?} (order {REASONS:?})",
                attack.reason()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Figure {
            name: format!("{attack:?}"),
            reason: attack.reason(),
            sent: sent.iter().sum(),
            counted: (0..NODES)
                .map(|k| now[k][index] - hostile(&before[k])[index])
                .sum(),
        }
    }

    /// Sends the recorded session again, every frame along its original path (from the
    /// address its receiver knows the sender by) and to the third node as well, except
    /// to `skip`. Returns the number of datagrams sent.
    async fn replay(&self, session: &[Recorded], skip: Option<usize>) -> u64 {
        let base: Vec<u64> = self.counters().iter().map(|c| c.datagrams_in).collect();
        let mut sent = [0u64; NODES];
        for r in session {
            for target in (0..NODES).filter(|t| *t != r.from && Some(*t) != skip) {
                self.flow(target, base[target], sent[target], 16).await;
                self.proxy
                    .as_member(target, r.from)
                    .send_to(&r.bytes, self.proxy.listen[target])
                    .unwrap();
                sent[target] += 1;
            }
        }
        sent.iter().sum()
    }
}

fn bind_retrying(addr: SocketAddr) -> tokio::net::UdpSocket {
    let end = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match UdpSocket::bind(addr) {
            Ok(s) => {
                s.set_nonblocking(true).unwrap();
                return tokio::net::UdpSocket::from_std(s).unwrap();
            }
            Err(e) => {
                assert!(std::time::Instant::now() < end, "cannot rebind {addr}: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[test]
fn hostile_traffic_is_dropped_by_reason_and_never_makes_two_masters() {
    let started = std::time::Instant::now();
    let seed = tenure_tokio::clock::host_monotonic_ns() | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let dir = TempDir::new("hostile");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The nodes' own sockets stay bound from here to their start (no port race).
        let own: Vec<UdpSocket> = (0..NODES)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let proxy = Proxy::start(own.iter().map(|s| s.local_addr().unwrap()).collect());
        let configs: Vec<NodeConfig> = (0..NODES).map(|j| proxy.config(&dir, j)).collect();
        let handles: Vec<Handle> = own
            .into_iter()
            .zip(&configs)
            .map(|(s, c)| {
                s.set_nonblocking(true).unwrap();
                let s = tokio::net::UdpSocket::from_std(s).unwrap();
                tenure_tokio::start_on(c.clone(), s).unwrap()
            })
            .collect();
        let sampler = Sampler::start(handles.clone());
        let mut cluster = Cluster {
            proxy,
            stranger: UdpSocket::bind("127.0.0.1:0").unwrap(),
            handles,
            sampler,
        };

        // 1. Record a session: the first election and a few renewals.
        let first = cluster.master().await;
        tokio::time::sleep(3 * LEASE).await;
        cluster.proxy.record.store(false, Ordering::Relaxed);
        let session: Vec<Recorded> = cluster.proxy.recording.lock().unwrap().clone();
        for r in &session {
            assert_eq!(packet_of(&r.bytes).header.from, NodeId(r.from as u16 + 1));
        }
        let kinds: std::collections::BTreeSet<&str> = session
            .iter()
            .map(|r| packet_of(&r.bytes).message.kind())
            .collect();
        assert!(
            (0..NODES).all(|k| session.iter().any(|r| r.from == k)),
            "every node must have sent something"
        );
        println!(
            "recorded {} authentic frames ({kinds:?}); node {} master",
            session.len(),
            first + 1
        );
        cluster.assert_alive(&ALL).await;

        // 2. Every kind of bad datagram, at every node, with the cluster running.
        let mut figures = Vec::new();
        for attack in Attack::ALL {
            figures.push(cluster.attack(attack, &mut rng, &session, &ALL).await);
        }
        cluster.assert_alive(&ALL).await;

        // 3. Replay the recorded session at the live cluster, twice.
        let before = cluster.counters();
        let mut replayed = 0;
        for _ in 0..2 {
            replayed += cluster.replay(&session, None).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        cluster.assert_alive(&ALL).await;
        let after = cluster.counters();
        let handled: u64 = (0..NODES)
            .map(|k| u64::from(after[k].core.messages_in - before[k].core.messages_in))
            .sum();
        let stale: u64 = (0..NODES)
            .map(|k| u64::from(after[k].core.dropped.stale - before[k].core.dropped.stale))
            .sum();
        println!("replay: {replayed} frames; {handled} messages handled, {stale} stale");
        // Authentic frames from the right addresses pass every check of the adapter and
        // reach the protocol, which treats them as the duplicates they are.
        assert!(
            handled >= replayed / 2,
            "replayed frames did not reach the core"
        );
        for k in 0..NODES {
            assert_eq!(
                hostile(&before[k]),
                hostile(&after[k]),
                "a replayed authentic frame was counted as forged (order {REASONS:?})"
            );
        }

        // 4. Crash the master; while the others elect a new one, replay the old session
        //    (it holds the crashed master's election and renewals) and send every bad
        //    kind at them; restart it and replay the session again, at all three.
        let victim = cluster.master().await;
        cluster.handles[victim].abort().await;
        let crashed_at = Instant::now();
        let live: Vec<usize> = (0..NODES).filter(|k| *k != victim).collect();
        replayed += cluster.replay(&session, Some(victim)).await;
        let add = |figures: &mut Vec<Figure>, f: Figure| {
            let total = figures.iter_mut().find(|g| g.name == f.name).unwrap();
            total.sent += f.sent;
            total.counted += f.counted;
        };
        for attack in Attack::ALL {
            let f = cluster.attack(attack, &mut rng, &session, &live).await;
            add(&mut figures, f);
        }
        let next = cluster.master_among(&live).await;
        assert_ne!(next, victim);
        println!(
            "node {} crashed; node {} master {:?} after the crash",
            victim + 1,
            next + 1,
            crashed_at.elapsed()
        );
        replayed += cluster.replay(&session, Some(victim)).await;
        cluster.assert_alive(&live).await;
        let restarted = tenure_tokio::start_on(
            configs[victim].clone(),
            bind_retrying(configs[victim].listen),
        )
        .unwrap();
        cluster.handles[victim] = restarted.clone();
        cluster.sampler.replace(victim, restarted);
        // At once: frames from before the restart reach the restarted node first thing.
        for _ in 0..2 {
            replayed += cluster.replay(&session, None).await;
        }
        tokio::time::sleep(LEASE).await;
        cluster.assert_alive(&ALL).await;

        // 5. All bad kinds once more, now with a restarted node among the targets.
        for attack in Attack::ALL {
            let f = cluster.attack(attack, &mut rng, &session, &ALL).await;
            add(&mut figures, f);
        }
        cluster.assert_alive(&ALL).await;

        // The verdict of the sampler.
        let samples = cluster.sampler.finish();
        let after_first = samples.none + samples.one + samples.many;
        println!(
            "samples: {} ({after_first} after the first election): one master {}, none {}, \
             two or more {}; longest gap {:?}; {} master changes",
            samples.total,
            samples.one,
            samples.none,
            samples.many,
            samples.longest_gap,
            samples.changes
        );
        assert!(
            samples.double.is_empty(),
            "two masters: {:?}",
            samples.double
        );
        assert!(
            samples.regressions.is_empty(),
            "versions went down: {:?}",
            samples.regressions
        );
        assert!(
            samples.longest_gap <= LIVENESS,
            "no master for {:?}",
            samples.longest_gap
        );
        assert!(
            samples.one * 100 >= after_first * 90,
            "exactly one master in only {} of {after_first} samples",
            samples.one
        );

        // Figures for the README.
        let counters = cluster.counters();
        println!("{:<28} {:>6} {:>7}  reason", "kind", "sent", "counted");
        for f in &figures {
            println!(
                "{:<28} {:>6} {:>7}  {}",
                f.name, f.sent, f.counted, f.reason
            );
        }
        println!("replayed authentic frames: {replayed}");
        for (k, c) in counters.iter().enumerate() {
            let v = hostile(c);
            let named: Vec<String> = REASONS
                .iter()
                .zip(v)
                .map(|(r, n)| format!("{r}={n}"))
                .collect();
            println!(
                "node {}: datagrams in {}, stale {}, {}",
                k + 1,
                c.datagrams_in,
                c.core.dropped.stale,
                named.join(" ")
            );
        }
        println!(
            "proxy forwarded {} authentic datagrams",
            cluster.proxy.forwarded.load(Ordering::Relaxed)
        );

        for h in &cluster.handles {
            h.shutdown().await.unwrap();
        }
        cluster.proxy.shutdown();
    });
    assert!(
        started.elapsed() < TEST_BOUND,
        "took {:?}",
        started.elapsed()
    );
}
