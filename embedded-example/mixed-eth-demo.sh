#!/usr/bin/env bash
# The mixed Ethernet cluster, no gateway: 3 QEMU nodes (this firmware, --features eth)
# and 2 `tenure node` processes on one bridged Ethernet segment inside network
# namespaces the test creates (and deletes). Builds both, kills masters of both kinds
# with SIGKILL, restarts them from flash / disk, checks one master at a time and
# agreement, prints failover p50/p99/max, then puts bad frames on the bridge and
# prints the firmware's counters. Needs root, ip, nft, qemu-system-arm and python3.
#
#   sudo ./mixed-eth-demo.sh [KILLS]     # default 30
#
# MIXED_ETH_KEEP=1 keeps the working directory (node logs, flash files, data
# directories). This runs the test `tests/e2e/tests/mixed_ethernet.rs`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
MIXED_ETH_KILLS=${1:-30} exec cargo test -p tenure-e2e --test mixed_ethernet -- --nocapture
