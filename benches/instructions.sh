#!/bin/bash
# Instructions per leader-only renewal round of each contender, counted by valgrind
# (callgrind): the difference between runs of 3N and N rounds, divided by 2N, so that
# building and electing the cluster cancels out. Unlike times, these counts do not
# change with the machine's load. Needs valgrind.
#   bash benches/instructions.sh [contender...]   (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bin profile
bin="$here/target/release/profile"
ir() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        awk '/Collected/ { print $4 }'
}
contenders=("$@")
[ ${#contenders[@]} -gt 0 ] || contenders=(tenure logged sealed raft raft-sealed omni omni-sealed null)
for c in "${contenders[@]}"; do
    n=1000
    a=$(ir "$c" $n)
    b=$(ir "$c" $((3 * n)))
    printf '%-12s %8d instructions per round\n' "$c" $(((b - a) / (2 * n)))
done
