#!/usr/bin/env bash
# Profile-guided builds of imagegate and of the bare hyper + rustls server
# (loadtest/bare_server.rs), both the same way from one profile.
#
# The profile the shipped image is built from is kept in the repository,
# loadtest/pgo/imagegate.profdata (the way Go keeps a main package's
# default.pgo): the Containerfile builds with it, so the binary follows
# from the source alone, and this script's default builds both servers from
# that same file, so that the load test measures what ships.
#
# Usage (from anywhere inside the repository):
#   loadtest/pgo.sh               both servers from loadtest/pgo/imagegate.profdata
#   loadtest/pgo.sh train         a new profile, trained on this checkout:
#     1. an instrumented release build of both (-Cprofile-generate);
#     2. training: each server on 127.0.0.1 over TLS, driven in turn by wrk
#        (HTTP/1.1: an allowed ImageReview, a denied one, an AdmissionReview
#        of a Deployment on /validate) and h2load (HTTP/2: the allowed
#        ImageReview), then stopped by SIGTERM so that it writes its profile;
#     3. llvm-profdata merges both servers' profiles into one (sparse:
#        functions never run are left out, which keeps the file small);
#     4. a release build of both that uses it (-Cprofile-use).
#   loadtest/pgo.sh train --save  the same, and the new profile replaces
#                                 loadtest/pgo/imagegate.profdata (commit it)
#
# Renew the kept profile when the request path changes (a release at the
# latest): a stale one still builds, rustc skips the functions whose code no
# longer matches it, and the gain shrinks with the code it no longer covers.
#
# Prints the directory holding the two binaries (imagegate, bare_server) on
# its last line; loadtest/run.sh PGO=1 loads them. For a deployment, build
# the image with the Containerfile, or package the imagegate binary with
# deploy/image/build.sh <dir>/imagegate.
#
# Environment (all optional):
#   TRAIN=4           seconds per training load
#   PGO_TARGET=dir    cargo target directory of the builds
#                     (default <target>/pgo; `gen` and `use` below it, so a
#                     plain `cargo build` keeps its own cache)
#   PORT_TRAIN=18447  port on 127.0.0.1 for the server being trained
#   LLVM_PROFDATA=path
#                     (train) the llvm-profdata to merge with; by default
#                     rustup's llvm-tools when installed, else the newest
#                     llvm-profdata-NN on PATH if NN >= 19, else Debian's
#                     llvm-19 is installed (its llvm-profdata reads the raw
#                     profiles of rustc 1.95, LLVM 22; the script stops with
#                     llvm-profdata's own message when one cannot)
#
# Training installs wrk, h2load (nghttp2-client), openssl and curl when
# missing (root). Only 127.0.0.1 is used. Every load run is bounded.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODE=committed
SAVE=0
for arg in "$@"; do
    case $arg in
        train) MODE=train ;;
        --save) SAVE=1 ;;
        -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "pgo.sh: unknown argument '$arg' (usage: pgo.sh [train [--save]])" >&2; exit 2 ;;
    esac
done
TRAIN=${TRAIN:-4}
PORT_TRAIN=${PORT_TRAIN:-18447}
# The profile the Containerfile builds the shipped image with.
KEPT="$ROOT/loadtest/pgo/imagegate.profdata"

die() { echo "pgo.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

((SAVE == 0)) || [[ $MODE == train ]] || die "--save goes with train"
if ! [[ $TRAIN =~ ^[0-9]+$ ]] || ((TRAIN < 1 || TRAIN > 60)); then
    die "TRAIN must be 1..60 seconds"
fi
[[ $PORT_TRAIN =~ ^[0-9]+$ ]] || die "PORT_TRAIN must be a port number"

export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=loadtest/common.sh
source "$ROOT/loadtest/common.sh"
need jq
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
PGO_TARGET=${PGO_TARGET:-$TARGET_DIR/pgo}
mkdir -p "$PGO_TARGET"

# use_profile FILE: copies FILE into the target directory under a name
# made of its content (cargo does not see a file named in RUSTFLAGS change,
# and a new profile must rebuild everything) and prints that path.
use_profile() {
    local named
    named="$PGO_TARGET/merged-$(sha256sum "$1" | cut -c1-16).profdata"
    if [[ ! -f $named ]]; then
        rm -f "$PGO_TARGET"/merged-*.profdata
        cp -f "$1" "$named.tmp"
        mv -f "$named.tmp" "$named"
    fi
    echo "$named"
}

# build_and_print: the release build of both servers with -Cprofile-use of
# $PROFILE; prints the directory of the two binaries and exits.
build_and_print() {
    log "optimized build (release, -Cprofile-use)"
    CARGO_TARGET_DIR="$PGO_TARGET/use" RUSTFLAGS="-Cprofile-use=$PROFILE" build_apart bare_server
    local out="$PGO_TARGET/bin"
    mkdir -p "$out"
    cp -f "$PGO_TARGET/use/release/imagegate" "$PGO_TARGET/use/release/examples/bare_server" "$out/"
    log "profile-guided binaries in $out"
    echo "$out"
    exit 0
}

if [[ $MODE == committed ]]; then
    [[ -s $KEPT ]] || die "no profile at $KEPT (loadtest/pgo.sh train --save makes one)"
    PROFILE=$(use_profile "$KEPT")
    log "profile: $KEPT (kept in the repository)"
    build_and_print
fi

# Training from here on.
need openssl
need curl
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

# ---------------------------------------------------------------- 1. instrumented build
# Build scripts and proc macros are instrumented too and write their
# profiles while cargo runs them: into a directory of their own, never
# merged (a fixed path, so that the build's cache holds from run to run).
log "instrumented build (release, -Cprofile-generate)"
CARGO_TARGET_DIR="$PGO_TARGET/gen" RUSTFLAGS="-Cprofile-generate=$PGO_TARGET/build-noise" build_apart bare_server

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
"$PROFDATA" merge --sparse -o "$WORK/merged.profdata" "$RAW"/imagegate/*.profraw "$RAW"/bare_server/*.profraw \
    || die "$PROFDATA cannot merge rustc's profiles (set LLVM_PROFDATA to one of LLVM $(rustc -vV | sed -n 's/^LLVM version: //p'))"
PROFILE=$(use_profile "$WORK/merged.profdata")
log "profile: $PROFILE (trained)"
if ((SAVE)); then
    mkdir -p "$(dirname "$KEPT")"
    cp -f "$WORK/merged.profdata" "$KEPT.tmp"
    mv -f "$KEPT.tmp" "$KEPT"
    log "saved as $KEPT: commit it with the code it was trained on"
fi

build_and_print
