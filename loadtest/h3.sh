#!/usr/bin/env bash
# Load test of the HTTP/3 listener against the HTTP/2 listener of the SAME
# imagegate process, same run, same load, same driver
# (loadtest/h3_bench.rs: hyper/rustls for h2, quinn/h3 for h3, one closed-loop
# model for both). Writes loadtest/RESULTS-h3.md.
#
# Usage: loadtest/h3.sh            (from anywhere inside the repository)
#
# Environment (all optional):
#   DURATION=10      measured seconds per run
#   WARMUP=2         unrecorded seconds at the start of each run
#   ROUNDS=3         rounds, each running h2 then h3 (1..10)
#   PIN=1            1: server on CPU 1, driver on CPU 0; 0: no pinning
#   OUT=path         results file (default loadtest/RESULTS-h3.md)
#   PORT=18453       TCP and UDP port on 127.0.0.1
#
# h2load (nghttp2 1.52 as packaged by Debian) is built without ngtcp2 and
# cannot speak HTTP/3, hence the driver of our own.
#
# Only 127.0.0.1 is used; every wait is bounded.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
OUT=${OUT:-$ROOT/loadtest/RESULTS-h3.md}
PORT=${PORT:-18453}

die() { echo "h3.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

for n in DURATION WARMUP ROUNDS PORT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"
done
((ROUNDS >= 1 && ROUNDS <= 10)) || die "ROUNDS must be 1..10"
((DURATION >= 1 && DURATION <= 300)) || die "DURATION must be 1..300 seconds"
command -v jq >/dev/null || die "jq is needed"
command -v curl >/dev/null || die "curl is needed"

TLS=$ROOT/tests/fixtures/tls
BODY=$ROOT/loadtest/bodies/imagereview-3.json
[[ -f $BODY ]] || die "missing $BODY"

# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"

log "building (release)"
build_apart h3_bench --quiet
GATE=$ROOT/target/release/imagegate
BENCH=$ROOT/target/release/examples/h3_bench

server_cpu=()
driver_cpu=()
if [[ $PIN == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
    server_cpu=(taskset -c 1)
    driver_cpu=(taskset -c 0)
fi

LOG=$(mktemp)
trap 'kill "$SERVER_PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
"${server_cpu[@]}" "$GATE" serve --listen "127.0.0.1:$PORT" --http3-listen "127.0.0.1:$PORT" \
    --tls-cert "$TLS/server.pem" --tls-key "$TLS/server.key" --log-filter warn >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf --cacert "$TLS/ca.pem" "https://localhost:$PORT/readyz" --connect-to "localhost:$PORT:127.0.0.1:$PORT" >/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$LOG" >&2; die "server exited"; }
    sleep 0.1
done
alt_svc=$(curl -s --cacert "$TLS/ca.pem" -o /dev/null -D - --connect-to "localhost:$PORT:127.0.0.1:$PORT" \
    "https://localhost:$PORT/healthz" | tr -d '\r' | awk -F': ' 'tolower($1)=="alt-svc"{print $2}')
[[ $alt_svc == "h3=\":$PORT\"; ma=86400" ]] || die "unexpected Alt-Svc: $alt_svc"

run() { # proto connections streams loss%
    "${driver_cpu[@]}" "$BENCH" --proto "$1" --addr "127.0.0.1:$PORT" --ca "$TLS/ca.pem" \
        --body "$BODY" --connections "$2" --streams "$3" --duration "$DURATION" --warmup "$WARMUP" \
        --loss "$4"
}

# Check both protocols answer 200 before measuring.
for p in h2 h3; do
    one=$("${BENCH}" --proto "$p" --addr "127.0.0.1:$PORT" --ca "$TLS/ca.pem" --body "$BODY" \
        --connections 1 --streams 1 --duration 1 --warmup 0)
    [[ $(jq -r '.errors' <<<"$one") == 0 && $(jq -r '.requests' <<<"$one") -gt 0 ]] || die "$p check failed: $one"
done

RESULTS=$(mktemp)
# name connections streams loss% protocols
SCENARIOS=("apiserver-shape 3 21 0 h2,h3" "sequential 1 1 0 h2,h3"
    "sequential-loss-5 1 1 5 h3" "apiserver-shape-loss-5 3 21 5 h3")
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
    for s in "${SCENARIOS[@]}"; do
        read -r name conns streams loss protos <<<"$s"
        for p in ${protos//,/ }; do
            log "round $round: $name $p ($conns x $streams, loss $loss%)"
            run "$p" "$conns" "$streams" "$loss" | jq -c --arg name "$name" --arg round "$round" '. + {scenario: $name, round: ($round|tonumber)}' >>"$RESULTS"
        done
    done
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)
rss_kib=$(awk '/VmRSS/{print $2}' "/proc/$SERVER_PID/status")

median() { jq -s "map(.$1) | sort | .[(length-1)/2|floor]"; }
{
    echo "# HTTP/3 vs HTTP/2 load test results"
    echo
    echo "Written by \`loadtest/h3.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ); do not edit by hand, re-run the script."
    echo
    echo "One \`imagegate serve\` process (built-in policy, release build) with its TLS listener"
    echo "(HTTP/2) and its \`--http3-listen\` listener on the same port number, driven in the same"
    echo "run by the same closed-loop driver (\`loadtest/h3_bench.rs\`): hyper + rustls for HTTP/2,"
    echo "quinn + h3 for HTTP/3, both rustls/ring, TLS 1.3, P-256 test certificate. Loopback, no loss."
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| CPU | $(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2);print $2; exit}'), $(nproc) CPUs |"
    echo "| kernel | $(uname -sr) |"
    echo "| commit | $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)') |"
    echo "| rustc | $(rustc --version) |"
    echo "| load average (1, 5, 15 min) | $LOADAVG_START at start, $LOADAVG_END at end (the machine is shared: other work competes for the 2 CPUs) |"
    echo "| pinning | $( ((${#server_cpu[@]})) && echo 'server on CPU 1, driver on CPU 0 (taskset)' || echo none) |"
    echo
    echo "## Load"
    echo
    echo "- \`POST /imagepolicy?timeout=30s\`, \`loadtest/bodies/imagereview-3.json\` ($(wc -c <"$BODY") bytes, allowed)."
    echo "- \`apiserver-shape\`: 3 connections x 21 requests in flight each (as \`loadtest/run.sh\`'s h2 shape)."
    echo "- \`sequential\`: 1 connection, 1 request in flight (per-request latency without queueing)."
    echo "- \`*-loss-5\`: HTTP/3 only, through a UDP relay inside the driver that drops 5 % of the datagrams"
    echo "  each way (fixed pseudo-random pattern). There is no HTTP/2 counterpart: dropping TCP segments"
    echo "  needs \`tc netem\` on the loopback interface, which would disturb every other program on the machine."
    echo "- $ROUNDS rounds, each running h2 then h3 per scenario; ${WARMUP} s warm-up (not recorded) + ${DURATION} s measured per run."
    echo "- Figures are the median over rounds; latency is client-side, request start to last body byte."
    echo
    echo "## Results"
    echo
    echo "| scenario | protocol | req/s | p50 ms | p90 ms | p99 ms | errors |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for s in "${SCENARIOS[@]}"; do
        read -r name _ _ _ protos <<<"$s"
        for p in ${protos//,/ }; do
            sel=$(jq -c --arg n "$name" --arg p "$p" 'select(.scenario==$n and .proto==$p)' "$RESULTS")
            printf '| %s | %s | %.0f | %.3f | %.3f | %.3f | %s |\n' "$name" "$p" \
                "$(median rps <<<"$sel")" "$(median p50_ms <<<"$sel")" "$(median p90_ms <<<"$sel")" \
                "$(median p99_ms <<<"$sel")" "$(jq -s 'map(.errors)|add' <<<"$sel")"
        done
    done
    echo
    echo "Server RSS after the runs: $((rss_kib / 1024)) MiB."
    echo
    echo "## Every run"
    echo
    echo "| round | scenario | protocol | req/s | p50 ms | p99 ms | max ms |"
    echo "| ---: | --- | --- | ---: | ---: | ---: | ---: |"
    jq -r '"| \(.round) | \(.scenario) | \(.proto) | \(.rps|floor) | \(.p50_ms) | \(.p99_ms) | \(.max_ms) |"' "$RESULTS"
} >"$OUT"
rm -f "$RESULTS"
log "wrote $OUT"
