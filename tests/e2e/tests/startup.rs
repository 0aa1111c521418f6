//! Start-up of one node on its own, the adapter alone: records on disk (checks
//! `docs/algorithm.md` §4 "Restart": a damaged or foreign record stops start-up, an
//! intact one starts a new incarnation with its history), the data directory's lock,
//! configuration files, the admin endpoints. Tests of several nodes are beside it in `tests/e2e`.

use std::io::{Read, Write};
use std::time::Duration;

use tenure_e2e::{candidates, configs, one_at_a_time, runtime, start, TempDir, LEASE};
use tenure_tokio::store::LoadError;
use tenure_tokio::{NodeConfig, StartupError};

/// The configuration of node 1, alone in its cluster, on a free loopback port.
fn config(dir: &TempDir) -> NodeConfig {
    configs(dir, &candidates(1), LEASE).remove(0)
}

/// A one-node cluster that elects itself, stores some history, then stops.
fn run_single_node(config: &NodeConfig) {
    runtime().block_on(async {
        let h = start(config);
        tenure_e2e::wait_master(&[&h], LEASE + Duration::from_secs(3)).await;
        tokio::time::sleep(LEASE / 2).await;
        h.shutdown().await.unwrap();
    });
}

fn try_start(config: &NodeConfig) -> Result<tenure_tokio::Handle, StartupError> {
    runtime().block_on(async {
        let h = tenure_tokio::start(config.clone()).await?;
        h.shutdown().await.unwrap();
        Ok(h)
    })
}

#[test]
fn a_damaged_record_stops_start_up_and_is_left_alone() {
    let _one = one_at_a_time();
    let dir = TempDir::new("corrupt");
    let config = config(&dir);
    assert!(!config.data_dir.exists());
    run_single_node(&config);
    let path = config.data_dir.join("record");
    let good = std::fs::read(&path).unwrap();
    let record = tenure::Record::decode(&good).unwrap();
    assert!(record.election().version.is_some());

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("bit flip", flipped, "corrupt"),
        ("truncated", good[..good.len() - 3].to_vec(), "corrupt"),
        ("torn", good[..3].to_vec(), "truncated"),
        ("empty", Vec::new(), "empty"),
    ];
    for (what, bytes, expected) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let err = try_start(&config).expect_err(what);
        assert!(
            matches!(err, StartupError::Load(LoadError::Invalid { .. })),
            "{what}: {err}"
        );
        let message = err.to_string();
        assert!(message.contains(expected), "{what}: {message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{what}: the record was touched"
        );
    }

    // Another node's record in this directory: refused too.
    std::fs::write(&path, &good).unwrap();
    let mut other = config.clone();
    other.core.node_id = tenure::NodeId(1);
    let members = [(tenure::Member::candidate(2), other.listen)];
    let mut other = NodeConfig::new(
        other.core.cluster_id,
        tenure::NodeId(2),
        &members,
        &other.data_dir,
    )
    .unwrap();
    other.core.lease = config.core.lease;
    let err = try_start(&other).expect_err("another node's record");
    assert!(matches!(err, StartupError::Start(_)), "{err}");

    // The intact record starts, as a new incarnation that keeps the history (the
    // one-node cluster may elect itself again before it stops: versions only grow).
    let h = try_start(&config).unwrap();
    drop(h);
    let after = tenure::Record::decode(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(after.incarnation(), record.incarnation() + 1);
    assert!(after.election().version >= record.election().version);
}

#[test]
fn a_directory_in_use_is_refused() {
    let _one = one_at_a_time();
    let dir = TempDir::new("locked");
    let config = config(&dir);
    runtime().block_on(async {
        let h = start(&config);
        let mut second = config.clone();
        second.listen = "127.0.0.1:0".parse().unwrap();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let err = tenure_tokio::start_on(second, socket).expect_err("shared data dir");
        assert!(err.to_string().contains("in use"), "{err}");
        h.shutdown().await.unwrap();
    });
}

#[test]
fn configuration_files_from_init_config_style_text() {
    let dir = TempDir::new("config");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("node.toml");
    std::fs::write(
        &path,
        "cluster_id = 5\nnode_id = 1\ndata_dir = \"d1\"\nlease = \"2s\"\ninsecure = true\n\n[[members]]\nid = 1\naddr = \"127.0.0.1:7001\"\n",
    )
    .unwrap();
    let c = NodeConfig::load(&path).unwrap();
    assert_eq!(c.data_dir, dir.0.join("d1"));
    assert_eq!(c.core.lease, tenure::Duration::from_secs(2));
    std::fs::write(&path, "cluster_id = 5\nnode_id = 1\ndata_dir = \"d1\"\nlease = \"2 fortnights\"\n\n[[members]]\nid = 1\naddr = \"127.0.0.1:7001\"\n").unwrap();
    let err = NodeConfig::load(&path).unwrap_err();
    assert_eq!(err.field, "lease");
    assert!(err.to_string().contains("node.toml"), "{err}");
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[test]
fn admin_serves_status_and_metrics() {
    let _one = one_at_a_time();
    let dir = TempDir::new("admin");
    let config = config(&dir);
    runtime().block_on(async {
        let h = start(&config);
        tenure_e2e::wait_master(&[&h], LEASE + Duration::from_secs(3)).await;
        let addr = tenure_tokio::admin::bind("127.0.0.1:0".parse().unwrap(), h.clone())
            .await
            .unwrap();
        let boot_before = tenure_tokio::clock::host_boottime_ns();
        let (head, body, before, after) = tokio::task::spawn_blocking(move || {
            let before = tenure_tokio::clock::host_monotonic_ns();
            let (head, body) = http_get(addr, "/status");
            (head, body, before, tenure_tokio::clock::host_monotonic_ns())
        })
        .await
        .unwrap();
        let boot_after = tenure_tokio::clock::host_boottime_ns();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("application/json"), "{head}");
        for field in [
            "\"node\":1",
            "\"is_master\":true",
            "\"master\":1",
            "\"lease_ms\":400",
        ] {
            assert!(body.contains(field), "{field} missing in {body}");
        }
        let version = body.split("\"version\":").nth(1).unwrap();
        assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{body}");
        let ns: u64 = body
            .split("\"monotonic_ns\":")
            .nth(1)
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(before <= ns && ns <= after, "{before} <= {ns} <= {after}");
        // The term's span on CLOCK_BOOTTIME: the view's term, converted.
        let field = |name: &str| -> u64 {
            body.split(&format!("\"{name}\":"))
                .nth(1)
                .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing or null in {body}"))
        };
        let (now, begin, end) = (
            field("boottime_ns"),
            field("term_begin_ns"),
            field("term_end_ns"),
        );
        assert!(boot_before - 1000 < now && now <= boot_after, "{body}");
        assert!(begin <= now && now < end, "{body}");
        let term = h.view().term.unwrap();
        let clock = h.clock();
        use tenure_tokio::clock::Clock as _;
        assert_eq!(Some(begin), clock.boottime_ns(term.since), "{body}");
        assert!(Some(end) <= clock.boottime_ns(term.end), "{body}");

        let (head, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.contains("tenure_is_master 1"), "{body}");
        assert!(body.contains("tenure_elections_won_total 1"), "{body}");
        assert!(body.contains("tenure_persist_seconds_count"), "{body}");
        let (head, _) = tokio::task::spawn_blocking(move || http_get(addr, "/nothing"))
            .await
            .unwrap();
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        h.shutdown().await.unwrap();
        let body = tenure_tokio::admin::status_json(&h);
        assert!(
            body.contains("\"term_begin_ns\":null,\"term_end_ns\":null"),
            "{body}"
        );
    });
}

#[test]
fn a_missing_record_needs_an_explicit_first_start() {
    let _one = one_at_a_time();
    let dir = TempDir::new("first-boot");
    let config = config(&dir).with_first_boot(false);
    // Never started, and not told it is a first start: refused, nothing created.
    let err = try_start(&config).expect_err("no record, no first_boot");
    assert!(
        matches!(&err, StartupError::Load(LoadError::NoRecord { dir }) if dir == &config.data_dir),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&config.data_dir.display().to_string()),
        "{err}"
    );
    assert!(!config.data_dir.exists());

    // The first start, explicit; every later one restores without the flag.
    run_single_node(&config.clone().with_first_boot(true));
    try_start(&config).expect("restores from its record");

    // The record lost: refused again.
    std::fs::remove_file(config.data_dir.join("record")).unwrap();
    let err = try_start(&config).expect_err("lost record");
    assert!(
        matches!(err, StartupError::Load(LoadError::NoRecord { .. })),
        "{err}"
    );
}

#[test]
fn master_info_names_the_master_and_where_it_is() {
    let _one = one_at_a_time();
    let dir = TempDir::new("identity");
    let mut config = config(&dir);
    config.identities = vec![tenure_tokio::Identity {
        id: tenure::NodeId(1),
        name: Some("db-1".into()),
        advertise: Some("10.0.0.1:5432".into()),
    }];
    runtime().block_on(async {
        let h = start(&config);
        tenure_e2e::wait_master(&[&h], LEASE + Duration::from_secs(3)).await;
        let info = h.master_info().expect("a master");
        let view = h.master().expect("a master");
        assert_eq!(info.node, view.node);
        assert_eq!(info.token, view.token);
        assert_eq!(info.name.as_deref(), Some("db-1"));
        assert_eq!(info.advertise.as_deref(), Some("10.0.0.1:5432"));
        assert_eq!(info.addr, Some(config.listen));
        assert_eq!(h.identity(tenure::NodeId(2)), None);
        let metrics = h.metrics();
        for line in [
            "tenure_node_info{node=\"1\",name=\"db-1\",advertise=\"10.0.0.1:5432\"} 1\n",
            "tenure_master_info{node=\"1\",name=\"db-1\",advertise=\"10.0.0.1:5432\"} 1\n",
        ] {
            assert!(metrics.contains(line), "{line} missing in {metrics}");
        }
        h.shutdown().await.unwrap();
    });
}
