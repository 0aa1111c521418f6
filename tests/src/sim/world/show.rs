//! Short readable forms of sets, ballots, ops and messages for the trace.

use tenure::{Ballot, ElectionState, Message, Op};

/// A set of node indexes as `{n1,n3}`.
pub(super) fn fmt_set(set: u32) -> String {
    let ids: Vec<String> = (0..32)
        .filter(|i| set & (1 << i) != 0)
        .map(|i| format!("n{}", i + 1))
        .collect();
    format!("{{{}}}", ids.join(","))
}

/// A ballot as `round.nNode`.
pub(super) fn fmt_ballot(b: Ballot) -> String {
    format!("{}.n{}", b.round, b.node)
}

/// An op in one short phrase.
pub(super) fn fmt_op(op: &Op) -> String {
    match *op {
        Op::BeMaster {
            node, version, id, ..
        } => format!(
            "BeMaster(n{node} at v{} #{}.{})",
            version.map_or("-".into(), |v| v.to_string()),
            id.incarnation,
            id.seq
        ),
        Op::Release {
            node,
            version,
            successor,
            id,
        } => format!(
            "Release(n{node} at v{version}{} #{}.{})",
            successor.map_or(String::new(), |s| format!(" to n{s}")),
            id.incarnation,
            id.seq
        ),
    }
}

/// An election state as `[master nX vN]`.
pub(super) fn fmt_state(s: &ElectionState) -> String {
    format!(
        "[master {} v{}]",
        s.master.map_or("-".into(), |m| format!("n{m}")),
        s.version.map_or("-".into(), |v| v.to_string())
    )
}

/// A message in one short line.
pub fn fmt_msg(m: &Message) -> String {
    match *m {
        Message::Prepare { instance, ballot } => {
            format!("Prepare i{instance} b{}", fmt_ballot(ballot))
        }
        Message::Promise {
            instance,
            ballot,
            accepted,
        } => format!(
            "Promise i{instance} b{} accepted {}",
            fmt_ballot(ballot),
            accepted.map_or("-".into(), |p| format!(
                "{}:{}",
                fmt_ballot(p.ballot),
                fmt_op(&p.op)
            ))
        ),
        Message::Accept {
            instance,
            ballot,
            op,
        } => format!("Accept i{instance} b{} {}", fmt_ballot(ballot), fmt_op(&op)),
        Message::Accepted { instance, ballot } => {
            format!("Accepted i{instance} b{}", fmt_ballot(ballot))
        }
        Message::Reject {
            instance,
            ballot,
            promised,
        } => format!(
            "Reject i{instance} b{} promised {}",
            fmt_ballot(ballot),
            fmt_ballot(promised)
        ),
        Message::Commit { instance, ballot } => {
            format!("Commit i{instance} b{}", fmt_ballot(ballot))
        }
        Message::Chosen { instance, op } => format!("Chosen i{instance} {}", fmt_op(&op)),
        Message::CatchUp { next_instance } => format!("CatchUp next i{next_instance}"),
        Message::Snapshot {
            next_instance,
            state,
        } => format!("Snapshot next i{next_instance} {}", fmt_state(&state)),
    }
}
