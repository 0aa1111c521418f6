#!/usr/bin/env bash
# The mixed cluster: 3 QEMU nodes (this firmware) + 2 tokio nodes, one of them the
# gateway owning the QEMU nodes' UART links. Builds the firmware, kills masters of
# both kinds (and the gateway), restarts them from their records, and prints the
# timeline, failover times and host CPU per QEMU node.
#
#   ./mixed-demo.sh [KILLS]        # default 4
#
# MIXED_KEEP=1 keeps the working directory (QEMU logs node-N.log, flash files,
# tokio data directories). This runs the test `tests/e2e/tests/mixed_cluster.rs`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
MIXED_KILLS=${1:-4} exec cargo test -p tenure-e2e --test mixed_cluster -- --nocapture
