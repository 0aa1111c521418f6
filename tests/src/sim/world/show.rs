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

/// A ballot as `round.nNode` (the core's `Display`).
pub(super) fn fmt_ballot(b: Ballot) -> String {
    b.to_string()
}

/// An op in one short phrase (the core's `Display`).
pub(super) fn fmt_op(op: &Op) -> String {
    op.to_string()
}

/// An election state (the core's `Display`).
pub(super) fn fmt_state(s: &ElectionState) -> String {
    s.to_string()
}

/// A message in one short line (the core's `Display`).
pub fn fmt_msg(m: &Message) -> String {
    m.to_string()
}
