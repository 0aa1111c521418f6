#!/usr/bin/env bash
# CI for the firmware, one function per job; the root .ci/run calls
# `bash embedded-example/ci.sh` (all jobs) or `bash embedded-example/ci.sh JOB...`.
#
# Jobs: install fmt clippy store build size tagcost qemu eth
# The firmware is its own cargo root (excluded from the workspace). Cargo.lock
# is committed but not `--locked`: it pins the registry crates, while the path
# dependency on ../core may gain dependencies between commits.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n=== embedded-example: %s ===\n' "$*"; }

# This cargo root's own target directory, whatever the caller's CARGO_TARGET_DIR: the
# jobs below read the images from it by path.
export CARGO_TARGET_DIR=target

# The defmt build gets its own target directory so switching features does not
# rebuild the text build's dependencies.
DEFMT_TARGET_DIR=target/defmt-build
ELF=target/thumbv7em-none-eabihf/release/tenure-embedded-example
DEFMT_ELF=$DEFMT_TARGET_DIR/thumbv7em-none-eabihf/release/tenure-embedded-example

# Budgets for a small Cortex-M4 part, 5-member build (README, "Footprint"):
# 48 KiB of flash and 6 KiB of static RAM (the node, the runner and the task
# live in statics; defmt adds its RTT buffer, 512 B). With SipHash tags
# (protocol 5) and the release's successor hint the text build meets the flash
# budget by 676 B (48,476 B); the defmt build by about 2.6 KB and the RAM budget
# by about 300 B.
TEXT_FLASH_BUDGET=$((48 * 1024))
DEFMT_FLASH_BUDGET=$((48 * 1024))
RAM_BUDGET=$((6 * 1024))

# The sizes are measured with .cargo/config.toml's rustflags (the inliner
# threshold); RUSTFLAGS from the environment would replace them.
unset RUSTFLAGS

# The Ethernet build (feature eth: LAN9118 driver, embassy-net/smoltcp, UDP) in its
# own target directory. Budgets (README, "Mixed Ethernet cluster"): the UART build's
# plus what the IP stack measured (about 13 KB of flash, 7 KB of RAM), with about
# 13 KiB / 4.9 KiB left for a real board's flash driver; it fits a 96 KiB / 24 KiB part.
ETH_TARGET_DIR=target/eth-build
ETH_ELF=$ETH_TARGET_DIR/thumbv7em-none-eabihf/release/tenure-embedded-example
ETH_FLASH_BUDGET=$((72 * 1024))
ETH_RAM_BUDGET=$((16 * 1024))

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
    (cd store-test && cargo fmt -- --check)
}

clippy() {
    step "cargo clippy -D warnings (text logs, then defmt)"
    cargo clippy --release -- -D warnings
    CARGO_TARGET_DIR=$DEFMT_TARGET_DIR cargo clippy --release --features defmt -- -D warnings
}

# The record store's host tests (store-test/ builds src/store.rs for the host,
# over a RAM flash that loses power mid-write and mid-erase).
store() {
    step "record store: host tests, clippy"
    local host
    host=$(rustc -vV | sed -n 's/^host: //p')
    (cd store-test && cargo clippy --target "$host" --all-targets -- -D warnings \
        && cargo test --target "$host")
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
    step "size (budgets: text build flash <= $TEXT_FLASH_BUDGET B, defmt build flash <= $DEFMT_FLASH_BUDGET B, static RAM <= $RAM_BUDGET B)"
    local ok=0 elf budget line flash ram
    for pair in "$ELF:$TEXT_FLASH_BUDGET" "$DEFMT_ELF:$DEFMT_FLASH_BUDGET"; do
        elf=${pair%:*} budget=${pair##*:}
        arm-none-eabi-size "$elf"
        line=$(sizes "$elf")
        flash=${line#flash=}; flash=${flash% ram=*}
        ram=${line#*ram=}
        echo "$elf: $line"
        if [ "$flash" -gt "$budget" ] || [ "$ram" -gt "$RAM_BUDGET" ]; then
            echo "over budget: $elf (flash $flash > $budget or RAM $ram > $RAM_BUDGET)" >&2
            ok=1
        fi
    done
    return $ok
}

# Instructions per frame tag on the Cortex-M4 (examples/tag_cost.rs, README
# "Frame tags"): under `-icount shift=0` QEMU runs one instruction per virtual
# nanosecond, so SysTick (25 MHz) counts 40 instructions per tick. A figure, not
# a gate: the job checks that the example ran and printed one for each size.
tagcost() {
    step "tag cost: instructions per SipHash tag on QEMU's Cortex-M4 (12, 32, 64 B)"
    cargo clippy --release --example tag_cost -- -D warnings
    cargo build --release --example tag_cost
    local out len
    out=$(timeout 30 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
        -icount shift=0 -semihosting-config enable=on,target=native \
        -kernel target/thumbv7em-none-eabihf/release/examples/tag_cost </dev/null)
    echo "$out"
    for len in 12 32 64; do
        if ! grep -Eq "^tag $len B: [0-9]+ instructions per tag" <<<"$out"; then
            echo "tag_cost printed no figure for $len B" >&2
            return 1
        fi
    done
}

qemu() {
    step "QEMU: 3-node cluster with a key: election, hand-over, failover, restart from flash, bad frames, soak, wear smoke"
    local key
    key=$(printf '5a%.0s' $(seq 32))
    # Longer rounds and backoffs than the core's LAN defaults: on a loaded CI
    # machine the emulated links are slow, and with 50 ms rounds dueling
    # proposers can keep pre-empting each other.
    # --wear 25: a smoke of the wear run (two kills of the master, each restarted
    # from its flash); the 10-minute measurement (README, "Flash wear") is not CI's.
    timeout 240 python3 tools/cluster_test.py --nodes 3 --base-port 7200 --key "$key" \
        --extra "round_ms=150 backoff_ms=300" --soak 15 --wear 25 --failover-every 10
}

eth() {
    step "Ethernet build (feature eth): clippy, build, size (flash <= $ETH_FLASH_BUDGET B, static RAM <= $ETH_RAM_BUDGET B), smoltcp's share"
    CARGO_TARGET_DIR=$ETH_TARGET_DIR cargo clippy --release --features eth -- -D warnings
    CARGO_TARGET_DIR=$ETH_TARGET_DIR cargo build --release --features eth
    arm-none-eabi-size "$ETH_ELF"
    local line flash ram
    line=$(sizes "$ETH_ELF")
    flash=${line#flash=}; flash=${flash% ram=*}
    ram=${line#*ram=}
    echo "$ETH_ELF: $line"
    # smoltcp's share of the flash (nm --size-sort): its own functions, and the IP
    # stack's task, into which LTO inlines embassy-net's runner and smoltcp's poll.
    arm-none-eabi-nm --size-sort -S -C -t d "$ETH_ELF" | awk '
        $3 ~ /^[tTrR]$/ {
            size = $2 + 0; name = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", name)
            if (name ~ /smoltcp/) smoltcp += size
            else if (name ~ /embassy_net/) enet += size
            else if (name ~ /lan9118/) drv += size
        }
        END { printf "smoltcp=%d embassy_net=%d lan9118_driver=%d (B, named functions; the stack task poll is listed below)\n", smoltcp, enet, drv }'
    arm-none-eabi-nm --size-sort -S -C -t d "$ETH_ELF" | grep -E 'TaskStorage<F>::poll|stack_task' || true
    if [ "$flash" -gt "$ETH_FLASH_BUDGET" ] || [ "$ram" -gt "$ETH_RAM_BUDGET" ]; then
        echo "over budget: $ETH_ELF" >&2
        return 1
    fi
}

if [ $# -eq 0 ]; then
    set -- install fmt clippy store build size tagcost qemu eth
fi
for job in "$@"; do
    "$job"
done
step "all green"
