//! Checks `docs/algorithm.md` §1 "The promise" (never two masters at one instant),
//! §3 "The election state machine" (terms, renewals, "Release and hand-over") and
//! §4 "Restart" (a killed master restarts with its history), end to end: real tokio
//! nodes, real UDP sockets on 127.0.0.1, real data directories. Safety checks are exact;
//! liveness bounds are generous.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenure::{Event, NodeId, TermEnd};
use tenure_e2e::*;
use tenure_tokio::{CancellationToken, Handle, HandleError, Leadership, NotMaster};
use tokio::time::Instant;

/// Every node agrees on `master` within `timeout`.
async fn all_agree(handles: &[&Handle], master: NodeId, timeout: Duration) {
    let agreed = wait_for(timeout, || {
        handles
            .iter()
            .all(|h| h.master().map(|m| m.node) == Some(master))
            .then_some(())
    })
    .await;
    let views: Vec<_> = handles.iter().map(|h| (h.id(), h.master())).collect();
    assert!(agreed.is_some(), "no agreement on {master}: {views:?}");
}

fn elect_one_master(n: u16) {
    let _one = one_at_a_time();
    let dir = TempDir::new(&format!("elect-{n}"));
    let configs = configs(&dir, &candidates(n), LEASE);
    runtime().block_on(async {
        let handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        let master = wait_master(&refs, liveness_bound(LEASE)).await;
        all_agree(&refs, master, liveness_bound(LEASE)).await;
        // For two leases (several renewals): never two masters at one instant.
        let end = Instant::now() + LEASE * 2;
        while Instant::now() < end {
            let c = claimants(&handles, Instant::now());
            assert!(c.len() <= 1, "two masters at once: {c:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Renewals went on (a loaded machine may let a term lapse; that is liveness,
        // checked loosely: there is a master again, with a token, and renewal rounds
        // completed), and wrote nothing: lease-mode renewals are not logged.
        let master = wait_master(&refs, liveness_bound(LEASE)).await;
        let h = &handles[usize::from(master.0) - 1];
        let token = h.master().map(|m| m.token);
        assert!(token.is_some(), "no master view");
        assert_eq!(h.view().term.map(|t| t.token), token, "the term's token");
        let renewals: u64 = handles
            .iter()
            .map(|h| u64::from(h.counters().core.renewals_completed))
            .sum();
        assert!(renewals > 0, "no renewal round completed in two leases");
        for h in &handles {
            let c = h.counters();
            assert_eq!(c.core.queue_overflows, 0);
            assert_eq!(
                c.dropped_total() - u64::from(c.core.dropped.stale),
                0,
                "{c:?}"
            );
            h.shutdown().await.unwrap();
        }
    });
}

#[test]
fn three_nodes_elect_exactly_one_master() {
    elect_one_master(3);
}

#[test]
fn five_nodes_elect_exactly_one_master() {
    elect_one_master(5);
}

#[test]
fn killed_master_is_replaced_only_after_its_term_and_restarts_with_its_history() {
    let _one = one_at_a_time();
    let dir = TempDir::new("kill");
    let configs = configs(&dir, &candidates(3), LEASE);
    runtime().block_on(async {
        let mut handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        wait_master(&refs, liveness_bound(LEASE)).await;
        tokio::time::sleep(LEASE).await; // a few renewals
        let old = wait_master(&refs, liveness_bound(LEASE)).await;
        let i = usize::from(old.0) - 1;
        let victim = handles[i].clone();

        // Kill: abort the task, no release.
        let killed_at = Instant::now();
        victim.abort().await;
        let last = victim.view();
        let term = last.term.expect("the killed node was master");
        let old_term_end = victim.clock().deadline(term.end);
        let old_token = last.token.unwrap();
        assert_eq!(old_token, term.token, "the view's token is the term's");

        // The stored record keeps what the node knew.
        let record_path = configs[i].data_dir.join("record");
        let stored = tenure::Record::decode(&std::fs::read(&record_path).unwrap()).unwrap();
        assert!(stored.election().version >= Some(term.token));

        // A new master, and only once the old term is over (exact, one clock).
        let others: Vec<&Handle> = handles.iter().filter(|h| h.id() != old).collect();
        let new = wait_for(liveness_bound(LEASE), || {
            let t = Instant::now();
            let c = claimants(others.iter().copied(), t);
            if let Some(&n) = c.first() {
                assert!(
                    t >= old_term_end,
                    "node {n} claims the role {:?} before node {old}'s term ends",
                    old_term_end - t
                );
                assert!(
                    !victim.is_master_at(t),
                    "the killed node still claims at {t:?}"
                );
            }
            c.first().copied()
        })
        .await
        .expect("no new master after the kill");
        let new_handle = handles[usize::from(new.0) - 1].clone();
        let new_term = new_handle.view().term.unwrap();
        assert!(new_handle.clock().deadline(new_term.since) >= old_term_end);
        assert!(new_term.token > old_token, "fencing tokens only grow");
        let took = Instant::now() - killed_at;
        assert!(
            took <= liveness_bound(LEASE),
            "failover took {took:?} (lease {LEASE:?})"
        );

        // Restart from disk: a new incarnation that remembers the version history.
        let restarted = start(&configs[i]);
        let after = tenure::Record::decode(&std::fs::read(&record_path).unwrap()).unwrap();
        assert_eq!(after.incarnation(), stored.incarnation() + 1);
        assert!(after.election().version >= stored.election().version);
        assert!(
            !restarted.is_master(),
            "a restored node never starts as master"
        );
        handles[i] = restarted;
        let refs: Vec<&Handle> = handles.iter().collect();
        all_agree(&refs, new, liveness_bound(LEASE)).await;
        assert!(handles[i].master().unwrap().token >= new_term.token);
        for h in &handles {
            h.shutdown().await.unwrap();
        }
    });
}

#[test]
fn release_and_hand_over_move_the_role_at_once() {
    let _one = one_at_a_time();
    let dir = TempDir::new("release");
    let configs = configs(&dir, &candidates(3), LEASE);
    runtime().block_on(async {
        let handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        wait_master(&refs, liveness_bound(LEASE)).await;
        tokio::time::sleep(LEASE / 2).await;
        let old = wait_master(&refs, liveness_bound(LEASE)).await;
        let master = &handles[usize::from(old.0) - 1];
        let follower = handles.iter().find(|h| h.id() != old).unwrap();
        assert!(matches!(
            follower.release().await,
            Err(HandleError::Refused(tenure::CommandError::NotMaster))
        ));

        let mut events = follower.events();
        master.release().await.unwrap();
        assert!(!master.is_master(), "still master after release");
        let new = wait_master(&refs, liveness_bound(LEASE)).await;
        assert_ne!(new, old, "the releasing node took the role straight back");
        // The role moved because of the release, not because a lease ran out.
        let mut saw_release = false;
        while let Ok(e) = events.try_recv() {
            if let Event::MasterLost { node, reason, .. } = e {
                assert_eq!(node, old);
                assert_eq!(reason, TermEnd::Released);
                saw_release = true;
            }
        }
        assert!(saw_release, "the follower never saw the release");

        // Hand-over: the named successor takes the role.
        tokio::time::sleep(LEASE / 2).await;
        let new = wait_master(&refs, liveness_bound(LEASE)).await;
        let holder = &handles[usize::from(new.0) - 1];
        // Not the node that released a moment ago: it keeps quiet for a lease after its
        // release, even when named (reported to the core).
        let successor = handles
            .iter()
            .find(|h| h.id() != new && h.id() != old)
            .unwrap()
            .id();
        holder.hand_over(successor).await.unwrap();
        let next = wait_master(&refs, liveness_bound(LEASE)).await;
        assert_eq!(next, successor, "the role went to another node than named");
        for h in &handles {
            h.shutdown().await.unwrap();
        }
    });
}

#[test]
fn shutdown_releases_the_role() {
    let _one = one_at_a_time();
    let dir = TempDir::new("shutdown");
    let configs = configs(&dir, &candidates(3), LEASE);
    runtime().block_on(async {
        let handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        let old = wait_master(&refs, liveness_bound(LEASE)).await;
        let master = &handles[usize::from(old.0) - 1];
        let others: Vec<&Handle> = handles.iter().filter(|h| h.id() != old).collect();
        let mut events = others[0].events();
        master.shutdown().await.unwrap();
        assert!(!master.is_master());
        assert!(!master.view().running);
        assert!(matches!(master.release().await, Err(HandleError::Stopped)));
        let new = wait_master(&others, liveness_bound(LEASE)).await;
        assert_ne!(new, old);
        let mut reasons = Vec::new();
        while let Ok(e) = events.try_recv() {
            if let Event::MasterLost { reason, .. } = e {
                reasons.push(reason);
            }
        }
        assert_eq!(reasons, vec![TermEnd::Released]);
        for h in others {
            h.shutdown().await.unwrap();
        }
    });
}

#[test]
fn run_while_master_gets_the_fencing_token_and_is_cancelled_with_the_term() {
    let _one = one_at_a_time();
    let dir = TempDir::new("run-while");
    let configs = configs(&dir, &candidates(3), LEASE);
    runtime().block_on(async {
        let handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        let m = wait_master(&refs, liveness_bound(LEASE)).await;
        let master = handles[usize::from(m.0) - 1].clone();
        let term = master.view().term.unwrap();

        // Finishes normally with the term's token.
        let token = master.run_while_master(|t| async move { t.token() }).await;
        assert_eq!(token, Ok(term.token));

        // Runs across renewals, then is cancelled by a release.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let worker = master.clone();
        let work = tokio::spawn(async move {
            worker
                .run_while_master(|t| async move {
                    let _ = tx.send(t.token());
                    std::future::pending::<()>().await
                })
                .await
        });
        assert_eq!(rx.await.unwrap(), term.token);
        tokio::time::sleep(LEASE * 2).await;
        assert!(
            !work.is_finished(),
            "cancelled although renewals kept the term"
        );
        master.release().await.unwrap();
        let outcome = tokio::time::timeout(LEASE, work).await.unwrap().unwrap();
        assert_eq!(outcome, Err(NotMaster::TermEnded(term.token)));

        // The next master's work is cancelled when it cannot renew: stop both others.
        let next = wait_master(&refs, liveness_bound(LEASE)).await;
        let holder = handles[usize::from(next.0) - 1].clone();
        let term = holder.view().term.unwrap();
        let worker = holder.clone();
        let work = tokio::spawn(async move {
            worker
                .run_while_master(|_| std::future::pending::<()>())
                .await
        });
        for h in handles.iter().filter(|h| h.id() != next) {
            h.abort().await;
        }
        let outcome = tokio::time::timeout(LEASE * 3, work)
            .await
            .unwrap()
            .unwrap();
        let returned = Instant::now();
        // The same term's token (a later term, after a lapse on a loaded machine, has a
        // higher one).
        assert!(matches!(outcome, Err(NotMaster::TermEnded(v)) if v >= term.token));
        // Cancelled before the term's end (armed CANCEL_MARGIN before it; the bound
        // allows for a loaded machine), and the role is gone by the end.
        let end = holder
            .clock()
            .deadline(holder.view().term.map_or(term.end, |t| t.end));
        assert!(
            returned < end + Duration::from_millis(200),
            "cancelled {:?} late",
            returned - end
        );
        let gone = wait_for(LEASE, || (!holder.is_master()).then_some(())).await;
        assert!(gone.is_some(), "no quorum, yet still master");

        // A stopped node's work never starts.
        holder.abort().await;
        assert_eq!(
            holder.run_while_master(|t| async move { t.token() }).await,
            Err(NotMaster::Stopped)
        );
    });
}

/// What leader work saw of its own end, on the host's monotonic clock.
#[derive(Debug, Default)]
struct Seen {
    started: Option<Instant>,
    cancelled: Option<Instant>,
    /// `Leadership::deadline()` when the work was told to stop: the term's end.
    deadline: Option<Instant>,
    dropped: Option<Instant>,
    cancelled_before_drop: Option<bool>,
    /// Whether this node still held its term at the drop.
    master_at_drop: Option<bool>,
}

/// Records the drop of the work it lives in.
struct OnDrop {
    seen: Arc<Mutex<Seen>>,
    cancel: CancellationToken,
    handle: Handle,
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        seen.dropped = Some(now);
        seen.cancelled_before_drop = Some(self.cancel.is_cancelled());
        seen.master_at_drop = Some(self.handle.is_master_at(now));
    }
}

/// Leader work that notes when it is told to stop, then ignores it (so it is dropped).
fn stubborn_work(
    handle: Handle,
    seen: Arc<Mutex<Seen>>,
) -> impl FnOnce(Leadership) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    move |term: Leadership| {
        Box::pin(async move {
            let _guard = OnDrop {
                seen: Arc::clone(&seen),
                cancel: term.cancellation_token(),
                handle,
            };
            seen.lock().unwrap().started = Some(Instant::now());
            term.cancelled().await;
            {
                let mut s = seen.lock().unwrap();
                s.cancelled = Some(Instant::now());
                s.deadline = Some(term.deadline());
            }
            std::future::pending::<()>().await
        })
    }
}

/// The work is told to stop before it is dropped, dropped while the term still runs,
/// and the next master's term begins after that: for a term that runs out (no quorum),
/// for a release through the handle, and for a shutdown.
#[test]
fn leader_work_is_told_to_stop_then_dropped_before_the_term_ends_and_before_the_next_master() {
    let _one = one_at_a_time();
    let dir = TempDir::new("cancel-order");
    let configs = configs(&dir, &candidates(3), LEASE);
    runtime().block_on(async {
        let mut handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        let m = wait_master(&refs, liveness_bound(LEASE)).await;
        let master = handles[usize::from(m.0) - 1].clone();
        let grace = master.grace();
        assert_eq!(grace, LEASE / 5, "the default grace");

        // 1. A term that runs out: the others are gone, renewals fail.
        let seen = Arc::new(Mutex::new(Seen::default()));
        let worker = master.clone();
        let work = stubborn_work(master.clone(), Arc::clone(&seen));
        let run = tokio::spawn(async move { worker.run_while_master(work).await });
        let started = wait_for(LEASE, || seen.lock().unwrap().started).await;
        assert!(started.is_some(), "the work did not start");
        let token = master.view().term.map(|t| t.token);
        for h in handles.iter().filter(|h| h.id() != m) {
            h.abort().await;
        }
        let outcome = tokio::time::timeout(LEASE * 3, run).await.unwrap().unwrap();
        assert!(
            matches!(outcome, Err(NotMaster::TermEnded(t)) if Some(t) == token),
            "{outcome:?}"
        );
        let lapse = std::mem::take(&mut *seen.lock().unwrap());
        println!("lapse: {lapse:?}");
        let (cancelled, dropped, end) = (
            lapse.cancelled.expect("never told to stop"),
            lapse.dropped.expect("never dropped"),
            lapse.deadline.unwrap(),
        );
        assert_eq!(lapse.cancelled_before_drop, Some(true));
        assert!(cancelled <= dropped);
        assert!(
            dropped < end,
            "dropped {:?} after the term's end",
            dropped - end
        );
        assert_eq!(
            lapse.master_at_drop,
            Some(true),
            "dropped after the term ended"
        );
        println!(
            "lapse: told {:?} before the end, dropped {:?} before it (grace {grace:?})",
            end - cancelled,
            end - dropped
        );

        // The work was dropped up to a few milliseconds before the term's end, so the
        // old master may still hold its term for that long: look for the next master
        // only once that term is over (else the old term itself would be found).
        tokio::time::sleep(
            end.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
        )
        .await;
        assert!(
            !master.is_master(),
            "the lapsed term still claimed after its end"
        );
        // The others come back (silent for a lease), and whoever is master next began
        // after the end of that term.
        for (i, h) in handles.iter_mut().enumerate() {
            if h.id() != m {
                *h = start(&configs[i]);
            }
        }
        let refs: Vec<&Handle> = handles.iter().collect();
        let next = wait_master(&refs, liveness_bound(LEASE) + LEASE).await;
        let holder = handles[usize::from(next.0) - 1].clone();
        let term = holder.view().term.expect("the master's term");
        assert!(
            Some(term.token) > token,
            "a later term has a higher token: node {} token {} after node {} token {token:?}",
            next.0,
            term.token,
            m.0
        );
        assert!(
            term.since > holder.clock().instant(end),
            "the next term began before the last one ended"
        );

        // 2. A release through the handle: told, a grace, dropped, then released.
        let seen = Arc::new(Mutex::new(Seen::default()));
        let worker = holder.clone();
        let work = stubborn_work(holder.clone(), Arc::clone(&seen));
        let run = tokio::spawn(async move { worker.run_while_master(work).await });
        assert!(wait_for(LEASE, || seen.lock().unwrap().started)
            .await
            .is_some());
        let asked = Instant::now();
        holder.release().await.unwrap();
        let outcome = tokio::time::timeout(LEASE, run).await.unwrap().unwrap();
        assert_eq!(outcome, Err(NotMaster::TermEnded(term.token)));
        let release = std::mem::take(&mut *seen.lock().unwrap());
        println!("release: {release:?}");
        let (cancelled, dropped) = (release.cancelled.unwrap(), release.dropped.unwrap());
        assert_eq!(release.cancelled_before_drop, Some(true));
        assert!(asked <= cancelled && cancelled <= dropped);
        assert!(
            dropped >= asked + grace,
            "dropped before the grace was over"
        );
        assert_eq!(
            release.master_at_drop,
            Some(true),
            "released before the drop"
        );
        let refs: Vec<&Handle> = handles.iter().collect();
        let after = wait_for(liveness_bound(LEASE), || {
            refs.iter()
                .filter_map(|h| {
                    h.view()
                        .term
                        .filter(|t| t.token > term.token)
                        .map(|t| (h, t))
                })
                .next()
                .map(|(h, t)| (h.clock().instant(dropped), t))
        })
        .await;
        let (dropped_there, next_term) = after.expect("no master after the release");
        assert!(
            next_term.since > dropped_there,
            "the next term began before the drop"
        );
        println!(
            "release: told {:?} after the call, dropped {:?} after that",
            cancelled - asked,
            dropped - cancelled
        );

        // 2b. The work gives the role up itself: the release is not held up waiting for the
        // very work that asked for it.
        let refs: Vec<&Handle> = handles.iter().collect();
        let m = wait_master(&refs, liveness_bound(LEASE)).await;
        let master = handles[usize::from(m.0) - 1].clone();
        let worker = master.clone();
        let outcome = tokio::time::timeout(
            LEASE,
            worker.clone().run_while_master(|_| async move {
                let _ = worker.release().await;
            }),
        )
        .await
        .expect("a release from within the work hung");
        assert!(
            matches!(outcome, Err(NotMaster::TermEnded(_)) | Ok(())),
            "{outcome:?}"
        );
        assert!(!master.is_master(), "the work's own release did not happen");
        let refs: Vec<&Handle> = handles.iter().collect();
        let next = wait_master(&refs, liveness_bound(LEASE)).await;
        assert_ne!(next, m, "the released node does not campaign for a lease");

        // 3. A shutdown: work that returns when told ends with Ok, and the service loop
        // ends on Stopped instead of spinning.
        let refs: Vec<&Handle> = handles.iter().collect();
        let m = wait_master(&refs, liveness_bound(LEASE)).await;
        let master = handles[usize::from(m.0) - 1].clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let worker = master.clone();
        let service = tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut outcomes = Vec::new();
            loop {
                let outcome = worker
                    .run_while_master(|term| {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                        async move { term.cancelled().await }
                    })
                    .await;
                outcomes.push(outcome);
                if outcome == Err(NotMaster::Stopped) || outcomes.len() > 100 {
                    return outcomes;
                }
            }
        });
        rx.await.unwrap();
        master.shutdown().await.unwrap();
        let outcomes = tokio::time::timeout(LEASE, service).await.unwrap().unwrap();
        assert_eq!(outcomes, vec![Ok(()), Err(NotMaster::Stopped)]);
        for h in &handles {
            h.shutdown().await.unwrap();
        }
    });
}

#[test]
fn never_two_masters_under_kills_and_releases() {
    let _one = one_at_a_time();
    let lease = Duration::from_millis(300);
    let dir = TempDir::new("overlap");
    let configs = configs(&dir, &candidates(3), lease);
    runtime().block_on(async {
        let mut live: Vec<Option<Handle>> = configs.iter().map(|c| Some(start(c))).collect();
        let mut dead: Vec<Handle> = Vec::new();
        let (mut samples, mut overlaps, mut terms) = (0u64, 0u64, 0u64);
        let mut last: Option<NodeId> = None;
        let mut actions = 0u32;
        let start_at = Instant::now();
        let mut next_action = start_at + lease * 2;
        // Bounded: at most 5 s, or 8 disruptions.
        while Instant::now() < start_at + Duration::from_secs(5) && actions < 8 {
            let t = Instant::now();
            let all = live.iter().flatten().chain(dead.iter());
            let c = claimants(all, t);
            samples += 1;
            if c.len() > 1 {
                overlaps += 1;
            }
            if let Some(&m) = c.first() {
                if last != Some(m) {
                    terms += 1;
                    last = Some(m);
                }
            }
            // Restart killed nodes whose claim is surely over.
            dead.retain(|h| h.is_master_at(t));
            for (i, slot) in live.iter_mut().enumerate() {
                let id = NodeId(i as u16 + 1);
                if slot.is_none() && !dead.iter().any(|h| h.id() == id) {
                    *slot = Some(start(&configs[i]));
                }
            }
            if t >= next_action {
                let master = live.iter().flatten().find(|h| h.is_master_at(t)).cloned();
                if let Some(m) = master {
                    actions += 1;
                    next_action = t + lease * 2;
                    if actions.is_multiple_of(2) {
                        // In a task: the sampling must not pause while it waits.
                        tokio::spawn(async move { m.release().await });
                    } else {
                        m.abort().await;
                        live[usize::from(m.id().0) - 1] = None;
                        dead.push(m);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            overlaps, 0,
            "{overlaps} of {samples} samples saw two masters"
        );
        assert!(actions >= 4, "only {actions} disruptions in 5 s");
        assert!(
            terms >= 3,
            "only {terms} terms: the test exercised too little"
        );
        for h in live.iter().flatten() {
            h.shutdown().await.unwrap();
        }
    });
}

/// A follower answers who the master is and where its service is: `master_info`,
/// `/status` (`master_name`, `master_advertise`, JSON-escaped) and `tenure_master_info`.
#[test]
fn followers_name_the_master_and_where_it_is() {
    let _one = one_at_a_time();
    let dir = TempDir::new("identities");
    let mut configs = configs(&dir, &candidates(3), LEASE);
    let identities: Vec<tenure_tokio::Identity> = (1..=3u16)
        .map(|i| tenure_tokio::Identity {
            id: NodeId(i),
            // A quote and a backslash: escaped in JSON and in metric labels.
            name: Some(format!("db-{i} \"primary\\\"")),
            advertise: Some(format!("http://10.0.0.{i}:8080")),
        })
        .collect();
    for c in &mut configs {
        c.identities = identities.clone();
    }
    runtime().block_on(async {
        let handles: Vec<Handle> = configs.iter().map(start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        let master = wait_master(&refs, liveness_bound(LEASE)).await;
        all_agree(&refs, master, liveness_bound(LEASE)).await;
        let follower = handles.iter().find(|h| h.id() != master).unwrap();
        let info = follower.master_info().expect("a master in view");
        assert_eq!(info.node, master);
        assert_eq!(info.name, identities[usize::from(master.0) - 1].name);
        let advertise = format!("http://10.0.0.{}:8080", master.0);
        assert_eq!(info.advertise.as_deref(), Some(advertise.as_str()));
        assert_eq!(info.addr, Some(configs[usize::from(master.0) - 1].listen));

        let status = tenure_tokio::admin::status_json(follower);
        let escaped = format!("\"master_name\":\"db-{} \\\"primary\\\\\\\"\"", master.0);
        assert!(status.contains(&escaped), "{escaped} missing in {status}");
        assert!(
            status.contains(&format!("\"master_advertise\":\"{advertise}\"")),
            "{status}"
        );
        assert!(
            status.contains(&format!("\"name\":\"db-{} \\\"primary\\\\\\\"\"", follower.id().0)),
            "{status}"
        );
        let metrics = follower.metrics();
        let line = format!(
            "tenure_master_info{{node=\"{m}\",name=\"db-{m} \\\"primary\\\\\\\"\",advertise=\"{advertise}\"}} 1\n",
            m = master.0
        );
        assert!(metrics.contains(&line), "{line} missing in {metrics}");
        for h in &handles {
            h.shutdown().await.unwrap();
        }
    });
}
