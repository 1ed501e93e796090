# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the scripts
# Shared by deploy/image/*.sh (sourced, not run).
#
# Settings (environment):
#   IMAGE_REGISTRY  registry to push to and check against; default
#                   127.0.0.1:5000, the address examples/policy-self.yaml
#                   names. Plain HTTP, loopback only. When nothing answers
#                   there, a Debian `docker-registry` is started for the
#                   script's duration, storing under $IMAGE_WORK/registry.
#   IMAGE_REPO      repository, default imagegate/imagegate
#   IMAGE_TAG       tag, default the version in Cargo.toml
#   IMAGE_WORK      scratch folder, default target/image (git-ignored)
#   CI / IMAGEGATE_REQUIRE_TOOLS
#                   when set (CI=true, IMAGEGATE_REQUIRE_TOOLS=1), a missing
#                   tool fails the script instead of skipping it.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/image"
IMAGE_REGISTRY="${IMAGE_REGISTRY:-127.0.0.1:5000}"
IMAGE_REPO="${IMAGE_REPO:-imagegate/imagegate}"
CARGO_VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)"
IMAGE_TAG="${IMAGE_TAG:-$CARGO_VERSION}"
IMAGE_WORK="${IMAGE_WORK:-$ROOT/target/image}"
IMAGE_REF="$IMAGE_REGISTRY/$IMAGE_REPO:$IMAGE_TAG"
mkdir -p "$IMAGE_WORK"

case "$IMAGE_REGISTRY" in
  127.*|localhost:*|\[::1\]:*) ;;
  *) echo "IMAGE_REGISTRY must be a loopback address (got $IMAGE_REGISTRY)" >&2; exit 2 ;;
esac

say() { printf '%s: %s\n' "$SCRIPT" "$*"; }
pass() { printf '%s: PASS %s\n' "$SCRIPT" "$*"; PASSED=$((PASSED + 1)); }
fail() { printf '%s: FAIL %s\n' "$SCRIPT" "$*" >&2; exit 1; }
PASSED=0

strict() { [[ "${CI:-}" == "true" || -n "${IMAGEGATE_REQUIRE_TOOLS:-}" ]]; }

# need TOOL... : every tool on PATH, or skip (exit 0) on a developer
# machine, or fail under CI.
need() {
  local missing=()
  for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  ((${#missing[@]} == 0)) && return 0
  if strict; then
    fail "missing ${missing[*]} (CI must install them: see .ci/run)"
  fi
  say "SKIPPED: missing ${missing[*]} (apt-get install umoci skopeo docker-registry jq curl openssl; python3 -m pip install -r deploy/image/requirements.txt)"
  exit 0
}

need_python() {
  if ! python3 -c "$1" 2>/dev/null; then
    strict && fail "missing python packages: python3 -m pip install -r deploy/image/requirements.txt"
    say "SKIPPED: missing python packages (python3 -m pip install -r deploy/image/requirements.txt)"
    exit 0
  fi
}

# image_binary SRC DST: put the imagegate binary at DST as an image holds
# it: a debug build's debug info stripped (a test build's binary is several
# times larger than what runs), a release binary (which has none) copied
# unchanged. Prints which of the two it did.
image_binary() {
  if readelf -S "$1" 2>/dev/null | grep -q '\.debug_'; then
    strip --strip-debug -o "$2" "$1"
    echo "debug info stripped for the image"
  else
    cp "$1" "$2"
    echo "copied unchanged"
  fi
}

CLEANUP=()
cleanup() {
  local i
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[$i]}" || true; done
}
trap cleanup EXIT

# registry_up [fresh]: make sure $IMAGE_REGISTRY answers the distribution
# API, starting Debian's docker-registry on it when nothing listens there
# (with `fresh`, on empty storage). The storage folder outlives the process,
# so build.sh's push is still there for run-check.sh and dogfood.sh.
registry_up() {
  local fresh="${1:-}"
  if curl -fsS -o /dev/null "http://$IMAGE_REGISTRY/v2/" 2>/dev/null; then
    say "registry: using the one answering at $IMAGE_REGISTRY"
    return 0
  fi
  if (exec 3<>"/dev/tcp/${IMAGE_REGISTRY%:*}/${IMAGE_REGISTRY##*:}") 2>/dev/null; then
    fail "something that is not a registry listens on $IMAGE_REGISTRY (set IMAGE_REGISTRY)"
  fi
  local dir="$IMAGE_WORK/registry"
  [[ "$fresh" == fresh ]] && rm -rf "$dir"
  mkdir -p "$dir/data"
  cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $IMAGE_REGISTRY
EOF
  docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 &
  REGISTRY_PID=$!
  CLEANUP+=("kill $REGISTRY_PID 2>/dev/null; wait $REGISTRY_PID 2>/dev/null")
  local i
  for i in $(seq 1 100); do
    curl -fsS -o /dev/null "http://$IMAGE_REGISTRY/v2/" 2>/dev/null && {
      say "registry: started docker-registry (pid $REGISTRY_PID) on $IMAGE_REGISTRY, storage $dir/data"
      return 0
    }
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/registry.log" >&2
  fail "docker-registry did not start on $IMAGE_REGISTRY"
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

git_revision() { git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown; }

# podman_probe IMAGE ARG...: finds podman options under which `podman run
# IMAGE ARG...` works on this machine; sets PODMAN_OPTS (an array) and
# PROBE_OUT (the command's output). Where crun cannot start containers
# (cgroups v1/v2 hybrid) or a runtime may not raise rlimits above the
# current hard limits, runc with rlimits at those limits is used.
podman_probe() {
  command -v podman >/dev/null 2>&1 || return 1
  local candidates=(
    ""
    "--runtime runc --ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
  )
  local c
  : > "$IMAGE_WORK/podman-probe.log"
  for c in "${candidates[@]}"; do
    # shellcheck disable=SC2086
    if PROBE_OUT="$(podman run --rm $c --network none "$@" 2>>"$IMAGE_WORK/podman-probe.log")"; then
      read -r -a PODMAN_OPTS <<< "$c"
      return 0
    fi
  done
  return 1
}
