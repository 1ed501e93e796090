#!/usr/bin/env bash
# Load test: imagegate against a bare hyper + rustls server (the limit), same
# run, same load, over TLS, HTTP/1.1 and HTTP/2. Writes loadtest/RESULTS.md.
#
# Usage: loadtest/run.sh            (from anywhere inside the repository)
#
# Environment (all optional):
#   DURATION=12        seconds per measured run
#   WARMUP=3           seconds of unrecorded warm-up per server and protocol
#   ROUNDS=2           measured rounds per server and protocol (1..10)
#   APISERVERS=3       simulated apiservers
#   CONNS=21           HTTP/1.1 keep-alive connections per apiserver
#   STREAMS=21         HTTP/2 concurrent streams per apiserver (one connection each)
#   PIN=1              1: servers on CPU 1, load generator on CPU 0; 0: no pinning
#   NICE=-10           niceness of the servers and the generator (root only; 0 = unchanged),
#                      so that other work on a shared machine disturbs the comparison less
#   ONLY_BARE=1        measure the bare server alone (no imagegate build or run)
#   PGO=0              0: plain `cargo build --release`;
#                      1: both servers built by loadtest/pgo.sh from the profile kept in
#                      the repository (loadtest/pgo/imagegate.profdata, trained on both),
#                      as the Containerfile builds imagegate; results in
#                      loadtest/RESULTS-pgo.md
#   SCENARIOS="h1-wrk h1-capped h1-pair h2-h2load h2-oha h1-rate"   the scenarios run (a subset for a quick look)
#   H1_RATE=45000      requests/s offered by the fixed-rate HTTP/1.1 scenario (h1-rate)
#   CAP=65             h1-capped: each server's CPU capped at CAP% of its core (cgroup CPU
#                      bandwidth, root only; the scenario is skipped without a writable
#                      cgroup cpu controller)
#   PAIR_CAP=75        h1-pair: the servers, loaded at once, get PAIR_CAP% of their core
#                      together, in equal shares (a cgroup each)
#   OUT=path           results file (default loadtest/RESULTS.md; with PGO=1 loadtest/RESULTS-pgo.md)
#   PORT_GATE, PORT_BARE, PORT_BARE_INLINE   ports on 127.0.0.1 (default 18443, 18444, 18445)
#
# Installs what it needs when missing: wrk (Debian's wrk; HTTP/1.1, far
# lighter than oha, which topped out near 90 000 requests/s on one core and
# was the bottleneck for both servers), oha (cargo install; HTTP/2 cross-check),
# h2load (Debian's nghttp2-client), jq, openssl. Installing Debian packages
# needs root.
#
# Only 127.0.0.1 is used. Every loop and every load run is bounded.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-12}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-2}
APISERVERS=${APISERVERS:-3}
CONNS=${CONNS:-21}
STREAMS=${STREAMS:-21}
PIN=${PIN:-1}
NICE=${NICE:--10}
ONLY_BARE=${ONLY_BARE:-0}
PGO=${PGO:-0}
if [[ ${PGO:-0} == 1 ]]; then
    OUT=${OUT:-$ROOT/loadtest/RESULTS-pgo.md}
else
    OUT=${OUT:-$ROOT/loadtest/RESULTS.md}
fi
PORT_GATE=${PORT_GATE:-18443}
PORT_BARE=${PORT_BARE:-18444}
PORT_BARE_INLINE=${PORT_BARE_INLINE:-18445}
PATH_QUERY='/imagepolicy?timeout=30s'
H1_RATE=${H1_RATE:-45000}
CAP=${CAP:-65}
PAIR_CAP=${PAIR_CAP:-75}

# Targets: throughput and p99 against the bare server, pinned.
TARGET_RPS_RATIO=0.90
TARGET_P99_RATIO=1.2

die() { echo "run.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

for n in DURATION WARMUP ROUNDS APISERVERS CONNS STREAMS PORT_GATE PORT_BARE PORT_BARE_INLINE H1_RATE CAP PAIR_CAP; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"
done
((ROUNDS >= 1 && ROUNDS <= 10)) || die "ROUNDS must be 1..10"
((DURATION >= 1 && DURATION <= 300)) || die "DURATION must be 1..300 seconds"
((APISERVERS >= 1 && CONNS >= 1 && STREAMS >= 1)) || die "APISERVERS, CONNS, STREAMS must be positive"
((CAP >= 10 && CAP <= 95)) || die "CAP must be 10..95 (% of one core)"
((PAIR_CAP >= 10 && PAIR_CAP <= 95)) || die "PAIR_CAP must be 10..95 (% of one core)"
[[ $NICE =~ ^-?[0-9]+$ ]] || die "NICE must be a whole number"
[[ $PGO =~ ^[01]$ ]] || die "PGO must be 0 or 1"
[[ $(id -u) -eq 0 ]] || NICE=0

export PATH="$HOME/.cargo/bin:$PATH"

# ---------------------------------------------------------------- tools
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
need openssl
need jq
SCENARIOS=(${SCENARIOS:-h1-wrk h1-capped h1-pair h2-h2load h2-oha h1-rate})
for scenario in "${SCENARIOS[@]}"; do
    [[ $scenario =~ ^(h1-wrk|h1-capped|h1-pair|h2-h2load|h2-oha|h1-rate)$ ]] || die "unknown scenario $scenario"
done
[[ " ${SCENARIOS[*]} " == *" h2-h2load "* ]] && need h2load nghttp2-client
[[ " ${SCENARIOS[*]} " =~ \ h1-(wrk|capped|pair)\  ]] && need wrk
need taskset util-linux
[[ " ${SCENARIOS[*]} " == *" h2-oha "* || " ${SCENARIOS[*]} " == *" h1-rate "* ]] && need_oha

# ---------------------------------------------------------------- workspace
workspace loadtest

# A throwaway CA and a server certificate for 127.0.0.1 / localhost.
log "making a throwaway CA and server certificate in $WORK/tls"
# (in a directory of their own: see loadtest/common.sh)
TLS="$WORK/tls"
make_ca "$TLS" "imagegate loadtest CA"
issue_server "$TLS"

# The request: what an apiserver sends for a 3-container pod that the built-in
# default policy allows (tags, no `latest`).
BODY="$ROOT/loadtest/bodies/imagereview-3.json"   # also used by benches/pipeline.rs
[[ -s $BODY ]] || die "missing $BODY"

# ---------------------------------------------------------------- build
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
if ((PGO)); then
    # Both servers from one profile-guided build (loadtest/pgo.sh), with the
    # profile the Containerfile builds imagegate with: the stack they share
    # is optimized alike, and imagegate is the binary that ships.
    log "building imagegate and bare_server with profile-guided optimization (loadtest/pgo.sh)"
    PGO_BIN=$("$ROOT/loadtest/pgo.sh" | tail -1)
    [[ -x $PGO_BIN/imagegate && -x $PGO_BIN/bare_server ]] || die "loadtest/pgo.sh left no binaries"
    BARE_BIN="$PGO_BIN/bare_server"
    GATE_BIN="$PGO_BIN/imagegate"
    PGO_PROFILE="loadtest/pgo/imagegate.profdata, sha256 $(sha256sum "$ROOT/loadtest/pgo/imagegate.profdata" | cut -c1-16)"
else
    if ((ONLY_BARE)); then
        log "building bare_server (release); ONLY_BARE=1 skips imagegate"
        cargo build --release --example bare_server
    else
        log "building imagegate and bare_server (release)"
        build_apart bare_server
    fi
    BARE_BIN="$TARGET_DIR/release/examples/bare_server"
    GATE_BIN="$TARGET_DIR/release/imagegate"
fi

# ---------------------------------------------------------------- CPU caps (h1-capped, h1-pair)
# In h1-wrk one wrk thread on its own core is the limit: the bare server then
# leaves part of its core idle and its queue waits inside wrk, whose latency
# does not count that wait. h1-capped caps the server under load at CAP% of
# its core (cgroup CPU bandwidth, every 2 ms), below what wrk can load, so
# that every server is its own limit, every queue is counted alike, and wrk
# has room (its CPU in the table shows it).
#
# Runs one after the other still meet different moments of a shared
# machine: other work takes more or less of the cores, and single rounds
# move by ±10%. h1-pair loads every server at once, each by its own wrk
# (all on the load generator's core), each server capped at an equal share
# of PAIR_CAP% of their core: each is its own limit, and whatever disturbs
# one round disturbs every server in it alike. (One group shared by all
# the servers left the core part idle, with waits of milliseconds.) The
# groups change hands every round, so that over as many rounds as there are
# servers each server runs once in each group: two equal groups on one core
# are not served alike (the phase of each group's bandwidth period against
# the other's favoured the server in one of them by 4-10% in a run, the same
# binary in both), and a fixed group would carry that into the ratio. Over
# HTTP/1.1 `bare` and `bare-inline` are the same server, so their ratio
# there shows how far the method itself is from 1.
CAP_PERIOD_US=2000
# h1-pair's shares are smaller; the kernel's least quota is 1 ms.
PAIR_PERIOD_US=4000
CG_PARENT="" CG_KIND="" CAP_SKIPPED=0
declare -A CAP_GROUP=()
cap_on() { echo "$2" >"${CAP_GROUP[$1]}/cgroup.procs"; } # group pid
cap_off() { echo "$1" >"$CG_PARENT/cgroup.procs"; }
cap_cleanup() {
    local group p
    for group in "${CAP_GROUP[@]}"; do
        [[ -d $group ]] || continue
        while read -r p; do
            echo "$p" >"$CG_PARENT/cgroup.procs" 2>/dev/null || true
        done <"$group/cgroup.procs"
        rmdir "$group" 2>/dev/null || true
    done
}
trap 'cap_cleanup; _workspace_cleanup' EXIT
if [[ " ${SCENARIOS[*]} " =~ \ h1-(capped|pair)\  ]]; then
    if [[ $(id -u) -eq 0 && -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
        CG_PARENT=/sys/fs/cgroup/cpu CG_KIND=v1
    elif [[ $(id -u) -eq 0 && -w /sys/fs/cgroup/cgroup.subtree_control ]] \
        && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
        CG_PARENT=/sys/fs/cgroup CG_KIND=v2
    fi
    if [[ -z $CG_KIND ]]; then
        log "h1-capped and h1-pair skipped: no writable cgroup cpu controller (root needed)"
        kept=()
        for scenario in "${SCENARIOS[@]}"; do
            [[ $scenario == h1-capped || $scenario == h1-pair ]] || kept+=("$scenario")
        done
        SCENARIOS=("${kept[@]}")
        CAP_SKIPPED=1
    else
        [[ $CG_KIND == v2 ]] && { grep -qw cpu "$CG_PARENT/cgroup.subtree_control" || echo +cpu >"$CG_PARENT/cgroup.subtree_control"; }
        pair_servers=$((ONLY_BARE ? 2 : 3))
        caps=(h1-capped:$CAP)
        for ((g = 0; g < pair_servers; g++)); do caps+=("h1-pair-$g:$((PAIR_CAP / pair_servers))"); done
        for capped in "${caps[@]}"; do
            name=${capped%%:*} percent=${capped#*:}
            group="$CG_PARENT/imagegate-loadtest-$$-$name"
            mkdir -p "$group"
            CAP_GROUP[$name]=$group
            period=$CAP_PERIOD_US
            [[ $name == h1-pair-* ]] && period=$PAIR_PERIOD_US
            quota=$((period * percent / 100))
            ((quota >= 1000)) || die "$name: a quota of $quota µs is under the kernel's least (1000 µs)"
            if [[ $CG_KIND == v1 ]]; then
                echo "$period" >"$group/cpu.cfs_period_us"
                echo "$quota" >"$group/cpu.cfs_quota_us"
            else
                echo "$quota $period" >"$group/cpu.max"
            fi
        done
    fi
fi

# ---------------------------------------------------------------- servers
# Prefixes for the servers and the load generator: niceness, then CPU pinning.
SERVER_PIN=(nice -n "$NICE")
LOADGEN_PIN=(nice -n "$NICE")
if ((PIN)); then
    SERVER_CPU=1
    LOADGEN_CPU=0
    SERVER_PIN+=(taskset -c "$SERVER_CPU")
    LOADGEN_PIN+=(taskset -c "$LOADGEN_CPU")
fi


declare -A SERVER_PID SERVER_PORT
start_server() { # name port command...
    local name=$1 port=$2
    shift 2
    port_free "$port" || die "port 127.0.0.1:$port is already in use"
    "${SERVER_PIN[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    SERVER_PID[$name]=$pid
    SERVER_PORT[$name]=$port
    wait_ready "$pid" "https://127.0.0.1:$port/healthz" "$name" "$WORK/$name.log"
    log "$name ready on 127.0.0.1:$port (pid $pid)"
}

SERVERS=(bare bare-inline)
start_server bare "$PORT_BARE" "$BARE_BIN" --listen "127.0.0.1:$PORT_BARE" \
    --tls-cert "$TLS/chain.crt" --tls-key "$TLS/server.key"
# The same bare server with imagegate's HTTP/2 stream scheduling
# (--inline-streams): the limit of imagegate's own stack. The targets are
# set against the plain one; this one shows what imagegate's work costs.
start_server bare-inline "$PORT_BARE_INLINE" "$BARE_BIN" --listen "127.0.0.1:$PORT_BARE_INLINE" \
    --tls-cert "$TLS/chain.crt" --tls-key "$TLS/server.key" --inline-streams
if ((ONLY_BARE == 0)); then
    SERVERS+=(imagegate)
    start_server imagegate "$PORT_GATE" "$GATE_BIN" serve --listen "127.0.0.1:$PORT_GATE" \
        --tls-cert "$TLS/chain.crt" --tls-key "$TLS/server.key"
fi


# Sanity: each server answers the request with an allowed review over both
# protocols, so the load measures the allow path and not an error path.
declare -A SAMPLE_ANSWER
for s in "${SERVERS[@]}"; do
    for proto in --http1.1 --http2; do
        answer=$(curl -sS --cacert "$TLS/ca.crt" "$proto" -X POST \
            -H 'content-type: application/json' --data-binary "@$BODY" \
            -w '\n%{http_code} %{http_version}' "https://127.0.0.1:${SERVER_PORT[$s]}$PATH_QUERY")
        status=$(tail -n 1 <<<"$answer")
        body=$(head -n -1 <<<"$answer")
        [[ $status == "200 "* ]] || die "$s answered '$status' over $proto: $body"
        [[ $(jq -r .status.allowed <<<"$body") == true ]] || die "$s did not allow the review: $body"
        if [[ $proto == --http2 && $status != "200 2" ]]; then
            die "$s did not negotiate h2: $status"
        fi
        SAMPLE_ANSWER[$s]=$body
    done
done

# ---------------------------------------------------------------- load
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
H1_CONNS=$((APISERVERS * CONNS))
LOADGEN_THREADS=$(( PIN ? 1 : $(nproc) ))
RAW="$WORK/raw.tsv"   # scenario tool server round rps p50_ms p99_ms max_ms ok errors server_cpu loadgen_cpu
: >"$RAW"
TIMEFORMAT='%3R %3U %3S'

# The h1-pair group of server $1 in round $2 (the warm-up is round 0): the
# groups rotate among the servers from round to round.
pair_group() {
    local i
    for i in "${!SERVERS[@]}"; do
        if [[ ${SERVERS[$i]} == "$1" ]]; then
            [[ $2 == warmup ]] && { echo "$i"; return; }
            echo $(((i + $2) % ${#SERVERS[@]}))
            return
        fi
    done
    die "no server $1"
}

# One measured (or warm-up) run. $1 scenario, $2 server, $3 round ("warmup" is not recorded), $4 seconds.
load_run() {
    local scenario=$1 server=$2 round=$3 secs=$4
    local url="https://127.0.0.1:${SERVER_PORT[$server]}$PATH_QUERY"
    local pid=${SERVER_PID[$server]}
    local tag="$scenario-$server-$round"
    local out="$WORK/$tag.out" timing="$WORK/$tag.time"
    local before after
    kill -0 "$pid" 2>/dev/null || die "$server is no longer running"
    [[ $scenario == h1-capped ]] && cap_on h1-capped "$pid"
    [[ $scenario == h1-pair ]] && cap_on "h1-pair-$(pair_group "$server" "$round")" "$pid"
    before=$(cpu_ticks "$pid")
    case $scenario in
        h1-wrk | h1-capped | h1-pair)
            # wrk reports through the Lua `done` hook: one WRK line.
            { time BODY="$BODY" timeout $((secs + 60)) "${LOADGEN_PIN[@]}" wrk -t "$LOADGEN_THREADS" \
                -c "$H1_CONNS" -d "${secs}s" --latency -s "$WRK_LUA" "$url" \
                >"$out" 2>"$WORK/$tag.err"; } 2>"$timing" || die "wrk failed ($tag): $(cat "$WORK/$tag.err")"
            ;;
        h2-oha)
            local shape=(--http2 -c "$APISERVERS" -p "$STREAMS")
            { time timeout $((secs + 60)) "${LOADGEN_PIN[@]}" oha --no-tui -z "${secs}s" -w \
                "${shape[@]}" --worker-threads "$LOADGEN_THREADS" \
                -m POST -T application/json -H 'accept: application/json, */*' -D "$BODY" \
                --cacert "$TLS/ca.crt" --output-format json -o "$out" "$url" \
                2>"$WORK/$tag.err"; } 2>"$timing" || die "oha failed ($tag): $(cat "$WORK/$tag.err")"
            ;;
        h1-rate)
            # Open loop at a fixed rate. Latency from when each request is
            # sent: with oha's --latency-correction its own scheduling
            # bursts (p99 of 15-25 ms at half a core) would hide the servers.
            { time timeout $((secs + 60)) "${LOADGEN_PIN[@]}" oha --no-tui -z "${secs}s" -w \
                -c "$H1_CONNS" -q "$H1_RATE" --worker-threads "$LOADGEN_THREADS" \
                -m POST -T application/json -H 'accept: application/json, */*' -D "$BODY" \
                --cacert "$TLS/ca.crt" --output-format json -o "$out" "$url" \
                2>"$WORK/$tag.err"; } 2>"$timing" || die "oha failed ($tag): $(cat "$WORK/$tag.err")"
            ;;
        h2-h2load)
            { time timeout $((secs + 60)) "${LOADGEN_PIN[@]}" h2load -D "$secs" \
                -c "$APISERVERS" -m "$STREAMS" -t "$LOADGEN_THREADS" -d "$BODY" \
                -H 'content-type: application/json' -H 'accept: application/json, */*' \
                --log-file "$out.log" "$url" >"$out" 2>"$WORK/$tag.err"; } 2>"$timing" \
                || die "h2load failed ($tag): $(cat "$WORK/$tag.err")"
            ;;
        *) die "unknown scenario $scenario" ;;
    esac
    after=$(cpu_ticks "$pid")
    [[ $scenario == h1-capped || $scenario == h1-pair ]] && cap_off "$pid"
    [[ $round == warmup ]] && return 0

    local rps p50 p99 max ok errors wall
    if [[ $scenario =~ ^h1-(wrk|capped|pair)$ ]]; then
        grep -q '^WRK ' "$out" || die "no wrk summary ($tag): $(cat "$out" "$WORK/$tag.err")"
        # WRK requests duration_us p50_ms p99_ms max_ms errors non2xx
        local requests micros non2xx
        read -r requests micros p50 p99 max errors non2xx < <(awk '/^WRK / {print $2, $3, $4, $5, $6, $7, $8}' "$out")
        errors=$((errors + non2xx))
        ok=$((requests - non2xx))
        wall=$(awk -v u="$micros" 'BEGIN {printf "%.3f", u / 1000000}')
        rps=$(awk -v n="$ok" -v t="$wall" 'BEGIN {printf "%.1f", n / t}')
    elif [[ $scenario == h2-h2load ]]; then
        grep -q '^requests:' "$out" || die "no h2load summary ($tag): $(cat "$out" "$WORK/$tag.err")"
        # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
        local failed errored timeouts non2xx
        read -r failed errored timeouts < <(awk '/^requests:/ {print $10, $12, $14}' "$out")
        non2xx=$(awk '/^status codes:/ {print $5 + $7 + $9}' "$out")
        ok=$(awk -F'\t' '$2 == 200' "$out.log" | wc -l)
        errors=$((failed + errored + timeouts + non2xx))
        wall=$(awk '/^finished in/ {sub(/s,$/, "", $3); print $3}' "$out")
        rps=$(awk -v n="$ok" -v t="$wall" 'BEGIN {printf "%.1f", n / t}')
        read -r p50 p99 max < <(awk -F'\t' '$2 == 200 {print $3}' "$out.log" | sort -n | awk '
            {v[NR] = $1}
            END {
                if (NR == 0) {print "nan nan nan"; exit}
                i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
                i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
                printf "%.3f %.3f %.3f\n", v[i50] / 1000, v[i99] / 1000, v[NR] / 1000
            }')
    else
        jq -e .summary "$out" >/dev/null || die "no oha summary ($tag)"
        ok=$(jq '[.statusCodeDistribution | to_entries[] | select(.key | startswith("2")) | .value] | add // 0' "$out")
        errors=$(jq '([.errorDistribution[]] | add // 0) + ([.statusCodeDistribution | to_entries[] | select(.key | startswith("2") | not) | .value] | add // 0)' "$out")
        wall=$(jq .summary.total "$out")
        rps=$(awk -v n="$ok" -v t="$wall" 'BEGIN {printf "%.1f", n / t}')
        read -r p50 p99 max < <(jq -r '[.latencyPercentiles.p50, .latencyPercentiles.p99, .summary.slowest] | map(if . == null then "nan" else (. * 1000000 | round) / 1000 end) | @tsv' "$out")
    fi
    local server_cpu loadgen_cpu
    server_cpu=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v t="$wall" 'BEGIN {printf "%.0f", 100 * d / hz / t}')
    loadgen_cpu=$(awk -v t="$wall" '{printf "%.0f", 100 * ($2 + $3) / t}' "$timing")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$server" "$round" \
        "$rps" "$p50" "$p99" "$max" "$ok" "$errors" "$server_cpu" "$loadgen_cpu" >>"$RAW"
    log "$(printf '%-10s %-9s round %s: %8s req/s  p50 %7s ms  p99 %7s ms  errors %s  cpu server %s%% loadgen %s%%' \
        "$scenario" "$server" "$round" "$rps" "$p50" "$p99" "$errors" "$server_cpu" "$loadgen_cpu")"
}

WRK_LUA="$WORK/post.lua"
wrk_post_lua "$WRK_LUA"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SOAK_SECTION=""
if [[ -f $OUT ]]; then
    SOAK_SECTION=$(awk '/^<!-- soak:begin -->$/ {on = 1} on {print} /^<!-- soak:end -->$/ {on = 0}' "$OUT")
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# One round of h1-pair: every server under its own wrk at the same time.
pair_round() { # round seconds
    local s pids=()
    for s in "${SERVERS[@]}"; do
        load_run h1-pair "$s" "$1" "$2" &
        pids+=($!)
    done
    for s in "${pids[@]}"; do
        wait "$s" || die "h1-pair round $1 failed"
    done
}
for scenario in "${SCENARIOS[@]}"; do
    if [[ $scenario == h1-pair ]]; then
        pair_round warmup "$WARMUP"
        for ((round = 1; round <= ROUNDS; round++)); do
            pair_round "$round" "$DURATION"
        done
        continue
    fi
    for s in "${SERVERS[@]}"; do
        load_run "$scenario" "$s" warmup "$WARMUP"
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        for s in "${SERVERS[@]}"; do
            load_run "$scenario" "$s" "$round" "$DURATION"
        done
    done
done

# ---------------------------------------------------------------- report
for s in "${SERVERS[@]}"; do
    kill -0 "${SERVER_PID[$s]}" 2>/dev/null || die "$s died during the load"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A HWM
for s in "${SERVERS[@]}"; do
    HWM[$s]=$(awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/${SERVER_PID[$s]}/status")
done

# Means per scenario and server: rps p50 p99 errors cpu_us_per_request.
mean_of() { # scenario server -> "rps p50 p99 errors server_us_cpu_per_request"
    awk -F'\t' -v sc="$1" -v sv="$2" '$1 == sc && $2 == sv {
            n++; rps += $4; p50 += $5; p99 += $6; err += $9
            if ($4 > 0) us += $10 / 100 * 1000000 / $4
        }
        END {if (n) printf "%.1f %.3f %.3f %d %.1f\n", rps / n, p50 / n, p99 / n, err, us / n; else print "nan nan nan 0 nan"}' "$RAW"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 > 0) printf "%.3f", a / b; else print "nan"}'; }
verdict() { # value op target
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v == "nan") {print "n/a"; exit}
        ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 <= t + 0)
        print ok ? "PASS" : "FAIL"
    }'
}

GIT_COMMIT=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || GIT_COMMIT="$GIT_COMMIT (with uncommitted changes)"
CPU_MODEL=$(lscpu | awk -F: '/^Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
{
    echo "# Load test results"
    echo
    echo "Written by \`loadtest/run.sh\` on $STARTED; do not edit by hand, re-run the script."
    echo
    echo "imagegate (\`imagegate serve\`, built-in default policy) against \`loadtest/bare_server.rs\`,"
    echo "a hyper + rustls server on the same stack that reads the body and answers a fixed"
    echo "allowed ImageReview, run two ways:"
    echo
    echo "- \`bare\`: hyper's defaults, each HTTP/2 stream a task of its own. The targets are set against it."
    echo "- \`bare-inline\`: the same with \`--inline-streams\`, each connection running its HTTP/2 streams"
    echo "  in its own task as imagegate does (\`src/server/streams.rs\`): the limit of imagegate's own"
    echo "  stack. The ratio to it is the cost of everything imagegate adds (routing, decoding, policy,"
    echo "  encoding, metrics, logging). Over HTTP/1.1 the two are the same server."
    echo
    echo "## Machine and tools"
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| CPU | $CPU_MODEL, $(nproc) CPUs ($(lscpu | awk -F: '/^Hypervisor vendor/ {gsub(/^ +/, "", $2); print $2 " guest"}')) |"
    echo "| kernel | $(uname -sr) |"
    echo "| memory | $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
    echo "| commit | $GIT_COMMIT |"
    echo "| load average (1, 5, 15 min) | before the load $LOAD_BEFORE, after it $LOAD_AFTER (other work on the machine raises it) |"
    echo "| rustc | $(rustc -V) |"
    # `wrk -v` prints its version and exits 1.
    echo "| wrk | $(if command -v wrk >/dev/null; then { wrk -v 2>&1 || true; } | head -n 1; else echo "not used"; fi) |"
    echo "| oha | $(oha --version 2>/dev/null || echo "not used") |"
    echo "| h2load | $(h2load --version 2>/dev/null | head -n 1 || echo "not used") |"
    if ((PGO)); then
        echo "| build | both servers by \`loadtest/pgo.sh\`: profile.release (fat LTO, 1 codegen unit) with \`-Cprofile-use\` of the kept profile, trained on both (${PGO_PROFILE:-?}), as the Containerfile builds imagegate |"
    else
        echo "| build | \`cargo build --release --locked --bin imagegate\` on its own, as the Containerfile with PGO=0 (profile.release: fat LTO, 1 codegen unit) |"
    fi
    echo
    echo "## Load"
    echo
    echo "- Every request: \`POST $PATH_QUERY\` over TLS 1.3 (rustls/ring, throwaway P-256 cert),"
    echo "  \`content-type: application/json\`, a $(wc -c <"$BODY")-byte ImageReview of 3 tagged"
    echo "  containers that the default policy allows (checked before the load for both"
    echo "  servers over both protocols; imagegate answered \`${SAMPLE_ANSWER[imagegate]:-skipped}\`)."
    echo "- $APISERVERS simulated apiservers, closed loop (each client sends its next request when"
    echo "  the previous answer arrives), keep-alive, no rate limit:"
    echo "  - \`h1-wrk\`: HTTP/1.1, $APISERVERS × $CONNS = $H1_CONNS connections, one request in flight on each (wrk)."
    if ((CAP_SKIPPED)); then
        echo "  - \`h1-capped\`, \`h1-pair\`: skipped (no writable cgroup cpu controller; it needs root)."
    elif [[ " ${SCENARIOS[*]} " == *" h1-capped "* ]]; then
        echo "  - \`h1-capped\`: the same as \`h1-wrk\` with the server under load capped at $CAP% of its"
        echo "    core (cgroup $CG_KIND CPU bandwidth, $((CAP_PERIOD_US * CAP / 100)) µs in every $CAP_PERIOD_US µs), below what"
        echo "    wrk can load: every server is its own limit and wrk has room (its CPU below 100%),"
        echo "    so both queues form in the servers and wrk's latency counts them alike. Its"
        echo "    throughput ratio is the ratio of capacities; its latencies include the waits of a"
        echo "    throttled period (up to $((CAP_PERIOD_US - CAP_PERIOD_US * CAP / 100)) µs) for both servers."
    fi
    if ((CAP_SKIPPED == 0)) && [[ " ${SCENARIOS[*]} " == *" h1-pair "* ]]; then
        echo "  - \`h1-pair\`: every server (${SERVERS[*]}) loaded at the same time, each by its own wrk"
        echo "    with the \`h1-wrk\` shape, the wrks sharing the load generator's core and each server"
        echo "    capped at $((PAIR_CAP / ${#SERVERS[@]}))% of theirs (a cgroup $CG_KIND group each: $((PAIR_PERIOD_US * (PAIR_CAP / ${#SERVERS[@]}) / 100)) µs in every $PAIR_PERIOD_US µs)."
        echo "    The groups change hands every round (round r puts server i in group (i + r) mod ${#SERVERS[@]}),"
        echo "    so that over ${#SERVERS[@]} rounds every server runs once in every group: equal groups on one"
        echo "    core are not served alike, by a few percent, and a fixed group would carry that into"
        echo "    the ratio$( ((ROUNDS % ${#SERVERS[@]})) && echo " (this run's $ROUNDS rounds are not a multiple of ${#SERVERS[@]}: the balance is not exact)")."
        echo "    Every server is its own"
        echo "    limit and every round meets the machine's other work alike for all of them, so"
        echo "    the throughput ratio is the ratio of capacities with the run-to-run noise of the"
        echo "    other scenarios taken out; \`bare\` against \`bare-inline\` (the same server over"
        echo "    HTTP/1.1) shows how far the method is from 1. Latencies include the waits of"
        echo "    throttled periods and of the other servers' turns on the core."
    fi
    echo "  - \`h2-h2load\`: HTTP/2, $APISERVERS connections × $STREAMS concurrent streams = $((APISERVERS * STREAMS)) in flight (h2load), as Go's"
    echo "    transport multiplexes an apiserver's requests over one connection."
    echo "  - \`h2-oha\`: the same HTTP/2 shape driven by oha, as a cross-check of the other tool."
    echo "- And one fixed-rate run: \`h1-rate\`: HTTP/1.1 over $H1_CONNS connections at $H1_RATE requests/s"
    echo "  (oha \`-q\`), a load that leaves neither server nor generator saturated. Latency is"
    echo "  counted from when each request is sent (no latency correction: oha's own scheduling"
    echo "  bursts gave a p99 of 15-25 ms at half a core), so a request the generator holds back"
    echo "  because all $H1_CONNS connections are busy is not counted as waiting. In the closed-loop"
    echo "  \`h1-wrk\` runs wrk's one core is the limit (its CPU is near 100%): both servers get"
    echo "  about the same request rate, and the cheaper one (bare) is left with idle CPU while"
    echo "  the other's core is full, so the queue, and the p99, forms inside the server that"
    echo "  costs more per request (wrk's latency leaves out the wait inside wrk, so the bare"
    echo "  server's queue is not counted). \`h1-capped\` makes every server its own limit;"
    echo "  \`h1-rate\` compares both at the same unsaturated load; its"
    echo "  throughput ratio is the offered rate met, not a capacity."
    echo "- Order: per scenario a ${WARMUP} s unrecorded warm-up of each server, then"
    echo "  $ROUNDS rounds alternating ${SERVERS[*]} (in \`h1-pair\` all at once), each ${DURATION} s. All servers run the whole time."
    if ((PIN)); then
        echo "- **CPU sharing**: this machine has $(nproc) CPUs for the servers and the load generator."
        echo "  The servers are pinned to CPU $SERVER_CPU (\`taskset\`; tokio then starts one worker),"
        echo "  the load generator to CPU $LOADGEN_CPU (one thread). Without pinning the generator's"
        echo "  TLS and HTTP work competes with the server for the same cores, so whichever server"
        echo "  is cheaper also leaves less CPU to its own load; pinning gives each side a fixed core."
        echo "  \`server CPU\` below near 100% means the server core was the bottleneck (the"
        echo "  comparison measures the server); \`loadgen CPU\` near 100% would mean the generator was."
    else
        echo "- **CPU sharing**: not pinned (PIN=0): the servers and the load generator share all"
        echo "  $(nproc) CPUs, so the generator's own TLS and HTTP work competes with the server."
    fi
    if ((NICE != 0)); then
        echo "- Both servers and the generator run at niceness $NICE, so that other work on this"
        echo "  shared machine (builds, tests) takes less of their CPU. Server and generator CPU"
        echo "  shares well below 100% below mean such other work still took part of the cores."
    fi
    echo "- Latency: p50/p99 as measured by the generator (wrk's latency histogram; oha's JSON"
    echo "  percentiles; h2load's per-request log, sorted). Throughput counts 2xx answers only. Errors are transport"
    echo "  errors, failed or timed-out streams, and non-2xx answers."
    echo
    echo "## Verdict against the targets"
    echo
    echo "Targets: throughput ≥ ${TARGET_RPS_RATIO}× bare, p99 ≤ ${TARGET_P99_RATIO}× bare p99, zero errors (means over rounds)."
    echo
    if ((ONLY_BARE)); then
        echo "Not judged: this run measured the bare server alone (ONLY_BARE=1)."
    else
        echo "| scenario | bare req/s | imagegate req/s | ratio | bare p99 ms | imagegate p99 ms | p99 ratio | errors (imagegate) | throughput | p99 | errors | bare µs CPU/req | imagegate µs CPU/req |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |"
        for scenario in "${SCENARIOS[@]}"; do
            read -r b_rps _ b_p99 b_err b_cpu < <(mean_of "$scenario" bare)
            read -r g_rps _ g_p99 g_err g_cpu < <(mean_of "$scenario" imagegate)
            r_rps=$(ratio "$g_rps" "$b_rps")
            r_p99=$(ratio "$g_p99" "$b_p99")
            err_verdict=$([[ $g_err -eq 0 ]] && echo PASS || echo FAIL)
            echo "| $scenario | $b_rps | $g_rps | $r_rps | $b_p99 | $g_p99 | $r_p99 | $g_err | $(verdict "$r_rps" ">=" "$TARGET_RPS_RATIO") | $(verdict "$r_p99" "<=" "$TARGET_P99_RATIO") | $err_verdict | $b_cpu | $g_cpu |"
        done
        echo
        echo "Against the limit of imagegate's own stack (\`bare-inline\`), for information:"
        echo
        echo "| scenario | bare-inline req/s | imagegate req/s | ratio | bare-inline p99 ms | imagegate p99 ms | p99 ratio | bare-inline µs CPU/req | imagegate µs CPU/req |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        for scenario in "${SCENARIOS[@]}"; do
            read -r b_rps _ b_p99 _ b_cpu < <(mean_of "$scenario" bare-inline)
            read -r g_rps _ g_p99 _ g_cpu < <(mean_of "$scenario" imagegate)
            echo "| $scenario | $b_rps | $g_rps | $(ratio "$g_rps" "$b_rps") | $b_p99 | $g_p99 | $(ratio "$g_p99" "$b_p99") | $b_cpu | $g_cpu |"
        done
        echo
        echo "The bare servers had $(awk -F'\t' '$2 ~ /^bare/ {e += $9} END {print e + 0}' "$RAW") errors in all their runs."
        echo "µs CPU/req is server CPU time per answered request (from /proc, mean over rounds)."
        echo "It depends far less than req/s on how much CPU other work on the machine left to"
        echo "the server, so it is the steadier view of what imagegate adds per request (it still"
        echo "rises somewhat when a server is starved: fewer requests per wake-up and syscall)."
    fi
    echo
    echo "## Every run"
    echo
    echo "CPU is the share of one CPU used during the run (100% = one core busy); µs CPU/req is server CPU time per answered request."
    echo
    echo "| scenario | server | round | req/s | p50 ms | p99 ms | max ms | 2xx | errors | server CPU | µs CPU/req | loadgen CPU |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    awk -F'\t' '{
        us = ($4 > 0) ? sprintf("%.1f", $10 / 100 * 1000000 / $4) : "nan"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s | %s%% |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, us, $11
    }' "$RAW"
    echo
    echo "## Servers"
    echo
    for s in "${SERVERS[@]}"; do
        echo "- $s: peak RSS ${HWM[$s]}, $(wc -l <"$WORK/$s.log") log lines written during the whole run."
    done
    echo
    echo "Re-run: \`$( ((PGO)) && echo "PGO=1 ")loadtest/run.sh\` (see its header for DURATION, ROUNDS, APISERVERS, CONNS, STREAMS, PIN, PGO)."
    # The soak section belongs to loadtest/soak.sh: carried over as it was.
    if [[ -n $SOAK_SECTION ]]; then
        echo
        printf '%s\n' "$SOAK_SECTION"
    fi
} >"$OUT.new"
mv -f "$OUT.new" "$OUT"
log "wrote $OUT"
