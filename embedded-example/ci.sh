#!/usr/bin/env bash
# CI for the firmware, one function per job; the root .ci/run calls
# `bash embedded-example/ci.sh` (all jobs) or `bash embedded-example/ci.sh JOB...`.
#
# Jobs: install fmt clippy build size qemu
# The firmware is its own cargo root (excluded from the workspace). Cargo.lock
# is committed but not `--locked`: it pins the registry crates, while the path
# dependency on ../core may gain dependencies between commits.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n=== embedded-example: %s ===\n' "$*"; }

# The defmt build gets its own target directory so switching features does not
# rebuild the text build's dependencies.
DEFMT_TARGET_DIR=target/defmt-build
ELF=target/thumbv7em-none-eabihf/release/tenure-embedded-example
DEFMT_ELF=$DEFMT_TARGET_DIR/thumbv7em-none-eabihf/release/tenure-embedded-example

# Budgets for a small Cortex-M4 part, 5-member build.
# 66 KiB: protocol 2 added its lease layer (guards, renewal rounds, restart silence)
# and two messages to the decoder, about 2.3 KB over the protocol-1 firmware after
# the firmware shed 6 KB of formatting and copies (see README, "Footprint").
FLASH_BUDGET=$((66 * 1024))
RAM_BUDGET=$((16 * 1024))

install() {
    step "install: Rust target, QEMU, binutils, python3"
    rustup target add thumbv7em-none-eabihf
    rustup component add rustfmt clippy
    if ! command -v qemu-system-arm >/dev/null || ! command -v arm-none-eabi-size >/dev/null \
        || ! command -v python3 >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            qemu-system-arm binutils-arm-none-eabi python3 >/dev/null
    fi
    qemu-system-arm --version | head -1
}

fmt() {
    step "cargo fmt --check"
    cargo fmt -- --check
}

clippy() {
    step "cargo clippy -D warnings (text logs, then defmt)"
    cargo clippy --release -- -D warnings
    CARGO_TARGET_DIR=$DEFMT_TARGET_DIR cargo clippy --release --features defmt -- -D warnings
}

build() {
    step "cargo build --release (text logs, then defmt)"
    cargo build --release
    CARGO_TARGET_DIR=$DEFMT_TARGET_DIR cargo build --release --features defmt
}

# Prints "flash=N ram=N" for an ELF: flash is .text+.rodata+.data (what the
# image occupies), RAM is static .data+.bss (+ .uninit), stack excluded.
sizes() {
    arm-none-eabi-size "$1" | awk 'NR == 2 { printf "flash=%d ram=%d\n", $1 + $2, $2 + $3 }'
}

size() {
    step "size (budgets: flash <= $FLASH_BUDGET B, static RAM <= $RAM_BUDGET B)"
    local ok=0
    for elf in "$ELF" "$DEFMT_ELF"; do
        arm-none-eabi-size "$elf"
        local line flash ram
        line=$(sizes "$elf")
        flash=${line#flash=}; flash=${flash% ram=*}
        ram=${line#*ram=}
        echo "$elf: $line"
        if [ "$flash" -gt "$FLASH_BUDGET" ] || [ "$ram" -gt "$RAM_BUDGET" ]; then
            echo "over budget: $elf" >&2
            ok=1
        fi
    done
    return $ok
}

qemu() {
    step "QEMU: 3-node cluster with a key: election, hand-over, failover, restart from flash, soak"
    local key
    key=$(printf '5a%.0s' $(seq 32))
    # Longer rounds and backoffs than the core's LAN defaults: on a loaded CI
    # machine the emulated links are slow, and with 50 ms rounds dueling
    # proposers can keep pre-empting each other.
    timeout 240 python3 tools/cluster_test.py --nodes 3 --base-port 7200 --key "$key" \
        --extra "round_ms=150 backoff_ms=300" --soak 15
}

if [ $# -eq 0 ]; then
    set -- install fmt clippy build size qemu
fi
for job in "$@"; do
    "$job"
done
step "all green"
