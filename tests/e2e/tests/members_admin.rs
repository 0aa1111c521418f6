//! Checks the refusals of `docs/algorithm.md` §9.1 through the admin port
//! (`GET /members`, `POST /members?id=ID&addr=IP:PORT`, `DELETE /members/ID`) of
//! in-process nodes on loopback: a change through a node that is not master (the error
//! names the master), a duplicate id, a duplicate address, an unknown id, removing the
//! last candidate, a change while one is in progress; and the port's rules for these
//! commands as for every `POST` (a bad query is 400, an `Origin` header 403, a port with
//! a token refuses a request without it with 401; each counted by reason).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tenure::{Member, NodeId};
use tenure_e2e::{configs, free_addrs, liveness_bound, one_at_a_time, runtime, TempDir, LEASE};
use tenure_tokio::admin::{Admin, AdminToken, ErrorBody, MembersDoc, MembersDone};
use tenure_tokio::{Handle, MembersFailure};

/// One request; the answer's status and body.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: tenure\r\n{headers}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

fn error(body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| body.to_string())
}

fn bad_requests(addr: SocketAddr, reason: &str) -> u64 {
    let (_, text) = request(addr, "GET", "/metrics", "");
    let prefix = format!("tenure_admin_bad_requests_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix}"))
        .parse()
        .unwrap()
}

#[test]
fn membership_commands_are_refused_with_their_reasons() {
    let _one = one_at_a_time();
    let rt = runtime();
    let dir = TempDir::new("members-admin");
    // One candidate: node 1 is the master, and it is the last candidate.
    let members = [Member::candidate(1), Member::voter(2), Member::voter(3)];
    let cfgs = configs(&dir, &members, LEASE);
    rt.block_on(async {
        let handles: Vec<Handle> = cfgs.iter().map(tenure_e2e::start).collect();
        let mut admins = Vec::new();
        for h in &handles {
            let admin = Admin::bind("127.0.0.1:0".parse().unwrap(), None)
                .await
                .unwrap();
            admins.push(admin.local_addr());
            admin.serve(h.clone());
        }
        let token = AdminToken::new("0123456789abcdef0123456789abcdef").unwrap();
        let guarded = Admin::bind("127.0.0.1:0".parse().unwrap(), Some(token.clone()))
            .await
            .unwrap();
        let guarded_addr = guarded.local_addr();
        guarded.serve(handles[0].clone());
        let refs: Vec<&Handle> = handles.iter().collect();
        let master = tenure_e2e::wait_master(&refs, liveness_bound(LEASE)).await;
        assert_eq!(master, NodeId(1));
        // The followers know it too (their views name it).
        tenure_e2e::wait_for(liveness_bound(LEASE), || {
            handles
                .iter()
                .all(|h| h.master().is_some_and(|m| m.node == master))
                .then_some(())
        })
        .await
        .expect("every view names the master");
        tokio::task::spawn_blocking(move || {
            let (m, f) = (admins[0], admins[1]);
            let spare = free_addrs(3);
            // The list, with roles and addresses.
            let (code, body) = request(f, "GET", "/members", "");
            assert_eq!(code, 200, "{body}");
            let doc: MembersDoc = serde_json::from_str(&body).unwrap();
            let roles: Vec<(u16, &str)> = doc
                .members
                .iter()
                .map(|m| (m.id, m.role.as_str()))
                .collect();
            assert_eq!(roles, [(1, "candidate"), (2, "voter"), (3, "voter")]);
            assert!(doc.members.iter().all(|m| m.addr.is_some()));
            assert_eq!(doc.master, Some(1));
            assert!(!doc.standby && !doc.configured_differs);

            // Not master: names the master.
            let add4 = format!("/members?id=4&addr={}", spare[0]);
            let (code, body) = request(f, "POST", &add4, "");
            assert_eq!(code, 409, "{body}");
            let e = error(&body);
            assert!(
                e.contains("node 2 is not master") && e.contains("master in its view is node 1"),
                "{e}"
            );
            // A duplicate id, a duplicate address, an unknown id, the last candidate.
            let (code, body) = request(m, "POST", &format!("/members?id=2&addr={}", spare[0]), "");
            assert_eq!(code, 409, "{body}");
            assert!(
                error(&body).contains("node 2 is already a member"),
                "{body}"
            );
            let node3 = doc.members[2].addr.clone().unwrap();
            let (code, body) = request(m, "POST", &format!("/members?id=4&addr={node3}"), "");
            assert_eq!(code, 409, "{body}");
            assert!(
                error(&body).contains(&format!("node 3 is already at {node3}")),
                "{body}"
            );
            let (code, body) = request(m, "DELETE", "/members/9", "");
            assert_eq!(code, 404, "{body}");
            assert!(error(&body).contains("node 9 is not a member"), "{body}");
            let (code, body) = request(m, "DELETE", "/members/1", "");
            assert_eq!(code, 409, "{body}");
            assert!(error(&body).contains("no candidate"), "{body}");

            // The port's rules.
            let bad = bad_requests(m, "bad_query");
            for path in [
                "/members?id=4",
                "/members?id=4&addr=nowhere",
                "/members?id=4&addr=127.0.0.1:9&role=boss",
            ] {
                let (code, body) = request(m, "POST", path, "");
                assert_eq!(code, 400, "{path}: {body}");
            }
            let (code, _) = request(m, "DELETE", "/members/x", "");
            assert_eq!(code, 400);
            let (code, _) = request(m, "GET", "/members?all", "");
            assert_eq!(code, 400);
            assert_eq!(bad_requests(m, "bad_query"), bad + 5);
            let (code, _) = request(m, "PUT", "/members", "");
            assert_eq!(code, 405);
            let (code, body) = request(m, "POST", &add4, "Origin: http://example.com\r\n");
            assert_eq!(code, 403, "{body}");
            let (code, body) = request(m, "DELETE", "/members/3", "Origin: http://x\r\n");
            assert_eq!(code, 403, "{body}");
            let (code, body) = request(guarded_addr, "DELETE", "/members/3", "");
            assert_eq!(code, 401, "{body}");
            let (code, body) = request(
                guarded_addr,
                "DELETE",
                "/members/3",
                "Authorization: Bearer wrong-token-wrong-token\r\n",
            );
            assert_eq!(code, 401, "{body}");
            // Nothing changed so far.
            let (_, body) = request(m, "GET", "/members", "");
            let doc: MembersDoc = serde_json::from_str(&body).unwrap();
            assert_eq!(doc.members.len(), 3);
            assert_eq!(doc.version, None);

            // An add, then at once another: one member at a time. (The master may have
            // renewed in between, which allows it: then the pair is tried again.)
            let mut in_progress = false;
            for (i, addr) in spare.iter().enumerate() {
                let id = 4 + i as u16;
                let (code, body) = request(m, "POST", &format!("/members?id={id}&addr={addr}"), "");
                if code == 409 && error(&body).contains("in progress") {
                    in_progress = true;
                    break;
                }
                assert_eq!(code, 200, "{body}");
                let done: MembersDone = serde_json::from_str(&body).unwrap();
                assert_eq!((done.member, done.command.as_str()), (id, "add"));
                let (code, body) = request(
                    guarded_addr,
                    "DELETE",
                    &format!("/members/{id}"),
                    &format!("Authorization: {}\r\n", token.bearer()),
                );
                if code == 409 && error(&body).contains("in progress") {
                    in_progress = true;
                    break;
                }
                assert_eq!(code, 200, "{body}");
            }
            assert!(in_progress, "no change was refused as in progress");
        })
        .await
        .unwrap();
        // The handle's own errors: typed.
        let taken = handles[1].local_addr();
        match handles[0]
            .add_member(NodeId(20), taken, tenure::Role::Learner)
            .await
        {
            Err(MembersFailure::DuplicateAddress { member, addr }) => {
                assert_eq!((member, addr), (NodeId(2), taken));
            }
            other => panic!("{other:?}"),
        }
        match handles[2].remove_member(NodeId(1)).await {
            Err(MembersFailure::Refused(tenure::MembersError::NotMaster)) => {}
            other => panic!("{other:?}"),
        }
        for h in &handles {
            h.abort().await;
        }
    });
}

/// How a node learns a new member's address (`tenure_tokio::addresses`): from a hello
/// sealed with the cluster key, only for a member of its list it has no address for; a
/// hello naming a member from another address than the known one, one sealed with
/// another key, and one naming a non-member change nothing and are counted.
#[test]
fn addresses_are_learned_only_for_members_without_one() {
    let _one = one_at_a_time();
    let rt = runtime();
    let dir = TempDir::new("members-learn");
    let members: Vec<Member> = (1..=3).map(Member::candidate).collect();
    let key = tenure::Auth::key([5; 32]);
    let mut cfgs = configs(&dir, &members, LEASE);
    for c in &mut cfgs {
        c.core.auth = key.clone();
    }
    rt.block_on(async {
        let handles: Vec<Handle> = cfgs.iter().map(tenure_e2e::start).collect();
        let refs: Vec<&Handle> = handles.iter().collect();
        let m = tenure_e2e::wait_master(&refs, liveness_bound(LEASE)).await;
        let master = &handles[usize::from(m.0) - 1];
        let follower = handles.iter().find(|h| h.id() != m).unwrap();
        // Node 4 is added; it never runs: the test speaks for it.
        let four = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let elsewhere = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        master
            .add_member(NodeId(4), four.local_addr().unwrap(), tenure::Role::Learner)
            .await
            .unwrap();
        let addr_of = |h: &Handle, id: u16| {
            h.members()
                .members
                .iter()
                .find(|x| x.id == NodeId(id))
                .map(|x| x.addr)
        };
        tenure_e2e::wait_for(Duration::from_secs(5), || {
            (addr_of(follower, 4).is_some()).then_some(())
        })
        .await
        .expect("the follower applied the add");
        assert_eq!(addr_of(follower, 4), Some(None), "not known yet");
        let hello = |auth: &tenure::Auth, id: u16| {
            tenure_tokio::addresses::hello(auth, 0x7e57, NodeId(id), 1).unwrap()
        };
        let to = follower.local_addr();
        let unknown_before = follower.counters().unknown_source;
        // Refused: another key; a non-member (9); a member with a known address (1)
        // from another address.
        elsewhere
            .send_to(&hello(&tenure::Auth::key([6; 32]), 4), to)
            .unwrap();
        elsewhere.send_to(&hello(&key, 9), to).unwrap();
        if follower.id() != NodeId(1) {
            elsewhere.send_to(&hello(&key, 1), to).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(addr_of(follower, 4), Some(None));
        assert!(follower.counters().unknown_source > unknown_before);
        assert_eq!(follower.counters().addresses_learned, 0);
        // Learned: node 4's hello from its address; then the same from elsewhere is not.
        four.send_to(&hello(&key, 4), to).unwrap();
        tenure_e2e::wait_for(Duration::from_secs(5), || {
            (addr_of(follower, 4) == Some(Some(four.local_addr().unwrap()))).then_some(())
        })
        .await
        .expect("learned from the hello");
        elsewhere.send_to(&hello(&key, 4), to).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(addr_of(follower, 4), Some(Some(four.local_addr().unwrap())));
        assert_eq!(follower.counters().addresses_learned, 1);
        // On disk, in the follower's data directory.
        let book = std::fs::read_to_string(
            dir.0
                .join(format!("node-{}", follower.id()))
                .join("addresses"),
        )
        .unwrap();
        assert!(
            book.contains(&format!("4 {}", four.local_addr().unwrap())),
            "{book}"
        );
        for h in &handles {
            h.abort().await;
        }
        // A damaged address book stops the start, naming the file and the line.
        let i = usize::from(follower.id().0) - 1;
        std::fs::write(
            dir.0
                .join(format!("node-{}", follower.id()))
                .join("addresses"),
            "tenure-addresses 1\n4 nowhere\n",
        )
        .unwrap();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut again = cfgs[i].clone();
        again.listen = socket.local_addr().unwrap();
        again.peers.set_address(follower.id(), again.listen);
        let err = tenure_tokio::start_on(again, socket).expect_err("a damaged address book");
        let text = err.to_string();
        assert!(
            text.contains("address book") && text.contains("line 2"),
            "{text}"
        );
    });
}
