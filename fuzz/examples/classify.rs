//! Groups crash inputs by where they panic:
//! `cargo run --release --example classify -- <target> <file>...` (from fuzz/).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: classify <target> <file>...");
    let check: fn(&[u8]) = match target.as_str() {
        "decode" => tenure_fuzz::decode::check,
        "deframe" => tenure_fuzz::deframe::check,
        "cluster" => tenure_fuzz::cluster::check,
        "hostile" => tenure_fuzz::hostile::check,
        t => panic!("unknown target {t}"),
    };
    let last = Arc::new(Mutex::new(String::new()));
    let sink = last.clone();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let loc = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // Numbers vary per input: keep the message's first words only.
        let short: String = msg
            .split(':')
            .next()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        *sink.lock().unwrap() = format!("{loc}: {short}");
    }));
    let mut groups: BTreeMap<String, (usize, String, usize)> = BTreeMap::new();
    for path in args {
        let bytes = std::fs::read(&path).unwrap();
        let outcome = match std::panic::catch_unwind(|| check(&bytes)) {
            Ok(()) => "no panic".to_string(),
            Err(_) => last.lock().unwrap().clone(),
        };
        let e = groups
            .entry(outcome)
            .or_insert((0, path.clone(), bytes.len()));
        e.0 += 1;
        if bytes.len() < e.2 {
            e.1 = path;
            e.2 = bytes.len();
        }
    }
    for (outcome, (n, smallest, len)) in groups {
        println!("{n:5}  {outcome}\n       smallest: {smallest} ({len} bytes)");
    }
}
