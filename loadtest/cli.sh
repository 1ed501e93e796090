#!/usr/bin/env bash
# Throughput and peak memory of the commands that judge before the cluster:
# `imagegate check -f` over OBJECTS manifest objects (default 10 000) and
# `imagegate replay` over EVENTS audit events (default 1 000 000), plain and
# gzip-compressed, each under the built-in default policy and a 1 000-pattern
# policy, and replay with --baseline (two policies per review). Inputs come
# from loadtest/gen_manifests.py and loadtest/gen_audit.py (deterministic).
#
# Usage: loadtest/cli.sh           (writes loadtest/RESULTS-cli.md)
#   OBJECTS=N EVENTS=N             input sizes
#   OUT=path                       results file
#   IMAGEGATE_BIN=path             binary (default: cargo build --release)
#   CPU=N                          core to pin the command to (default 1)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=loadtest/common.sh
. "$ROOT/loadtest/common.sh"

OBJECTS=${OBJECTS:-10000}
EVENTS=${EVENTS:-1000000}
OUT=${OUT:-$ROOT/loadtest/RESULTS-cli.md}
CPU=${CPU:-1}
need /usr/bin/time time
if [ -z "${IMAGEGATE_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --locked -q)
    IMAGEGATE_BIN=$ROOT/target/release/imagegate
fi
workspace cli-bench

python3 "$ROOT/loadtest/gen_manifests.py" --objects "$OBJECTS" --out "$WORK/manifests.yaml"
python3 "$ROOT/loadtest/gen_audit.py" --events "$EVENTS" --out "$WORK/audit.log"
gzip -k -1 "$WORK/audit.log"
# A policy with 1 000 allowed registry patterns, tags required, no latest.
{
    printf 'apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n'
    printf '  tags:\n    requireTagOrDigest: true\n    forbid: [latest]\n'
    printf '  registries:\n    allow:\n'
    for i in $(seq 1 997); do printf '      - registry-%d.example.com/team\n' "$i"; done
    printf '      - registry.example.com\n      - ghcr.io\n      - docker.io\n'
} >"$WORK/policy-1000.yaml"
printf 'apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  tags:\n    forbid: []\n' >"$WORK/baseline.yaml"

# measure NAME UNITS COUNT ARGS...: runs ARGS pinned to $CPU under
# /usr/bin/time; appends a table row with wall time, rate and peak RSS.
ROWS=()
measure() {
    local name=$1 units=$2 count=$3
    shift 3
    local code=0
    taskset -c "$CPU" /usr/bin/time -f '%e %M %U %S' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" || code=$?
    if [ "$code" -ge 2 ]; then
        echo "$name failed ($code):" >&2
        cat "$WORK/err" >&2
        exit 1
    fi
    # GNU time writes "Command exited with non-zero status N" first when
    # the command exits 1 (denied): the numbers are on the last line.
    read -r wall rss user sys < <(tail -n 1 "$WORK/time")
    local rate
    rate=$(python3 -c "print(f'{$count / max($wall, 0.001):,.0f}')")
    local mib
    mib=$(python3 -c "print(f'{$rss / 1024:.1f}')")
    ROWS+=("| $name | $(python3 -c "print(f'{$count:,}')") $units | ${wall} s | $rate $units/s | ${user} s + ${sys} s | $mib MiB |")
    echo "${ROWS[-1]}"
}

SIZE_M=$(du -m "$WORK/manifests.yaml" | cut -f1)
SIZE_A=$(du -m "$WORK/audit.log" | cut -f1)
SIZE_Z=$(du -m "$WORK/audit.log.gz" | cut -f1)
measure "check -f --output json, built-in policy" objects "$OBJECTS" "$IMAGEGATE_BIN" check -f "$WORK/manifests.yaml" --output json
grep -q '"objects"' "$WORK/out"
measure "check -f, 1 000 patterns" objects "$OBJECTS" "$IMAGEGATE_BIN" check --policy "$WORK/policy-1000.yaml" -f "$WORK/manifests.yaml"
measure "replay, built-in policy" events "$EVENTS" "$IMAGEGATE_BIN" replay "$WORK/audit.log"
REVIEWS=$(grep -o '^[0-9]* reviews' "$WORK/out" | cut -d' ' -f1)
measure "replay, gzip" events "$EVENTS" "$IMAGEGATE_BIN" replay "$WORK/audit.log.gz"
measure "replay, 1 000 patterns" events "$EVENTS" "$IMAGEGATE_BIN" replay --policy "$WORK/policy-1000.yaml" "$WORK/audit.log"
measure "replay --baseline" events "$EVENTS" "$IMAGEGATE_BIN" replay --baseline "$WORK/baseline.yaml" "$WORK/audit.log"

{
    echo "# Before the cluster: check -f and replay"
    echo
    echo "Written by \`loadtest/cli.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores"
    echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), release build,"
    echo "each command pinned to core $CPU. Inputs: $(python3 -c "print(f'{$OBJECTS:,}')") objects of"
    echo "\`gen_manifests.py\` (${SIZE_M} MB of YAML); $(python3 -c "print(f'{$EVENTS:,}')") events of \`gen_audit.py\`"
    echo "(${SIZE_A} MB, ${SIZE_Z} MB gzip-compressed), of which ${REVIEWS} are pod-bearing"
    echo "reviews judged (each auditID once). Peak RSS is the process's maximum"
    echo "resident set (GNU time)."
    echo
    echo "| command | input | wall | rate | CPU (user + sys) | peak RSS |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ROWS[@]}"
} >"$OUT"
# The README quotes the table between its cli-bench markers.
python3 - "$OUT" "$ROOT/README.md" <<'EOF2'
import sys
table = open(sys.argv[1]).read().split("\n", 2)[2].strip()
readme = open(sys.argv[2]).read()
start, end = "<!-- cli-bench -->", "<!-- /cli-bench -->"
i, j = readme.index(start) + len(start), readme.index(end)
open(sys.argv[2], "w").write(readme[:i] + "\n" + table + "\n" + readme[j:])
EOF2
echo "wrote $OUT and the README's table"
