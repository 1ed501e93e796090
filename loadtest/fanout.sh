#!/usr/bin/env bash
# Apiserver fan-out load test: several simulated apiservers, each a pool of
# keep-alive TLS connections (HTTP/2 or HTTP/1.1), send a realistic mix of
# ImageReviews and AdmissionReviews to one imagegate, first at fixed rates
# (open loop) and then at saturation (closed loop). A share of the images
# matches a `verify` rule whose signed image lives in a local Debian
# `docker-registry` (warm cache after the warm-up). Writes loadtest/FANOUT.md
# and loadtest/fanout-latency.png.
#
# Usage: loadtest/fanout.sh          (from anywhere inside the repository)
#
# Environment (all optional):
#   RATES="1000 5000 10000 15000"  offered reviews/s of the fixed-rate phases (all apiservers)
#   DURATION=25        seconds per measured phase (fixed rates and saturation)
#   WARMUP=8           seconds of unrecorded warm-up at the first rate (fills the verify cache)
#   APISERVERS=3       simulated apiservers
#   H2_APISERVERS=2    how many of them speak HTTP/2 (the rest HTTP/1.1)
#   PIN=1              1: imagegate on CPU 1, the generators on CPU 0; 0: no pinning
#   NICE=-10           niceness of server and generators (root only; 0 = unchanged)
#   WAIT_RUN_SH=1      1: wait (up to 40 min) until no loadtest/run.sh is running
#   BUILD=1            0: use the release binary already built (no cargo build)
#   KEEP_WORK=0        1: keep the raw data (oha JSON and SQLite, samples) in the temporary directory
#   OUT, PNG           outputs (default loadtest/FANOUT.md, loadtest/fanout-latency.png)
#   PORT=18543, METRICS_PORT=18544   imagegate's ports on 127.0.0.1
#
# Installs what it needs when missing: oha (cargo install), docker-registry,
# jq, openssl (Debian, needs root), matplotlib (pip). Only 127.0.0.1 is used;
# every loop and every load run is bounded; every process started here is
# stopped on exit.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RATES=${RATES:-"1000 5000 10000 15000"}
DURATION=${DURATION:-25}
WARMUP=${WARMUP:-8}
APISERVERS=${APISERVERS:-3}
H2_APISERVERS=${H2_APISERVERS:-2}
PIN=${PIN:-1}
NICE=${NICE:--10}
WAIT_RUN_SH=${WAIT_RUN_SH:-1}
BUILD=${BUILD:-1}
KEEP_WORK=${KEEP_WORK:-0}
OUT=${OUT:-$ROOT/loadtest/FANOUT.md}
PNG=${PNG:-$ROOT/loadtest/fanout-latency.png}
PORT=${PORT:-18543}
METRICS_PORT=${METRICS_PORT:-18544}

die() { echo "fanout.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

for n in DURATION WARMUP APISERVERS H2_APISERVERS PORT METRICS_PORT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"
done
for r in $RATES; do
    [[ $r =~ ^[0-9]+$ ]] && ((r >= 10 && r <= 200000)) || die "RATES: $r is not 10..200000"
done
(($(wc -w <<<"$RATES") <= 10)) || die "at most 10 RATES"
((DURATION >= 5 && DURATION <= 300)) || die "DURATION must be 5..300 seconds"
((WARMUP >= 1 && WARMUP <= 120)) || die "WARMUP must be 1..120 seconds"
((APISERVERS >= 1 && APISERVERS <= 8)) || die "APISERVERS must be 1..8"
((H2_APISERVERS <= APISERVERS)) || die "H2_APISERVERS must be at most APISERVERS"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be a whole number"
[[ $(id -u) -eq 0 ]] || NICE=0

export PATH="$HOME/.cargo/bin:$PATH"

# ---------------------------------------------------------------- tools
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
need openssl
need jq
need curl
need taskset util-linux
[[ -x /usr/bin/docker-registry ]] || apt_install docker-registry
need python3
need_oha
need_matplotlib

if ((WAIT_RUN_SH)); then
    # Never overlap (this includes the release build below) with loadtest/run.sh (another load test on the same cores).
    for ((i = 0; i < 480; i++)); do
        pgrep -f loadtest/run.sh >/dev/null || break
        ((i % 12 == 0)) && log "waiting for loadtest/run.sh to finish"
        sleep 5
    done
    ! pgrep -f loadtest/run.sh >/dev/null || die "loadtest/run.sh still running after 40 min"
fi

# ---------------------------------------------------------------- workspace
workspace fanout

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A throwaway CA and a server certificate for 127.0.0.1 / localhost (as run.sh).
log "making a throwaway CA and server certificate in $WORK/tls"
# (in a directory of their own: see loadtest/common.sh)
TLS="$WORK/tls"
make_ca "$TLS" "imagegate fanout CA"
issue_server "$TLS"

# ---------------------------------------------------------------- registry
REG_PORT=$(free_port)
REG="127.0.0.1:$REG_PORT"
mkdir -p "$WORK/registry"
cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: $REG
EOF
/usr/bin/docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
PIDS+=($!)
REG_PID=$!
for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "http://$REG/v2/" && break
    kill -0 "$REG_PID" 2>/dev/null || { cat "$WORK/registry/log" >&2; die "docker-registry exited"; }
    sleep 0.1
done
curl -sf -o /dev/null "http://$REG/v2/" || die "docker-registry not ready on $REG after 10 s"
SIGNED_DIGEST=$(python3 loadtest/fanout_registry.py "$REG") || die "pushing the signed fixture failed"
log "docker-registry on $REG holds $REG/fixtures/app:v1 ($SIGNED_DIGEST) and its cosign signature"

# ---------------------------------------------------------------- bodies and policy
python3 loadtest/fanout_bodies.py "$WORK/bodies" "$REG"
MIX="$WORK/bodies/mix.tsv"
KEY="$ROOT/tests/fixtures/verify/keys/cosign.pub"
mkdir -p "$WORK/policy"   # a directory of its own, like the certificates
cat >"$WORK/policy/policy.yaml" <<EOF
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
spec:
  mode: enforce
  registries:
    allow:
      - registry.k8s.io
      - ghcr.io/mycorp
      - docker.io/library
      - registry.example.com
      - $REG
    insecure: ["$REG"]
  tags:
    requireTagOrDigest: true
    forbid: [latest]
  exemptions:
    namespaces: [kube-system]
  verify:
    - images: ["$REG/fixtures/**"]
      keys:
        - file: $KEY
      require:
        signature: true
  verification:
    timeout: 5s
    onError: deny
    cache:
      allowTtl: 10m
      denyTtl: 30s
      tagTtl: 30s
      maxEntries: 100000
EOF

# ---------------------------------------------------------------- build and server
if ((BUILD)); then
    log "building imagegate (release)"
    cargo build --release --bin imagegate
fi
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
GATE_BIN="$TARGET_DIR/release/imagegate"

SERVER_PIN=(nice -n "$NICE")
LOADGEN_PIN=(nice -n "$NICE")
if ((PIN)); then
    SERVER_PIN+=(taskset -c 1)
    LOADGEN_PIN+=(taskset -c 0)
fi

port_free "$PORT" || die "port 127.0.0.1:$PORT is already in use"
port_free "$METRICS_PORT" || die "port 127.0.0.1:$METRICS_PORT is already in use"
"${SERVER_PIN[@]}" "$GATE_BIN" serve --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$METRICS_PORT" \
    --tls-cert "$TLS/chain.crt" --tls-key "$TLS/server.key" --policy "$WORK/policy/policy.yaml" \
    >"$WORK/imagegate.log" 2>&1 &
PIDS+=($!)
GATE_PID=$!
wait_ready "$GATE_PID" "https://127.0.0.1:$PORT/readyz" imagegate "$WORK/imagegate.log"
# With taskset, the server process itself is the pinned one (nice and taskset exec).
log "imagegate ready on 127.0.0.1:$PORT (pid $GATE_PID)"

# Sanity: every body gets the expected decision over both protocols (this
# also performs the first, cold verification of the signed image).
while IFS=$'\t' read -r kind path _ expected _ _; do
    for proto in --http1.1 --http2; do
        answer=$(curl -sS --cacert "$TLS/ca.crt" "$proto" -X POST -H 'content-type: application/json' \
            --data-binary "@$WORK/bodies/$kind.json" -w '\n%{http_code}' "https://127.0.0.1:$PORT$path")
        status=$(tail -n 1 <<<"$answer")
        body=$(head -n -1 <<<"$answer")
        [[ $status == 200 ]] || die "$kind: HTTP $status over $proto: $body"
        allowed=$(jq -r 'if .kind == "ImageReview" then .status.allowed else .response.allowed end | tostring' <<<"$body")
        want=$([[ $expected == allow ]] && echo true || echo false)
        [[ $allowed == "$want" ]] || die "$kind: allowed=$allowed, expected $expected: $body"
    done
    printf '%s\t%s\n' "$kind" "$body" >>"$WORK/sample-answers.tsv"
done <"$MIX"
log "every body kind answered as expected over HTTP/1.1 and HTTP/2"

# ---------------------------------------------------------------- sampler
# Once a second: time, server CPU ticks, VmRSS kB, per-CPU busy/total jiffies.
CLK_TCK=$(getconf CLK_TCK)
sampler() {
    local i t ticks rss c0 c1
    for ((i = 0; i < 7200; i++)); do
        [[ -r /proc/$GATE_PID/stat ]] || return 0
        t=$(date +%s.%N)
        ticks=$(awk '{print $14 + $15}' "/proc/$GATE_PID/stat")
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$GATE_PID/status")
        c0=$(awk '$1 == "cpu0" {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
        c1=$(awk '$1 == "cpu1" {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
        printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$ticks" "$rss" "${c0// /$'\t'}" "${c1// /$'\t'}"
        sleep 1
    done
}
sampler >"$WORK/samples.tsv" &
PIDS+=($!)

metrics() { curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$1" || : >"$1"; }

# ---------------------------------------------------------------- load
# One phase: every apiserver runs one oha per body kind, all at once.
# rate 0 = saturation (closed loop: each connection or stream sends its next
# review when the previous answer arrives).
# In flight per apiserver and kind: max(4, 0.6 × weight): HTTP/1.1 connections,
# or concurrent streams on one HTTP/2 connection.
PHASES="$WORK/phases.tsv" # name rate secs start end server_ticks
: >"$PHASES"
run_phase() { # name rate secs record(0|1)
    local name=$1 rate=$2 secs=$3 record=$4
    local dir="$WORK/phase/$name" a kind path weight conc q shape url
    local opids=()
    mkdir -p "$dir"
    kill -0 "$GATE_PID" 2>/dev/null || die "imagegate is no longer running"
    metrics "$dir/metrics.before"
    if pgrep -f loadtest/run.sh >/dev/null; then
        log "warning: loadtest/run.sh is running during phase $name"
        echo "$name" >>"$WORK/overlap"
    fi
    local t0 t1 k0 k1
    k0=$(awk '{print $14 + $15}' "/proc/$GATE_PID/stat")
    t0=$(date +%s.%N)
    for ((a = 1; a <= APISERVERS; a++)); do
        while IFS=$'\t' read -r kind path weight _ _ _; do
            conc=$(((weight * 6 + 9) / 10))
            ((conc < 4)) && conc=4
            if ((a <= H2_APISERVERS)); then
                shape=(--http2 -c 1 -p "$conc")
            else
                shape=(--http-version 1.1 -c "$conc")
            fi
            q=()
            if ((rate > 0)); then
                q=(-q "$(awk -v r="$rate" -v w="$weight" -v n="$APISERVERS" 'BEGIN {printf "%.3f", r * w / 100 / n}')" --latency-correction)
            fi
            url="https://127.0.0.1:$PORT$path"
            timeout $((secs + 120)) "${LOADGEN_PIN[@]}" oha --no-tui -z "${secs}s" -w "${q[@]}" "${shape[@]}" \
                --worker-threads 1 -m POST -T application/json -H 'accept: application/json, */*' \
                -D "$WORK/bodies/$kind.json" --cacert "$TLS/ca.crt" --output-format json \
                -o "$dir/as$a-$kind.json" --db-url "$dir/as$a-$kind.db" "$url" \
                >"$dir/as$a-$kind.out" 2>"$dir/as$a-$kind.err" &
            opids+=($!)
            PIDS+=($!)
        done <"$MIX"
    done
    local pid failed=0
    for pid in "${opids[@]}"; do
        wait "$pid" || failed=$((failed + 1))
    done
    # They have exited: forget their ids so that cleanup never signals a reused id.
    local keep=() p2
    for p2 in "${PIDS[@]}"; do
        [[ " ${opids[*]} " == *" $p2 "* ]] || keep+=("$p2")
    done
    PIDS=("${keep[@]}")
    t1=$(date +%s.%N)
    k1=$(awk '{print $14 + $15}' "/proc/$GATE_PID/stat")
    metrics "$dir/metrics.after"
    if pgrep -f loadtest/run.sh >/dev/null; then echo "$name" >>"$WORK/overlap"; fi
    ((failed == 0)) || die "$failed oha processes failed in phase $name: $(cat "$dir"/*.err | head -n 5)"
    if ((record)); then printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rate" "$secs" "$t0" "$t1" "$((k1 - k0))" >>"$PHASES"; fi
    log "phase $name done ($(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s)"
}

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
first_rate=${RATES%% *}
log "warm-up: $first_rate reviews/s for $WARMUP s (TLS sessions, verify cache)"
run_phase warmup "$first_rate" "$WARMUP" 0
for r in $RATES; do
    log "fixed rate: $r reviews/s for $DURATION s"
    run_phase "rate-$r" "$r" "$DURATION" 1
done
log "saturation: closed loop for $DURATION s"
run_phase saturation 0 "$DURATION" 1
sleep 2
kill -0 "$GATE_PID" 2>/dev/null || die "imagegate died during the load"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
awk '/^VmHWM/ {print $2}' "/proc/$GATE_PID/status" >"$WORK/vmhwm"

# ---------------------------------------------------------------- report
GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || GIT_COMMIT="$GIT_COMMIT (with uncommitted changes)"
jq -n --arg started "$STARTED" --arg commit "$GIT_COMMIT" \
    --arg cpu "$(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')" \
    --arg nproc "$(nproc)" --arg kernel "$(uname -sr)" \
    --arg mem "$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)" \
    --arg load_before "$LOAD_BEFORE" --arg load_after "$LOAD_AFTER" \
    --arg rustc "$(rustc -V)" --arg oha "$(oha --version)" \
    --arg registry "$(/usr/bin/docker-registry --version 2>&1 | head -n 1)" \
    --arg python "$(python3 -c 'import sys, matplotlib; print(sys.version.split()[0], "matplotlib", matplotlib.__version__)')" \
    --arg reg "$REG" --arg digest "$SIGNED_DIGEST" --arg apiservers "$APISERVERS" \
    --arg h2 "$H2_APISERVERS" --arg duration "$DURATION" --arg warmup "$WARMUP" \
    --arg pin "$PIN" --arg nice "$NICE" --arg clk "$CLK_TCK" --arg rates "$RATES" \
    --arg log_lines "$(wc -l <"$WORK/imagegate.log")" \
    '$ARGS.named' >"$WORK/meta.json"
cp "$WORK/policy/policy.yaml" "$WORK/policy.used.yaml"
python3 loadtest/fanout_report.py "$WORK" "$OUT" "$PNG"
log "wrote $OUT and $PNG"
