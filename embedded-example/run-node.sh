#!/usr/bin/env bash
# Builds the firmware (release) and boots one node under QEMU (mps2-an386).
#
#   ./run-node.sh ID MEMBERS PORT [EXTRA_APPEND]
#   ./run-node.sh 1 1,2,3 7101 first_boot     # the node's very first start
#   ./run-node.sh 1 1,2,3 7101                # later starts, from its flash
#
# UART0 (text logs and EVENT lines) is this script's stdout. UART1 (the COBS
# frame link) is a TCP server on 127.0.0.1:PORT; QEMU does not wait for a
# client. The emulated flash is ./tenure-node-ID.flash in the current
# directory (or flash=PATH in EXTRA_APPEND); it survives killing QEMU, so a
# restarted node keeps its record. A node's very first start needs
# `first_boot` in EXTRA_APPEND (./run-node.sh 1 1,2,3 7101 first_boot); without
# it a node whose flash holds no record halts with exit code 8, so a node
# that lost its flash never starts from nothing. Set NO_BUILD=1 to skip the build, and
# QEMU_TIMEOUT=SECONDS to bound the run. ELF=PATH boots that image instead of
# the release build (with NO_BUILD=1: a long run keeps its image while the
# tree is rebuilt).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 ID MEMBERS PORT [EXTRA_APPEND]" >&2
    exit 2
fi
id=$1 members=$2 port=$3 extra=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
elf=${ELF:-$here/target/thumbv7em-none-eabihf/release/tenure-embedded-example}

if [ -z "${NO_BUILD:-}" ]; then
    (cd "$here" && cargo build --release --quiet)
fi

qemu=(qemu-system-arm
    -machine mps2-an386 -cpu cortex-m4
    -nographic -monitor none
    -semihosting-config enable=on,target=native
    -chardev "socket,id=link,host=127.0.0.1,port=$port,server=on,wait=off,nodelay=on"
    -serial stdio -serial chardev:link
    -kernel "$elf"
    -append "id=$id members=$members${extra:+ $extra}")

if [ -n "${QEMU_TIMEOUT:-}" ]; then
    exec timeout --signal=KILL "$QEMU_TIMEOUT" "${qemu[@]}"
fi
exec "${qemu[@]}"
