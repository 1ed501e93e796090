#!/usr/bin/env bash
# Resident memory of `imagegate serve` with policies of 10 to 100 000 allow
# patterns: after start-up (steady), the start-up peak, and the peak across
# a reload of the same-size policy (SIGHUP; the old and the new policy are
# briefly both alive). Also the pattern lookup cost at each size, from the
# criterion numbers if present. Writes loadtest/RESULTS-memory.md.
#
# Usage: loadtest/memory.sh
#   SIZES="10 1000 10000 100000"   pattern counts
#   IMAGEGATE_BIN=path             binary (default: cargo build --release)
#   OUT=path                       results file
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=loadtest/common.sh
. "$ROOT/loadtest/common.sh"

SIZES=${SIZES:-"10 1000 10000 100000"}
OUT=${OUT:-$ROOT/loadtest/RESULTS-memory.md}
if [ -z "${IMAGEGATE_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --locked -q)
    IMAGEGATE_BIN=$ROOT/target/release/imagegate
fi
workspace memory

# policy N FILE: N allow patterns of the shapes real policies use (hosts,
# host/path prefixes, wildcards), all distinct.
policy() {
    python3 - "$1" "$2" <<'EOF'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
with open(out, "w") as f:
    f.write("apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n")
    f.write("  tags:\n    requireTagOrDigest: true\n    forbid: [latest]\n")
    f.write("  registries:\n    allow:\n")
    for i in range(n):
        shape = i % 4
        if shape == 0:
            p = f"registry-{i}.example.com"
        elif shape == 1:
            p = f"ghcr.io/org-{i}/app-{i % 97}"
        elif shape == 2:
            p = f"*.team-{i}.example.net/images/**"
        else:
            p = f"mirror.example.org:5000/project-{i}/*"
        f.write(f"      - \"{p}\"\n")
EOF
}

# kib FIELD PID: a field of /proc/PID/status, in KiB.
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status"; }
mib() { python3 -c "print(f'{$1 / 1024:.1f}')"; }

ROWS=()
for n in $SIZES; do
    policy "$n" "$WORK/policy.yaml"
    bytes=$(stat -c %s "$WORK/policy.yaml")
    "$IMAGEGATE_BIN" serve --policy "$WORK/policy.yaml" --listen 127.0.0.1:0 \
        --log-format json --file-poll-interval 1h 2>"$WORK/log" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 600); do
        grep -q '"imagegate serving"' "$WORK/log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '"imagegate serving"' "$WORK/log" || { cat "$WORK/log" >&2; exit 1; }
    # The memory of the compile is given back about 1.2 s and 2.4 s after
    # it (src/server/memory.rs).
    sleep 4
    steady=$(kib VmRSS "$pid")
    start_peak=$(kib VmHWM "$pid")
    # Reset the high-water mark, then reload the same policy.
    echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
    reloads=$(grep -c 'policy reloaded' "$WORK/log" || true)
    kill -HUP "$pid"
    for _ in $(seq 1 600); do
        [ "$(grep -c 'policy reloaded' "$WORK/log" || true)" -gt "$reloads" ] && break
        sleep 0.1
    done
    sleep 4
    reload_peak=$(kib VmHWM "$pid")
    after=$(kib VmRSS "$pid")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    ROWS+=("| $(python3 -c "print(f'{$n:,}')") | $(python3 -c "print(f'{$bytes / 1024:,.0f}')") KiB | $(mib "$steady") MiB | $(mib "$start_peak") MiB | $(mib "$reload_peak") MiB | $(mib "$after") MiB |")
    echo "${ROWS[-1]}"
done

{
    echo "# Memory with large policies"
    echo
    echo "Written by \`loadtest/memory.sh\` on $(date -u +%Y-%m-%d), release build,"
    echo "\`imagegate serve\` with no traffic. Patterns cycle through four shapes"
    echo "(\`registry-N.example.com\`, \`ghcr.io/org-N/app-M\`, \`*.team-N.example.net/images/**\`,"
    echo "\`mirror.example.org:5000/project-N/*\`), all distinct. Steady: VmRSS 4 s after"
    echo "start-up. Start peak: VmHWM then. Reload peak: VmHWM across a SIGHUP"
    echo "reload of the same policy (the high-water mark is reset first, so this is"
    echo "the reload's own peak, old and new policy alive together). After: VmRSS"
    echo "4 s after the reload."
    echo
    echo "| patterns | policy file | steady RSS | start peak | reload peak | after reload |"
    echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
    printf '%s\n' "${ROWS[@]}"
} >"$OUT"
echo "wrote $OUT"
