#!/usr/bin/env bash
# Builds and runs every Tenure fuzz target for SECONDS each (default 60), one libFuzzer
# process at a time, on a temporary copy of the committed seed corpus (the seeds in git
# never grow). Prints executions per second and coverage per target; exits non-zero if a
# target crashes (the input is kept in fuzz/artifacts/<target>/) or fails to build.
# Skips cleanly (exit 0) when `cargo +nightly` or cargo-fuzz is missing.
#
#   fuzz/run.sh [SECONDS]              all targets
#   FUZZ_TARGETS="cluster" fuzz/run.sh 300
#   FUZZ_SANITIZER=address fuzz/run.sh  (default: none; the core forbids unsafe code)
#   fuzz/run.sh --selftest [SECONDS]   plant a driver bug; pass only if `cluster` finds it
set -uo pipefail
cd "$(dirname "$0")"

selftest=0
if [ "${1:-}" = "--selftest" ]; then
  selftest=1
  shift
fi
secs="${1:-60}"
case "$secs" in
  '' | *[!0-9]*) echo "usage: $0 [--selftest] [SECONDS]" >&2; exit 2 ;;
esac
targets=(${FUZZ_TARGETS:-decode deframe cluster hostile})
sanitizer="${FUZZ_SANITIZER:-none}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: no nightly toolchain (install with: rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: SKIPPED: cargo-fuzz is not installed (install with: cargo install cargo-fuzz --locked)"
  exit 0
fi

features=()
if [ "$selftest" = 1 ]; then
  targets=(cluster)
  features=(--features planted-amnesia)
fi

echo "fuzz: building ${targets[*]} (sanitizer $sanitizer${features[*]:+, ${features[*]}})"
build_target=()
if [ "${#targets[@]}" -eq 1 ]; then
  build_target=("${targets[0]}") # `cargo fuzz build` takes one target, or none for all
fi
build_log="$(mktemp "${TMPDIR:-/tmp}/tenure-fuzz-build.XXXXXX")"
if ! cargo +nightly fuzz build -s "$sanitizer" "${features[@]}" "${build_target[@]}" >"$build_log" 2>&1; then
  cat "$build_log" >&2
  rm -f "$build_log"
  echo "fuzz: FAILED to build" >&2
  exit 1
fi
tail -n 1 "$build_log"
rm -f "$build_log"

work="$(mktemp -d "${TMPDIR:-/tmp}/tenure-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=0
summary=()
for t in "${targets[@]}"; do
  corpus="$work/corpus-$t"
  mkdir -p "$corpus" "artifacts/$t"
  artifacts="artifacts/$t/"
  if [ "$selftest" = 1 ]; then
    artifacts="$work/" # the planted bug's crash is expected: do not keep it
  fi
  cp corpus/"$t"/* "$corpus"/
  log="$work/$t.log"
  echo "fuzz: running $t for ${secs}s"
  # -timeout: one input taking over 10 s is a hang, reported as a crash.
  timeout --signal=INT --kill-after=30 $((secs + 300)) \
    cargo +nightly fuzz run -s "$sanitizer" "${features[@]}" "$t" "$corpus" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts" >"$log" 2>&1
  rc=$?
  last="$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -n 1)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")"
  corp="$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")"
  execs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  eps="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)"
  line="$(printf '%-8s exec/s %-7s runs %-10s cov %-6s ft %-6s corpus %s' \
    "$t" "${eps:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")"
  if [ "$rc" -ne 0 ]; then
    if [ "$selftest" = 1 ] && grep -q 'two masters\|disagrees about version' "$log"; then
      line="$line  SELFTEST OK: planted bug caught"
    else
      failed=1
      line="$line  CRASH (exit $rc)"
      echo "----- $t: last lines of the libFuzzer log -----"
      grep -E 'panicked|Test unit written|ERROR|SUMMARY' "$log" | head -n 20
      grep -A3 'panicked' "$log" | head -n 12
      crash="$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$log" | tail -n 1)"
      crash="${crash:-artifacts/$t/<crash-file>}"
      echo "reproduce: cd fuzz && cargo +nightly fuzz run -s $sanitizer ${features[*]} $t $crash"
      echo "minimize:  cd fuzz && cargo +nightly fuzz tmin -s $sanitizer ${features[*]} $t $crash"
      case "$t" in
        cluster) echo "explain:   cd fuzz && cargo run --release ${features[*]} --example explain -- $crash" ;;
        hostile) echo "explain:   cd fuzz && cargo run --release --example explain_hostile -- $crash" ;;
      esac
    fi
  elif [ "$selftest" = 1 ]; then
    failed=1
    line="$line  SELFTEST FAILED: planted bug not found in ${secs}s"
  fi
  summary+=("$line")
done

echo
echo "fuzz summary (${secs}s per target, sanitizer $sanitizer):"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED" >&2
  exit 1
fi
echo "fuzz: ok"
