#!/usr/bin/env bash
# Profile-guided build of imagegate and of the bare hyper + rustls server
# (loadtest/bare_server.rs), both the same way from one profile:
#
#   1. an instrumented release build of both (-Cprofile-generate);
#   2. training: each server on 127.0.0.1 over TLS, driven in turn by wrk
#      (HTTP/1.1: an allowed ImageReview, a denied one, an AdmissionReview of
#      a Deployment on /validate) and h2load (HTTP/2: the allowed
#      ImageReview), then stopped by SIGTERM so that it writes its profile;
#   3. llvm-profdata merges both servers' profiles into one;
#   4. a release build of both that uses it (-Cprofile-use).
#
# Usage: loadtest/pgo.sh            (from anywhere inside the repository)
#
# Prints the directory holding the two binaries (imagegate, bare_server) on
# its last line; loadtest/run.sh PGO=1 loads them. For a deployment, package
# the imagegate binary with deploy/image/build.sh <dir>/imagegate.
#
# Environment (all optional):
#   TRAIN=4           seconds per training load
#   PGO_TARGET=dir    cargo target directory of the two builds
#                     (default <target>/pgo; `gen` and `use` below it, so a
#                     plain `cargo build` keeps its own cache)
#   PORT_TRAIN=18447  port on 127.0.0.1 for the server being trained
#   LLVM_PROFDATA=path
#                     the llvm-profdata to merge with; by default rustup's
#                     llvm-tools when installed, else the newest
#                     llvm-profdata-NN on PATH if NN >= 19, else Debian's
#                     llvm-19 is installed (its llvm-profdata reads the raw
#                     profiles of rustc 1.95, LLVM 22; the script stops with
#                     llvm-profdata's own message when one cannot)
#
# Installs wrk, h2load (nghttp2-client), openssl and curl when missing (root).
# Only 127.0.0.1 is used. Every load run is bounded.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

TRAIN=${TRAIN:-4}
PORT_TRAIN=${PORT_TRAIN:-18447}

die() { echo "pgo.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

if ! [[ $TRAIN =~ ^[0-9]+$ ]] || ((TRAIN < 1 || TRAIN > 60)); then
    die "TRAIN must be 1..60 seconds"
fi
[[ $PORT_TRAIN =~ ^[0-9]+$ ]] || die "PORT_TRAIN must be a port number"

export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
need openssl
need curl
need jq
need wrk
need h2load nghttp2-client

# ---------------------------------------------------------------- llvm-profdata
find_profdata() {
    if [[ -n ${LLVM_PROFDATA:-} ]]; then
        [[ -x $LLVM_PROFDATA ]] || die "LLVM_PROFDATA=$LLVM_PROFDATA is not executable"
        echo "$LLVM_PROFDATA"
        return
    fi
    local host sysroot candidate
    host=$(rustc -vV | sed -n 's/^host: //p')
    sysroot=$(rustc --print sysroot)
    candidate="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
    if [[ -x $candidate ]]; then
        echo "$candidate"
        return
    fi
    candidate=$(compgen -c llvm-profdata- | sort -t- -k3 -n | tail -1 || true)
    # Older than 19 cannot read the raw profiles of rustc 1.95 (LLVM 22).
    if [[ -z $candidate || ${candidate#llvm-profdata-} -lt 19 ]]; then
        log "installing Debian's llvm-19 for llvm-profdata"
        apt_install llvm-19
        candidate=llvm-profdata-19
    fi
    command -v "$candidate"
}
PROFDATA=$(find_profdata)
log "merging profiles with $PROFDATA ($("$PROFDATA" --version 2>&1 | grep -m1 -o 'LLVM version [0-9.]*'))"

# ---------------------------------------------------------------- workspace
workspace pgo
TLS="$WORK/tls"
make_ca "$TLS" "imagegate pgo CA"
issue_server "$TLS"
RAW="$WORK/raw"
mkdir -p "$RAW"

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
PGO_TARGET=${PGO_TARGET:-$TARGET_DIR/pgo}

# ---------------------------------------------------------------- 1. instrumented build
# Build scripts and proc macros are instrumented too and write their
# profiles while cargo runs them: into a directory of their own, never
# merged (a fixed path, so that the build's cache holds from run to run).
log "instrumented build (release, -Cprofile-generate)"
CARGO_TARGET_DIR="$PGO_TARGET/gen" \
    RUSTFLAGS="-Cprofile-generate=$PGO_TARGET/build-noise" \
    cargo build --release --locked --bin imagegate --example bare_server

# ---------------------------------------------------------------- 2. training
BODY_ALLOW="$ROOT/loadtest/bodies/imagereview-3.json"
BODY_ADMISSION="$ROOT/loadtest/bodies/admission-deployment.json"
BODY_DENY="$WORK/imagereview-deny.json"
# The same review with a tag the default policy forbids.
sed 's/payments-api:v2\.14\.3/payments-api:latest/' "$BODY_ALLOW" >"$BODY_DENY"
grep -q 'payments-api:latest' "$BODY_DENY" || die "could not derive the denied review from $BODY_ALLOW"

wrk_post_lua "$WORK/post.lua"

# train NAME COMMAND...: runs the server, loads it, stops it with SIGTERM
# and checks that it left a profile.
train() {
    local name=$1 pid i
    shift
    port_free "$PORT_TRAIN" || die "port 127.0.0.1:$PORT_TRAIN is already in use"
    mkdir -p "$RAW/$name"
    LLVM_PROFILE_FILE="$RAW/$name/%p.profraw" "$@" --listen "127.0.0.1:$PORT_TRAIN" \
        --tls-cert "$TLS/chain.crt" --tls-key "$TLS/server.key" >"$WORK/$name.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_ready "$pid" "https://127.0.0.1:$PORT_TRAIN/healthz" "$name" "$WORK/$name.log"
    local url="https://127.0.0.1:$PORT_TRAIN"
    local body path
    for load in "$BODY_ALLOW /imagepolicy?timeout=30s" "$BODY_DENY /imagepolicy?timeout=30s" \
        "$BODY_ADMISSION /validate?timeout=10s"; do
        read -r body path <<<"$load"
        BODY=$body timeout $((TRAIN + 30)) wrk -t1 -c32 -d"${TRAIN}s" -s "$WORK/post.lua" "$url$path" >"$WORK/wrk.out" \
            || die "wrk failed against $name"
        grep -q 'Non-2xx' "$WORK/wrk.out" && die "$name answered non-2xx to $path while training"
    done
    timeout $((TRAIN + 30)) h2load -c3 -m21 -D "$TRAIN" -H 'content-type: application/json' \
        -d "$BODY_ALLOW" "$url/imagepolicy?timeout=30s" >"$WORK/h2load.out" 2>&1 \
        || die "h2load failed against $name"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && die "$name did not stop within 30 s of SIGTERM"
    wait "$pid" || true
    compgen -G "$RAW/$name/*.profraw" >/dev/null || die "$name wrote no profile"
    log "trained $name"
}

GEN="$PGO_TARGET/gen/release"
train imagegate "$GEN/imagegate" serve
train bare_server "$GEN/examples/bare_server"

# ---------------------------------------------------------------- 3. merge
mkdir -p "$PGO_TARGET"
"$PROFDATA" merge -o "$WORK/merged.profdata" "$RAW"/imagegate/*.profraw "$RAW"/bare_server/*.profraw \
    || die "$PROFDATA cannot merge rustc's profiles (set LLVM_PROFDATA to one of LLVM $(rustc -vV | sed -n 's/^LLVM version: //p'))"
# Named by its content: cargo does not see a file named in RUSTFLAGS change,
# and a new profile must rebuild everything.
PROFILE="$PGO_TARGET/merged-$(sha256sum "$WORK/merged.profdata" | cut -c1-16).profdata"
rm -f "$PGO_TARGET"/merged-*.profdata
mv -f "$WORK/merged.profdata" "$PROFILE"
log "profile: $PROFILE"

# ---------------------------------------------------------------- 4. optimized build
log "optimized build (release, -Cprofile-use)"
CARGO_TARGET_DIR="$PGO_TARGET/use" \
    RUSTFLAGS="-Cprofile-use=$PROFILE" \
    cargo build --release --locked --bin imagegate --example bare_server
OUT="$PGO_TARGET/bin"
mkdir -p "$OUT"
cp -f "$PGO_TARGET/use/release/imagegate" "$PGO_TARGET/use/release/examples/bare_server" "$OUT/"
log "profile-guided binaries in $OUT"
echo "$OUT"
