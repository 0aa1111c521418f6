//! Scripted interleavings for the membership-change rules of `docs/algorithm.md` §9.3:
//! the exact schedules the argument names (one of them, for a round kept open across a
//! change, no random seed reached). Each test drives one schedule of
//! messages between real nodes (the `tenure-fault` build of the core); the same script
//! without the fault (the control) must end with never two masters.
//!
//! Nodes act only on the messages the script hands them and on the timers it fires. The
//! network has no delay; what a phase's `cut` selects is lost.

use tenure::fault::Fault;
use tenure::{
    Config, Destination, Duration, Header, Instant, Member, MembersError, Message, Node, NodeId,
    Output, Packet, Renewal,
};

const N: usize = 7;

/// A message in flight: (from, to, message).
type Flight = (NodeId, NodeId, Message);

/// Real nodes by id (slot `id - 1`; `None` for a node not started yet), and the
/// messages sent and not yet delivered.
struct Script {
    nodes: Vec<Option<Node<N>>>,
    pending: Vec<Flight>,
    /// Instants at which two nodes believed they were master, with who.
    two_masters: Vec<(Instant, Vec<u16>)>,
    now: Instant,
}

impl Script {
    /// `count` slots; the nodes of `list` start at once with it (first boot).
    fn new(count: usize, list: &[Member], faults: &[Fault]) -> Self {
        let mut s = Script {
            nodes: (0..count).map(|_| None).collect(),
            pending: Vec::new(),
            two_masters: Vec::new(),
            now: Instant::from_millis(1),
        };
        for m in list {
            let node = Node::first_boot(config(m.id.0, list), s.now).expect("valid config");
            s.put(m.id.0, node, faults);
        }
        s
    }

    fn put(&mut self, id: u16, mut node: Node<N>, faults: &[Fault]) {
        for &f in faults {
            node.inject_fault(f, true);
        }
        self.nodes[usize::from(id) - 1] = Some(node);
        self.pump(id);
    }

    fn node(&mut self, id: u16) -> &mut Node<N> {
        self.nodes[usize::from(id) - 1]
            .as_mut()
            .expect("a started node")
    }

    /// Collects node `id`'s outputs: sends go in flight (a send to all goes to every
    /// other member of the sender's list).
    fn pump(&mut self, id: u16) {
        let from = NodeId(id);
        let node = self.nodes[usize::from(id) - 1]
            .as_mut()
            .expect("a started node");
        let targets: Vec<NodeId> = node.members().iter().map(|m| m.id).collect();
        while let Some(out) = node.poll_output() {
            if let Output::Send { to, packet } = out {
                match to {
                    Destination::Node(t) => self.pending.push((from, t, packet.message)),
                    Destination::All => {
                        for &t in targets.iter().filter(|&&t| t != from) {
                            self.pending.push((from, t, packet.message));
                        }
                    }
                }
            }
        }
    }

    fn hand(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let header = Header {
            from,
            ..self.node(to.0).header()
        };
        let now = self.now;
        let _ = self.node(to.0).handle_message(
            now,
            &Packet {
                header,
                message: msg,
            },
        );
        self.pump(to.0);
        self.check_masters();
    }

    fn check_masters(&mut self) {
        let now = self.now;
        let masters: Vec<u16> = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| n.is_master(now))
            .map(|n| n.id().0)
            .collect();
        if masters.len() > 1 {
            self.two_masters.push((now, masters));
        }
    }

    /// Runs until `until` on a network without delay that loses what `cut` selects:
    /// delivers what is in flight, then fires the earliest timer, and so on.
    fn run(&mut self, until: Instant, cut: impl Fn(&Flight) -> bool) {
        self.run_while(until, cut, |_| false);
    }

    /// [`run`](Self::run), stopping early (before delivering it) once a message that
    /// `stop` selects is in flight.
    fn run_while(
        &mut self,
        until: Instant,
        cut: impl Fn(&Flight) -> bool,
        stop: impl Fn(&Flight) -> bool,
    ) {
        for _ in 0..1_000_000 {
            let nodes = &self.nodes;
            self.pending
                .retain(|f| !cut(f) && nodes[usize::from(f.1 .0) - 1].is_some());
            if self.pending.iter().any(&stop) {
                return;
            }
            if !self.pending.is_empty() {
                let (from, to, msg) = self.pending.remove(0);
                self.hand(from, to, msg);
                continue;
            }
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.as_ref().and_then(|n| n.poll_timeout()).map(|t| (t, i)))
                .min();
            match next {
                Some((at, i)) if at <= until => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    let id = i as u16 + 1;
                    self.node(id).handle_timeout(now);
                    self.pump(id);
                    self.check_masters();
                }
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
        panic!("the run does not settle");
    }

    /// Delivers, in order and at the current instant, every pending message that `pick`
    /// selects (answers too, if selected), firing no timer.
    fn deliver(&mut self, pick: impl Fn(&Flight) -> bool) {
        for _ in 0..10_000 {
            let Some(k) = self.pending.iter().position(&pick) else {
                return;
            };
            let (from, to, msg) = self.pending.remove(k);
            if self.nodes[usize::from(to.0) - 1].is_some() {
                self.hand(from, to, msg);
            }
        }
        panic!("the script does not settle");
    }

    fn masters(&self) -> Vec<u16> {
        let now = self.now;
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.is_master(now))
            .map(|n| n.id().0)
            .collect()
    }
}

fn config(id: u16, list: &[Member]) -> Config<N> {
    let mut c = Config::new(7, NodeId(id), list).expect("valid config");
    c.renewal = Renewal::Lease;
    c.seed = u64::from(id) * 1_000_003;
    c
}

fn touches(f: &Flight, id: u16) -> bool {
    f.0 .0 == id || f.1 .0 == id
}

fn is_renewal(f: &Flight) -> bool {
    matches!(f.2, Message::Renew { .. } | Message::Renewed { .. })
}

/// What one run of the `change-without-renewal` script saw.
struct Second {
    /// What the master's second change returned.
    second: Result<(), MembersError>,
    /// n1's member list at the end.
    list: Vec<u16>,
    two_masters: Vec<(Instant, Vec<u16>)>,
}

/// The interleaving of §9.3 for a second change made before the term is backed by the
/// list the first one made (lease mode, lease 1 s).
///
/// 1. `{n1, n2, n3}`, n1 the only candidate at first (n3, a candidate too, is cut off
///    until n1 is master), n2 a voter. n1 renews with all, then from `t` the renewals
///    to and from n3 are lost: from then on only `{n1, n2}` guard n1, and n3's guard of
///    n1 ends about a lease after `t`. Every other message (Accept, Commit, snapshots)
///    goes through.
/// 2. At `t + 0.5 s` n4 (a voter) joins and n1 adds it: `{n1, .., n4}`. The renewals to
///    and from n4 are lost too, so no round completes under the new list (it needs 3 of
///    4): n1's term runs to the begin of its last round under `{n1, n2, n3}` plus its
///    master lease, backed by the majority `{n1, n2}` of the old list.
/// 3. n1 removes n2. The rule refuses it (`ChangeInProgress`); with the fault it is
///    chosen by `{n1, n2, n3}` and the list is `{n1, n3, n4}`.
/// 4. n3's guard and view of n1 end; n3 campaigns, n4 (which never guarded n1) votes
///    for it: `{n3, n4}` is a majority of the list in force that misses `{n1, n2}`, and
///    n3 is master while n1's term runs. In the control, `{n1, n2, n3, n4}` stays and n3
///    needs n1 or n2, both guarding n1: no second master until n1's term is over.
fn change_without_renewal(planted: bool) -> Second {
    let faults: &[Fault] = if planted {
        &[Fault::ChangeWithoutRenewal]
    } else {
        &[]
    };
    let list = [Member::candidate(1), Member::voter(2), Member::candidate(3)];
    let mut s = Script::new(4, &list, faults);
    s.run(Instant::from_millis(1_500), |f| touches(f, 3));
    assert_eq!(s.masters(), vec![1], "n1 is elected by n1 and n2");
    s.run(Instant::from_millis(3_000), |_| false);
    assert_eq!(s.masters(), vec![1], "and renews with everyone");
    let t = s.now;
    let cut3 = |f: &Flight| is_renewal(f) && touches(f, 3);
    s.run(t + Duration::from_millis(500), cut3);
    assert_eq!(s.masters(), vec![1], "n1 renews with n2 alone");

    // n4 joins with the list the change makes; n1 adds it.
    let mut new_list: Vec<Member> = list.to_vec();
    new_list.push(Member::voter(4));
    let now = s.now;
    let four = Node::join(config(4, &new_list), now).expect("valid config");
    s.put(4, four, faults);
    let now = s.now;
    s.node(1)
        .add_member(Member::voter(4), now)
        .expect("the first change is allowed");
    s.pump(1);
    let cut34 = |f: &Flight| is_renewal(f) && (touches(f, 3) || touches(f, 4));
    // Until n4 is in (it caught up from a snapshot and votes).
    let until = s.now + Duration::from_millis(200);
    s.run(until, cut34);
    assert_eq!(s.node(1).members().len(), 4, "the first change is applied");
    assert!(!s.node(4).is_standby(), "n4 was let in");
    assert_eq!(s.masters(), vec![1]);

    let now = s.now;
    let second = s.node(1).remove_member(NodeId(2), now);
    s.pump(1);
    s.run(t + Duration::from_millis(3_000), cut34);
    let list = s.node(1).members().iter().map(|m| m.id.0).collect();
    Second {
        second,
        list,
        two_masters: s.two_masters,
    }
}

/// §9.3, rule 3 (planted fault `change-without-renewal`): a second change made before
/// the master's term is backed by the first change's list gives two masters; with the
/// rule the second change is refused and the same schedule has one master at a time.
#[test]
fn planted_change_without_renewal_gives_two_masters() {
    let control = change_without_renewal(false);
    assert_eq!(control.second, Err(MembersError::ChangeInProgress));
    assert_eq!(control.list, vec![1, 2, 3, 4]);
    assert!(
        control.two_masters.is_empty(),
        "the control run has two masters: {:?}",
        control.two_masters.first()
    );

    let planted = change_without_renewal(true);
    assert_eq!(planted.second, Ok(()));
    assert_eq!(planted.list, vec![1, 3, 4], "the second change was chosen");
    let first = planted.two_masters.first().cloned();
    println!("change-without-renewal: two masters {first:?}");
    assert!(
        first.as_ref().is_some_and(|(_, m)| *m == vec![1, 3]),
        "the planted run must give n1 and n3 as masters at once: {first:?}"
    );
}

/// The interleaving of §9.3 for a renewal round kept open across a change (lease mode,
/// lease 1 s), with the planted faults `faults`.
///
/// 1. Six members, n1 and n3 candidates, the others voters; n1 is elected (n3 cut off
///    until then) and renews with everyone.
/// 2. n1 begins a round (seq `s`): its `Renew` reaches n6 only, whose answer counts at
///    n6's position; the one to n2 is held, those to n3, n4 and n5 are lost (from now on
///    every renewal to or from them is). n1's round is at 2 of the 4 it needs.
/// 3. n1 removes n6 (chosen by all six). A correct node drops the open round (and its
///    prepared ballot, which makes the renewer drop it too); with both faults the round
///    stays open and counts 2 of the 3 the list `{n1, .., n5}` needs.
/// 4. The held `Renew` reaches n2: its answer completes the kept round, with n1 and n2
///    the only members of the list in force that answered, and n1's term runs to the
///    round's begin plus its master lease.
/// 5. n3, n4 and n5 last guarded n1 for the round before `s`; their guards end before
///    n1's term, n3 campaigns and n4 and n5 elect it: two masters.
fn kept_round(faults: &[Fault]) -> Kept {
    let list = [
        Member::candidate(1),
        Member::voter(2),
        Member::candidate(3),
        Member::voter(4),
        Member::voter(5),
        Member::voter(6),
    ];
    let mut s = Script::new(6, &list, faults);
    s.run(Instant::from_millis(1_500), |f| touches(f, 3));
    assert_eq!(s.masters(), vec![1], "n1 is elected");
    s.run(Instant::from_millis(3_000), |_| false);
    assert_eq!(s.masters(), vec![1], "and renews with everyone");
    // Up to n1's next round.
    let renew_from_1 = |f: &Flight| f.0 .0 == 1 && matches!(f.2, Message::Renew { .. });
    s.run_while(Instant::from_millis(4_000), |_| false, renew_from_1);
    assert!(s.pending.iter().any(renew_from_1), "n1 begins a round");
    let far = |f: &Flight| is_renewal(f) && [3, 4, 5].iter().any(|&x| touches(f, x));
    s.pending.retain(|f| !far(f));
    s.deliver(|f| is_renewal(f) && touches(f, 6));
    // n1 removes n6; everything but the held Renew to n2 goes through.
    let now = s.now;
    s.node(1)
        .remove_member(NodeId(6), now)
        .expect("the change is allowed");
    s.pump(1);
    let held = |f: &Flight| renew_from_1(f) && f.1 .0 == 2;
    s.deliver(|f| !held(f) && !far(f));
    assert_eq!(s.node(1).members().len(), 5, "the change is applied");
    let before = s.node(1).stats().renewals_completed;
    s.deliver(|f| !far(f));
    let completed = s.node(1).stats().renewals_completed > before;
    let until = s.now + Duration::from_millis(1_500);
    s.run(until, far);
    Kept {
        completed,
        two_masters: s.two_masters,
    }
}

/// What one run of the kept-round script saw.
struct Kept {
    /// Whether the held answer completed a round (of the two members n1 and n2).
    completed: bool,
    two_masters: Vec<(Instant, Vec<u16>)>,
}

/// §9.3, rule 2 (planted fault `keep-rounds-across-change`): a renewal round kept open
/// across a change completes with answers counted under the old list and gives two
/// masters. The round is dropped twice in a correct node, by rule 2 and, through rule 1
/// (the prepared ballot is forgotten, and the renewer drops its rounds when its ballot
/// changes), by the renewer: either fault alone leaves the same schedule with one
/// master; the two together give two.
#[test]
fn planted_keep_rounds_across_change_gives_two_masters() {
    for faults in [
        &[][..],
        &[Fault::KeepRoundsAcrossChange][..],
        &[Fault::KeepPreparedAcrossChange][..],
    ] {
        let run = kept_round(faults);
        assert!(!run.completed, "with {faults:?} the old round completed");
        assert!(
            run.two_masters.is_empty(),
            "with {faults:?} the run has two masters: {:?}",
            run.two_masters.first()
        );
    }
    let run = kept_round(&[
        Fault::KeepRoundsAcrossChange,
        Fault::KeepPreparedAcrossChange,
    ]);
    assert!(run.completed, "the kept round completed with n1 and n2");
    let first = run.two_masters.first().cloned();
    println!("keep-rounds-across-change (with keep-prepared-across-change): two masters {first:?}");
    assert!(
        first.as_ref().is_some_and(|(_, m)| *m == vec![1, 3]),
        "the planted run must give n1 and n3 as masters at once: {first:?}"
    );
}
