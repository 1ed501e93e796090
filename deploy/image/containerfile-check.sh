#!/usr/bin/env bash
# Builds the top-level Containerfile with podman (Buildah) and checks that
# the result has the config of the image build.sh assembles.
#
#   deploy/image/containerfile-check.sh [BINARY]   (default $IMAGEGATE_BIN,
#                                                   else target/release/imagegate)
#
# The real base images (docker.io/library/rust, gcr.io/distroless/cc-debian12)
# cannot be pulled here, so both stages run on local stand-ins passed as
# the Containerfile's RUST_IMAGE / RUNTIME_IMAGE build arguments:
#   - builder: busybox (Debian's busybox-static) and a `cargo` that checks
#     the build context holds what `cargo build` needs and nothing that
#     .dockerignore keeps out, and that the build is profile-guided by the
#     profile kept in the repository (plain with PGO=0), then puts BINARY
#     at target/release/imagegate;
#   - runtime: build.sh's base layer (the distroless cc contents) with
#     distroless nonroot's config (user 65532, /home/nonroot, PATH,
#     SSL_CERT_FILE).
# What this checks is the Containerfile itself: it parses and builds with
# Buildah, copies the binary from the build stage, and its USER, EXPOSE,
# ENTRYPOINT, CMD and LABELs give the config imagecheck.py expects (the same
# check run-check.sh applies to the pushed image); the built image runs.
# Run build.sh first (it leaves the base layer in $IMAGE_WORK/stage/base).
SCRIPT=containerfile-check.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
BIN="${1:-${IMAGEGATE_BIN:-$ROOT/target/release/imagegate}}"
[[ -x "$BIN" ]] || fail "no executable at $BIN"
need podman skopeo busybox python3 readelf strip
need_python 'import yaml'
BASE="$IMAGE_WORK/stage/base"
[[ -f "$BASE/etc/passwd" ]] || fail "no base layer at $BASE (run deploy/image/build.sh first)"
START=$SECONDS

CF="$IMAGE_WORK/containerfile"
rm -rf "$CF"
mkdir -p "$CF/builder/bin" "$CF/builder/usr/local/cargo/bin" "$CF/builder/prebuilt"
TAG="cf-check-$$"
RUST_STUB="localhost/imagegate-stub/rust:$TAG"
RUNTIME_STUB="localhost/imagegate-stub/distroless-cc:$TAG"
BUILT="localhost/imagegate-stub/imagegate:$TAG"
CLEANUP+=("podman rmi -f $BUILT $RUST_STUB $RUNTIME_STUB >/dev/null 2>&1")

cp "$(command -v busybox)" "$CF/builder/bin/busybox"
for a in sh cp mkdir test echo head od tr; do ln -s busybox "$CF/builder/bin/$a"; done
# Stripped as build.sh does: each copy of the binary (the stand-in base,
# the build stage's target/, the image layer, the committed blob) is on disk.
how="$(image_binary "$BIN" "$CF/builder/prebuilt/imagegate")"
say "binary: $BIN ($how)"
cat > "$CF/builder/usr/local/cargo/bin/cargo" <<'EOF'
#!/bin/sh
# stand-in for `cargo build --release --locked --bin imagegate`, profile-guided
# by default (RUSTFLAGS naming the profile kept in the repository)
set -eu
[ "$*" = "build --release --locked --bin imagegate" ] || { echo "unexpected: cargo $*" >&2; exit 1; }
for f in Cargo.toml Cargo.lock src/main.rs examples/policy.yaml benches/decision.rs loadtest/bare_server.rs loadtest/h3_bench.rs; do
  [ -f "$f" ] || { echo "build context lacks $f" >&2; exit 1; }
done
for f in target .git fuzz tests deploy README.md loadtest/run.sh loadtest/pgo.sh; do
  [ ! -e "$f" ] || { echo "build context holds $f (.dockerignore should keep it out)" >&2; exit 1; }
done
case "${RUSTFLAGS:-}" in
  "-Cprofile-use=$PWD/loadtest/pgo/imagegate.profdata")
    # An indexed LLVM profile starts with the magic 0x8169666f72706cff (little-endian).
    magic="$(head -c 8 loadtest/pgo/imagegate.profdata | od -An -tx1 | tr -d ' \n')"
    [ "$magic" = "ff6c70726f666981" ] || { echo "loadtest/pgo/imagegate.profdata is not an indexed LLVM profile ($magic)" >&2; exit 1; }
    echo "stand-in cargo: profile-guided build" ;;
  "") echo "stand-in cargo: plain build" ;;
  *) echo "unexpected RUSTFLAGS=$RUSTFLAGS" >&2; exit 1 ;;
esac
mkdir -p target/release
cp /prebuilt/imagegate target/release/imagegate
echo "stand-in cargo: context ok, target/release/imagegate in place"
EOF
chmod 0755 "$CF/builder/usr/local/cargo/bin/cargo"
tar -C "$CF/builder" --numeric-owner -cf "$CF/builder.tar" .
podman import -q --change 'ENV PATH=/usr/local/cargo/bin:/bin' "$CF/builder.tar" "$RUST_STUB" >/dev/null
tar -C "$BASE" --numeric-owner -cf "$CF/runtime.tar" .
podman import -q --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  "$CF/runtime.tar" "$RUNTIME_STUB" >/dev/null

podman_probe "$RUST_STUB" sh -c 'echo ok' || { cat "$IMAGE_WORK/podman-probe.log" >&2; fail "podman cannot run containers here"; }
say "podman $(podman --version | awk '{print $3}') ${PODMAN_OPTS[*]:-(default options)}"
before="$(podman images -q --filter dangling=true | sort)"
podman build --layers=false --pull=never "${PODMAN_OPTS[@]}" -f "$ROOT/Containerfile" \
  --build-arg RUST_IMAGE="$RUST_STUB" --build-arg RUNTIME_IMAGE="$RUNTIME_STUB" \
  --build-arg REVISION="$(git_revision)" -t "$BUILT" "$ROOT" > "$CF/build.log" 2>&1 \
  || { cat "$CF/build.log" >&2; fail "podman build -f Containerfile failed"; }
new_dangling="$(comm -13 <(echo "$before") <(podman images -q --filter dangling=true | sort))"
[[ -z "$new_dangling" ]] || CLEANUP+=("podman rmi -f ${new_dangling//$'\n'/ } >/dev/null 2>&1")
grep -q 'stand-in cargo: context ok' "$CF/build.log" || { cat "$CF/build.log" >&2; fail "the build stage did not run cargo"; }
grep -q 'stand-in cargo: profile-guided build' "$CF/build.log" || { cat "$CF/build.log" >&2; fail "the build stage did not build with the kept profile"; }
pass "podman build -f Containerfile: the build context is what .dockerignore allows, cargo ran in the build stage with the kept profile"

# The build argument's other settings, on the stage that runs cargo only.
# build_stage LOG ARG...: that stage built with the stand-in builder.
build_stage() {
  local log=$1
  shift
  podman build --layers=false --pull=never "${PODMAN_OPTS[@]}" -f "$ROOT/Containerfile" --target build \
    --build-arg RUST_IMAGE="$RUST_STUB" "$@" "$ROOT" > "$log" 2>&1
}
CLEANUP+=("podman rmi -f $BUILT-plain >/dev/null 2>&1")
build_stage "$CF/build-plain.log" --build-arg PGO=0 -t "$BUILT-plain" \
  || { cat "$CF/build-plain.log" >&2; fail "podman build --build-arg PGO=0 failed"; }
grep -q 'stand-in cargo: plain build' "$CF/build-plain.log" || { cat "$CF/build-plain.log" >&2; fail "PGO=0 did not build without a profile"; }
if build_stage "$CF/build-bad.log" --build-arg PGO=yes; then
  fail "podman build --build-arg PGO=yes succeeded"
fi
grep -q "PGO must be 0 or 1, not 'yes'" "$CF/build-bad.log" || { cat "$CF/build-bad.log" >&2; fail "PGO=yes failed without naming the setting"; }
pass "the Containerfile's PGO=0 builds without the profile, and PGO=yes stops the build naming the setting"

skopeo inspect --config "containers-storage:$BUILT" > "$CF/config.json"
python3 "$HERE/imagecheck.py" config "$CF/config.json"
pass "the Containerfile's image config is what imagecheck.py (and run-check.sh on the pushed image) expects"

out="$(podman run --rm "${PODMAN_OPTS[@]}" --network none --read-only --cap-drop=ALL "$BUILT" --version)"
[[ "$out" == "imagegate $CARGO_VERSION" ]] || fail "the built image printed '$out'"
uid="$(podman image inspect -f '{{.Config.User}}' "$BUILT")"
pass "the built image runs: '$out' as user $uid"
say "done in $((SECONDS - START)) s"
say "$PASSED passed, 0 failed"
