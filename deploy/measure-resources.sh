#!/usr/bin/env bash
# Measures what the resource requests and limits in deploy/ are sized from:
# the release server with TLS (as deployed) under oha load on 127.0.0.1,
# reporting idle RSS, peak RSS (VmHWM), average CPU cores used by the
# server, throughput and latency. Not part of CI (it takes about a minute
# and its numbers depend on the machine); run it by hand:
#   cargo build --release && cargo install oha && deploy/measure-resources.sh
# The client shares the machine's cores with the server, so saturation
# figures are a floor for the server's throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${IMAGEGATE_BIN:-target/release/imagegate}
command -v oha >/dev/null || { echo "measure-resources: needs oha (cargo install oha)" >&2; exit 1; }
[[ -x $bin ]] || { echo "measure-resources: build $bin first (cargo build --release)" >&2; exit 1; }
tls=tests/fixtures/tls
pod=tests/fixtures/review/admission-v1-pod-create.json
deployment=tests/fixtures/review/admission-v1-deployment.json
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tck=$(getconf CLK_TCK)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() { # label oha-args...
  local label=$1; shift
  "$bin" serve --listen "127.0.0.1:$port" --tls-cert "$tls/server.pem" --tls-key "$tls/server.key" \
    --log-filter warn >/dev/null 2>&1 &
  local pid=$! t0 t1 s0 s1 idle hwm
  for _ in $(seq 50); do curl -skf "https://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  idle=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat"); s0=$(date +%s.%N)
  oha --no-tui --cacert "$tls/ca.pem" "$@" "https://127.0.0.1:$port/validate" >"$out/result.txt" 2>&1
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat"); s1=$(date +%s.%N)
  hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  printf '%-28s idle RSS %6d KiB  peak RSS %6d KiB  CPU %5.3f cores  %s\n' "$label" "$idle" "$hwm" \
    "$(echo "($t1 - $t0) / $tck / ($s1 - $s0)" | bc -l)" \
    "$(grep -E 'Requests/sec|99.00%' "$out/result.txt" | tr -s ' ' | tr '\n' ' ')"
}

json=(-m POST -T application/json)
run "500/s, 16 conns, pod"       -z 20s -q 500 -c 16 "${json[@]}" -D "$pod"
run "2000/s, 500 conns, deploy"  -z 20s -q 2000 -c 500 "${json[@]}" -D "$deployment"
run "saturation, 64 conns h1"    -z 20s -c 64 "${json[@]}" -D "$deployment"
run "saturation, 8x8 h2 streams" -z 20s -c 8 -p 8 --http2 "${json[@]}" -D "$deployment"
run "300/s, no keep-alive"       -z 15s -q 300 -c 8 --disable-keepalive "${json[@]}" -D "$pod"
