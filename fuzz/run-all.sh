#!/usr/bin/env bash
# Runs every fuzz target in fuzz_targets/ one after the other, each for the
# given number of seconds (one job, low priority), and prints a markdown
# table: target, seconds, executions, exec/s, corpus (files / bytes),
# findings. Exits 1 if any target found a crash, timeout, leak or OOM (or
# its fuzzer failed), 2 if the build failed.
#
# usage: fuzz/run-all.sh [SECONDS] [TARGET...]
#   SECONDS  per target, default 600; `fuzz/run-all.sh 20` is the short CI run
#   TARGET   only these targets (default: every fuzz_targets/*.rs)
# environment:
#   FUZZ_WORK     where new corpus entries and logs go, kept between runs
#                 (default ${TMPDIR:-/tmp}/imagegate-fuzz); the committed
#                 seeds in corpus/<target> are read, never written
#   FUZZ_TIMEOUT  seconds one input may take before it counts as a hang
#                 (default 10)
#
# Findings are written by libFuzzer to artifacts/<target>/; reproduce one
# with `cargo fuzz run -O <target> artifacts/<target>/<file>`.
set -euo pipefail

secs=${1:-600}
shift || true
case $secs in
  '' | *[!0-9]* | 0) echo "usage: $0 [SECONDS>0] [TARGET...]" >&2; exit 64 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
work=${FUZZ_WORK:-${TMPDIR:-/tmp}/imagegate-fuzz}
timeout=${FUZZ_TIMEOUT:-10}
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz_targets/*.rs; do
    targets+=("$(basename "$f" .rs)")
  done
fi
for t in "${targets[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "no fuzz target $t" >&2; exit 64; }
done

echo "building ${#targets[@]} targets" >&2
if ! nice -n 10 cargo fuzz build -O >&2; then
  echo "build failed" >&2
  exit 2
fi

count_files() { find "$@" -type f 2>/dev/null | wc -l | tr -d ' '; }
count_bytes() { find "$@" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

mkdir -p "$work/logs"
rows=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "corpus/$t" "artifacts/$t"
  log=$work/logs/$t.log
  before=$(count_files "artifacts/$t")
  echo "fuzzing $t for ${secs}s (log: $log)" >&2
  start=$(date +%s)
  status=0
  nice -n 10 cargo fuzz run -O "$t" "$work/corpus/$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout="$timeout" -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    # no final stats (the fuzzer died hard): the last progress line
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  fi
  execs=${execs:-0}
  files=$(count_files "$work/corpus/$t" "corpus/$t")
  bytes=$(count_bytes "$work/corpus/$t" "corpus/$t")
  found=$(($(count_files "artifacts/$t") - before))
  if [ "$status" -ne 0 ] || [ "$found" -gt 0 ]; then
    failed=1
    findings="$found (exit $status, see $log)"
  else
    findings=none
  fi
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  rate=${rate:-$((execs / (took > 0 ? took : 1)))}
  rows+=("| \`$t\` | $secs | $execs | $rate | $files / $bytes | $findings |")
done

echo "| target | seconds | executions | exec/s | corpus (files / bytes) | findings |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
exit "$failed"
