#!/usr/bin/env bash
# Soak: mixed review traffic at half of saturation for 15 minutes, with a
# certificate rotation and a policy reload every minute (and, once, a broken
# policy that must be refused while the last good one keeps serving). Writes
# the soak section of loadtest/RESULTS.md and loadtest/soak.png (RSS and p99
# over time).
#
# Usage: loadtest/soak.sh            (from anywhere inside the repository)
#
# Environment (all optional):
#   MINUTES=15         length of the soak (one oha segment per minute)
#   SATURATION_SECS=10 length of the closed-loop run that measures saturation
#   FRACTION=0.5       offered rate as a fraction of that saturation
#   PIN=1              1: server on CPU 1, generators on CPU 0; 0: no pinning
#   NICE=-10           niceness of server and generators (root only)
#   OUT=path           results file whose soak section is replaced (default loadtest/RESULTS.md)
#   PNG=path           plot (default loadtest/soak.png)
#   PORT=18453         port on 127.0.0.1
#   KEEP_WORK=0        1: keep the raw data in the temporary directory
#
# Traffic: two generators at once, as two apiservers would send it:
#   - HTTP/2, 3 connections x 21 streams: ImageReviews (pod containers, init
#     containers, the ephemeral-containers call; allowed and denied);
#   - HTTP/1.1, 21 keep-alive connections: AdmissionReviews (Pods and the
#     pod templates of Deployments, CronJobs, ...; allowed and denied).
# Every request must be answered 200; every sampled answer must carry the
# decision its body expects, before, during and after the reloads.
#
# Installs what it needs when missing: oha (cargo install), jq, openssl
# (Debian, needs root), matplotlib (pip). Only 127.0.0.1 is used; every loop
# and every load run is bounded in count and time.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MINUTES=${MINUTES:-15}
SATURATION_SECS=${SATURATION_SECS:-10}
FRACTION=${FRACTION:-0.5}
PIN=${PIN:-1}
NICE=${NICE:--10}
OUT=${OUT:-$ROOT/loadtest/RESULTS.md}
PNG=${PNG:-$ROOT/loadtest/soak.png}
PORT=${PORT:-18453}
KEEP_WORK=${KEEP_WORK:-0}

die() { echo "soak.sh: $*" >&2; exit 1; }
log() { echo "==> $(date -u +%H:%M:%S) $*" >&2; }

for n in MINUTES SATURATION_SECS PORT; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number"
done
((MINUTES >= 1 && MINUTES <= 120)) || die "MINUTES must be 1..120"
((SATURATION_SECS >= 3 && SATURATION_SECS <= 120)) || die "SATURATION_SECS must be 3..120"
[[ $FRACTION =~ ^0?\.[0-9]+$ ]] || die "FRACTION must be a number in (0, 1)"
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
need_oha
need_matplotlib

# ---------------------------------------------------------------- workspace
workspace soak

port_free "$PORT" || die "port 127.0.0.1:$PORT is already in use"

# Certificates and the policy each in a directory of their own (see common.sh).
TLS="$WORK/tls"
make_ca "$TLS" "imagegate soak CA"
issue_server "$TLS"
mkdir -p "$WORK/policy" "$WORK/segments"
POLICY="$WORK/policy/policy.yaml"

# Two policy variants that decide the soak's bodies alike: the reload is
# exercised (a new generation each minute) without changing the answers.
write_policy() { # variant (a|b|broken)
    local tmp="$WORK/policy/.policy.tmp"
    case $1 in
        a | b)
            cat >"$tmp" <<EOF
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: soak-$1
spec:
  mode: enforce
  registries:
    allow: [registry.k8s.io, ghcr.io/mycorp, nginx, "docker.io/bitnami"]
    deny: [ghcr.io/mycorp/experimental]
  tags:
    requireTagOrDigest: true
    forbid: [latest$([[ $1 == b ]] && echo ", dev" || true)]
  exemptions:
    namespaces: [kube-system]
EOF
            ;;
        broken)
            printf 'apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  registries:\n    alow: [nginx]\n' >"$tmp"
            ;;
    esac
    mv -f "$tmp" "$POLICY"
}
write_policy a

# Bodies, one compact JSON per line (oha -Z sends them line by line), and the
# decision each must get.
python3 - "$WORK" <<'PY'
import json, sys
work = sys.argv[1]
ir = lambda ns, containers, init=(), ann=None: {
    "apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
    "metadata": {"creationTimestamp": None},
    "spec": {"containers": [{"image": i} for i in containers] + [{"image": i} for i in init],
             "annotations": ann or {}, "namespace": ns},
    "status": {"allowed": False},
}
def pod_spec(containers, init=(), eph=()):
    spec = {"containers": [{"name": f"c{i}", "image": im} for i, im in enumerate(containers)]}
    if init:
        spec["initContainers"] = [{"name": f"i{i}", "image": im} for i, im in enumerate(init)]
    if eph:
        spec["ephemeralContainers"] = [{"name": f"e{i}", "image": im} for i, im in enumerate(eph)]
    return spec
def ar(n, kind, group, version, ns, obj_spec):
    resource = kind.lower() + "s"
    if kind == "Pod":
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{n}", "namespace": ns}, "spec": obj_spec}
    elif kind == "CronJob":
        obj = {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": f"w{n}", "namespace": ns},
               "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": obj_spec}}}}}
    else:
        obj = {"apiVersion": f"{group}/{version}", "kind": kind, "metadata": {"name": f"w{n}", "namespace": ns},
               "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "x"}}, "spec": obj_spec}}}
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": resource}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": f"00000000-0000-4000-8000-{n:012d}", "kind": gvk, "resource": gvr,
                        "requestKind": gvk, "requestResource": gvr, "name": obj["metadata"]["name"],
                        "namespace": ns, "operation": "CREATE",
                        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                        "object": obj, "oldObject": None, "dryRun": False}}
K8S = "registry.k8s.io/pause:3.10"
NGINX = "nginx:1.27.3"
APP = "ghcr.io/mycorp/shop/api:v2.4.1@sha256:" + "ab" * 32
image_reviews = [
    (ir("shop", [NGINX, APP, K8S]), True),
    (ir("shop", [APP], init=["docker.io/bitnami/kubectl:1.31"]), True),
    (ir("shop", ["nginx"]), False),                       # implicit latest
    (ir("shop", ["ghcr.io/mycorpevil/api:v1"]), False),   # prefix confusion
    (ir("shop", ["ghcr.io/mycorp/experimental/x:v1"]), False),
    (ir("kube-system", ["quay.io/anything:v1"]), True),   # exempt namespace
    (ir("shop", ["busybox:1.36"], ann={"debug.example.com/reason": "ephemeral"}), False),
]
admission = [
    (ar(1, "Pod", "", "v1", "shop", pod_spec([NGINX, APP])), True),
    (ar(2, "Deployment", "apps", "v1", "shop", pod_spec([APP], init=[K8S])), True),
    (ar(3, "Deployment", "apps", "v1", "shop", pod_spec([NGINX, "nginx:latest"])), False),
    (ar(4, "CronJob", "batch", "v1", "shop", pod_spec(["docker.io/bitnami/kubectl:1.31"])), True),
    (ar(5, "StatefulSet", "apps", "v1", "shop", pod_spec([K8S], init=["evil.example.com/x:v1"])), False),
    (ar(6, "Pod", "", "v1", "shop", pod_spec([NGINX], eph=["ghcr.io/mycorp/debug"])), False),
    (ar(7, "DaemonSet", "apps", "v1", "kube-system", pod_spec(["quay.io/cilium/cilium:v1.16.0"])), True),
]
for name, items in (("imagereview", image_reviews), ("admission", admission)):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for body, _ in items:
            f.write(json.dumps(body, separators=(",", ":")) + "\n")
    with open(f"{work}/{name}.expect", "w") as f:
        for _, allowed in items:
            f.write(("true" if allowed else "false") + "\n")
PY

# ---------------------------------------------------------------- build and start
log "building imagegate (release)"
cargo build --release --bin imagegate
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
BIN="$TARGET_DIR/release/imagegate"

SERVER_PIN=(nice -n "$NICE")
LOADGEN_PIN=(nice -n "$NICE")
LOADGEN_THREADS=$(nproc)
if ((PIN)); then
    SERVER_PIN+=(taskset -c 1)
    LOADGEN_PIN+=(taskset -c 0)
    LOADGEN_THREADS=1
fi

"${SERVER_PIN[@]}" "$BIN" serve --listen "127.0.0.1:$PORT" --policy "$POLICY" \
    --tls-cert "$TLS/chain.crt" --tls-key "$TLS/server.key" --log-format json \
    >"$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=("$SERVER")
wait_ready "$SERVER" "https://127.0.0.1:$PORT/readyz" imagegate "$WORK/server.log"
log "imagegate ready on 127.0.0.1:$PORT (pid $SERVER)"

URL_IR="https://127.0.0.1:$PORT/imagepolicy?timeout=30s"
URL_AR="https://127.0.0.1:$PORT/validate?timeout=10s"

# Every body answered with its expected decision (fails the soak otherwise).
CHECKS=0
check_answers() { # when
    local kind url field line n=0 want got
    for kind in imagereview admission; do
        if [[ $kind == imagereview ]]; then url=$URL_IR field=.status.allowed; else url=$URL_AR field=.response.allowed; fi
        exec 4<"$WORK/$kind.expect"
        while IFS= read -r line; do
            n=$((n + 1))
            IFS= read -r want <&4
            got=$(curl -sS --max-time 10 --cacert "$TLS/ca.crt" -X POST -H 'content-type: application/json' \
                --data-binary "$line" "$url" | jq -r "$field")
            [[ $got == "$want" ]] || die "$1: $kind body $n answered allowed=$got, expected $want"
        done <"$WORK/$kind.jsonl"
        exec 4<&-
    done
    CHECKS=$((CHECKS + n))
}
check_answers "before the soak"

metric() { # series -> value (0 when absent)
    curl -sf --cacert "$TLS/ca.crt" "https://127.0.0.1:$PORT/metrics" \
        | awk -v s="$1" '$1 == s {print $2; found = 1} END {if (!found) print 0}'
}
served_serial() {
    openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null \
        | openssl x509 -noout -serial 2>/dev/null | cut -d= -f2
}

# ---------------------------------------------------------------- generators
# One segment: both generators for `secs` seconds at their rates (0 = closed loop).
run_segment() { # dir secs rate_ir rate_ar
    # With a rate, a count (rate x seconds) rather than a deadline: oha's
    # deadline aborts the HTTP/2 requests still in flight, which would be
    # counted as failures that the server had no part in.
    local dir=$1 secs=$2 q_ir=(-z "${2}s" -w) q_ar=(-z "${2}s" -w)
    mkdir -p "$dir"
    (($3 > 0)) && q_ir=(-n $(($3 * secs)) -q "$3" --latency-correction)
    (($4 > 0)) && q_ar=(-n $(($4 * secs)) -q "$4" --latency-correction)
    timeout $((secs + 60)) "${LOADGEN_PIN[@]}" oha --no-tui "${q_ir[@]}" \
        --http2 -c 3 -p 21 --worker-threads "$LOADGEN_THREADS" \
        -m POST -T application/json -Z "$WORK/imagereview.jsonl" --cacert "$TLS/ca.crt" \
        --output-format json -o "$dir/ir.json" --db-url "$dir/ir.db" "$URL_IR" 2>"$dir/ir.err" &
    local a=$!
    timeout $((secs + 60)) "${LOADGEN_PIN[@]}" oha --no-tui "${q_ar[@]}" \
        -c 21 --worker-threads "$LOADGEN_THREADS" \
        -m POST -T application/json -Z "$WORK/admission.jsonl" --cacert "$TLS/ca.crt" \
        --output-format json -o "$dir/ar.json" --db-url "$dir/ar.db" "$URL_AR" 2>"$dir/ar.err" &
    local b=$!
    local rc=0
    wait "$a" || rc=1
    wait "$b" || rc=1
    ((rc == 0)) || die "a generator failed in $dir: $(cat "$dir"/*.err | head -n 5)"
}
rps_of() { jq -r '.summary.requestsPerSec' "$1"; }
errors_of() { # oha JSON -> transport errors + non-200 answers
    jq '([.errorDistribution[]] | add // 0) + ([.statusCodeDistribution | to_entries[] | select(.key != "200") | .value] | add // 0)' "$1"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
log "measuring saturation: both generators closed-loop for $SATURATION_SECS s"
SAT_T0=$(date +%s.%N)
SAT_C0=$(cpu_ticks "$SERVER")
run_segment "$WORK/saturation" "$SATURATION_SECS" 0 0
SAT_CPU=$(awk -v c0="$SAT_C0" -v c1="$(cpu_ticks "$SERVER")" -v t0="$SAT_T0" -v t1="$(date +%s.%N)" \
    -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", 100 * (c1 - c0) / hz / (t1 - t0)}')
SAT_IR=$(rps_of "$WORK/saturation/ir.json")
SAT_AR=$(rps_of "$WORK/saturation/ar.json")
RATE_IR=$(awk -v r="$SAT_IR" -v f="$FRACTION" 'BEGIN {printf "%d", r * f}')
RATE_AR=$(awk -v r="$SAT_AR" -v f="$FRACTION" 'BEGIN {printf "%d", r * f}')
((RATE_IR > 0 && RATE_AR > 0)) || die "saturation run answered nothing ($SAT_IR, $SAT_AR req/s)"
log "saturation: ImageReview $SAT_IR req/s + AdmissionReview $SAT_AR req/s (server CPU $SAT_CPU%); soak at $FRACTION: $RATE_IR + $RATE_AR req/s"

# ---------------------------------------------------------------- soak
SAMPLES="$WORK/samples.tsv"   # unix_time rss_kib threads fds cpu_ticks, then the load generators' CPU (busy and all jiffies) and the machine's steal
EVENTS="$WORK/events.tsv"     # unix_time event detail
printf 'time\trss_kib\tthreads\tfds\tcpu_ticks\tgen_busy\tgen_all\tsteal\n' >"$SAMPLES"
# The generators' core (CPU 0 when pinned, else the whole machine): busy and
# all jiffies from /proc/stat, and steal time (the hypervisor taking CPU).
GEN_CPU=$( ((PIN)) && echo cpu0 || echo cpu)
gen_jiffies() {
    awk -v c="$GEN_CPU" '$1 == c {busy = $2 + $3 + $4 + $7 + $8 + $9; all = busy + $5 + $6; print busy "\t" all}
        $1 == "cpu" {steal = $9} END {print steal}' /proc/stat | paste -s -d '\t'
}
printf 'time\tevent\tdetail\n' >"$EVENTS"
sampler() {
    local end=$(($(date +%s) + MINUTES * 60 + 120))
    while (($(date +%s) < end)) && kill -0 "$SERVER" 2>/dev/null; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date +%s.%N)" \
            "$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER/status")" \
            "$(awk '/^Threads:/ {print $2}' "/proc/$SERVER/status")" \
            "$(find "/proc/$SERVER/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" \
            "$(cpu_ticks "$SERVER")" "$(gen_jiffies)" >>"$SAMPLES"
        sleep 1
    done
}
sampler &
SAMPLER=$!
PIDS+=("$SAMPLER")
event() { printf '%s\t%s\t%s\n' "$(date +%s.%N)" "$1" "$2" >>"$EVENTS"; }

# The reloads of one minute, run beside its segment: a certificate rotation at
# +20 s, a policy reload at +40 s (minute 8 first writes a broken policy,
# which must be refused and counted while the last good one keeps serving).
reloads() { # minute
    local m=$1 serial want_gen gen errors_before
    sleep 20
    issue_server "$TLS"
    want=$(openssl x509 -in "$TLS/chain.crt" -noout -serial | cut -d= -f2)
    event cert-rotated "$want"
    for ((i = 0; i < 100; i++)); do
        serial=$(served_serial)
        [[ $serial == "$want" ]] && break
        sleep 0.1
    done
    [[ $serial == "$want" ]] || { echo "minute $m: new certificate not served after 10 s" >"$WORK/reload-failed"; return; }
    event cert-served "$serial"
    sleep 20
    gen=$(metric imagegate_policy_generation)
    if ((m == 8)); then
        errors_before=$(metric 'imagegate_policy_reloads_total{result="error"}')
        write_policy broken
        event policy-broken ""
        for ((i = 0; i < 100; i++)); do
            [[ $(metric 'imagegate_policy_reloads_total{result="error"}') != "$errors_before" ]] && break
            sleep 0.1
        done
        [[ $(metric 'imagegate_policy_reloads_total{result="error"}') != "$errors_before" ]] \
            || { echo "minute $m: the broken policy was not counted as a reload error" >"$WORK/reload-failed"; return; }
        [[ $(metric imagegate_policy_generation) == "$gen" ]] \
            || { echo "minute $m: the broken policy changed the generation" >"$WORK/reload-failed"; return; }
        event policy-refused ""
    fi
    if ((m % 2)); then write_policy b; else write_policy a; fi
    want_gen=$((gen + 1))
    for ((i = 0; i < 100; i++)); do
        [[ $(metric imagegate_policy_generation) == "$want_gen" ]] && break
        sleep 0.1
    done
    [[ $(metric imagegate_policy_generation) == "$want_gen" ]] \
        || { echo "minute $m: policy generation did not reach $want_gen" >"$WORK/reload-failed"; return; }
    event policy-reloaded "$want_gen"
}

STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
SOAK_T0=$(date +%s.%N)
for ((m = 1; m <= MINUTES; m++)); do
    log "minute $m/$MINUTES"
    reloads "$m" &
    RELOADS=$!
    run_segment "$WORK/segments/$(printf %03d "$m")" 60 "$RATE_IR" "$RATE_AR"
    wait "$RELOADS" || true
    [[ ! -e $WORK/reload-failed ]] || die "$(cat "$WORK/reload-failed")"
    check_answers "after minute $m"
    for f in "$WORK/segments/$(printf %03d "$m")"/*.json; do
        e=$(errors_of "$f")
        ((e == 0)) || die "minute $m: $e failed requests in $(basename "$f")"
    done
done
SOAK_T1=$(date +%s.%N)
ENDED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
kill "$SAMPLER" 2>/dev/null || true
curl -sf --cacert "$TLS/ca.crt" "https://127.0.0.1:$PORT/metrics" >"$WORK/metrics.after"
kill -0 "$SERVER" || die "imagegate is no longer running"

jq -n --arg started "$STARTED" --arg ended "$ENDED" --arg t0 "$SOAK_T0" --arg t1 "$SOAK_T1" \
    --arg commit "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    --arg dirty "$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo yes || echo no)" \
    --arg cpu "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" --arg nproc "$(nproc)" \
    --arg oha "$(oha --version)" --arg rustc "$(rustc -V)" \
    --arg sat_ir "$SAT_IR" --arg sat_ar "$SAT_AR" --arg rate_ir "$RATE_IR" --arg rate_ar "$RATE_AR" \
    --arg sat_cpu "$SAT_CPU" --arg hz "$(getconf CLK_TCK)" \
    --arg fraction "$FRACTION" --arg minutes "$MINUTES" --arg pin "$PIN" --arg nice "$NICE" \
    --arg checks "$CHECKS" --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '$ARGS.named' >"$WORK/meta.json"

log "writing the report"
python3 "$ROOT/loadtest/soak_report.py" "$WORK" "$OUT" "$PNG"
log "done: $OUT, $PNG"
