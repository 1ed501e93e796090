#!/usr/bin/env bash
# Pulls the image build.sh pushed, checks its config against the
# Containerfile and the deploy manifests, and runs it the way the
# Deployment does.
#
#   deploy/image/run-check.sh            RUNNER=auto (default): podman when a
#                                        container starts on this machine,
#                                        else the unpacked rootfs
#   RUNNER=podman deploy/image/run-check.sh
#   RUNNER=rootfs deploy/image/run-check.sh
#
# What it checks:
#   - config (imagecheck.py): user 65532:65532 (numeric), entrypoint, cmd,
#     exposed ports and OCI labels exactly as the Containerfile sets them,
#     no healthcheck; deploy/ manifests agree (runAsUser/runAsGroup,
#     readOnlyRootFilesystem, capabilities, ports, args not command);
#   - `IMAGE --version` prints Cargo.toml's version;
#   - the Deployment's own args (listen addresses moved to 127.0.0.1) with
#     the policy and a TLS secret mounted read-only as the kubelet does
#     (0440, group 65532): runs as the image's user on a read-only root
#     filesystem, /healthz and /readyz over HTTPS, an AdmissionReview on
#     /validate, /metrics on the metrics listener, exit 0 on SIGTERM;
#   - the image's default CMD starts with no arguments (no network: it
#     listens on 0.0.0.0).
#
# podman: rootful, --read-only, --cap-drop=ALL, no-new-privileges, host
# network (only 127.0.0.1 is used). On a machine where crun cannot start
# containers (cgroups v1/v2 hybrid) or rlimits cannot be raised, runc and
# rlimits at the current limits are used. rootfs: the layers unpacked with
# umoci, bind-mounted read-only in a private mount namespace, the
# entrypoint run in it (nsenter --root, the image's working directory and
# environment) as the image's numeric user, no-new-privs.
SCRIPT=run-check.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUNNER="${RUNNER:-auto}"
need skopeo umoci curl jq openssl python3 docker-registry unshare setpriv nsenter
need_python 'import yaml'
START=$SECONDS

RUN="$IMAGE_WORK/run-$RUNNER"
rm -rf "$RUN"
mkdir -p "$RUN"

registry_up
DIGEST="$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$IMAGE_REF")" \
  || fail "$IMAGE_REF is not in the registry (run deploy/image/build.sh first)"
if [[ -f "$IMAGE_WORK/image.digest" && "$(cat "$IMAGE_WORK/image.digest")" != "$DIGEST" ]]; then
  say "note: $IMAGE_REF is $DIGEST, build.sh last pushed $(cat "$IMAGE_WORK/image.digest")"
fi
IMAGE_AT="$IMAGE_REGISTRY/$IMAGE_REPO@$DIGEST"
say "image $IMAGE_REF = $IMAGE_AT"

# --- config ---
skopeo inspect --tls-verify=false --config "docker://$IMAGE_AT" > "$RUN/config.json"
# The revision label is the commit build.sh built from (HEAD may have moved).
REVISION="$(cat "$IMAGE_WORK/image.revision" 2>/dev/null || git_revision)"
python3 "$HERE/imagecheck.py" config "$RUN/config.json" --build-arg REVISION="$REVISION"
pass "image config agrees with the Containerfile (built from $REVISION)"
python3 "$HERE/imagecheck.py" manifests
pass "deploy/ manifests agree with the image"
USER_SPEC="$(jq -r '.config.User' "$RUN/config.json")"
UID_="${USER_SPEC%%:*}"; GID_="${USER_SPEC##*:}"
mapfile -t ENTRYPOINT < <(jq -r '.config.Entrypoint[]' "$RUN/config.json")
mapfile -t ENVS < <(jq -r '.config.Env[]' "$RUN/config.json")
WORKDIR="$(jq -r '.config.WorkingDir // "/"' "$RUN/config.json")"

# --- what the kubelet mounts: policy ConfigMap, TLS Secret (0440, fsGroup) ---
mkdir -p "$RUN/policy" "$RUN/tls"
cp "$ROOT/deploy/base/policy.yaml" "$RUN/policy/policy.yaml"
chmod 0444 "$RUN/policy/policy.yaml"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=imagegate.imagegate.svc \
  -addext subjectAltName=DNS:imagegate.imagegate.svc,IP:127.0.0.1 \
  -keyout "$RUN/tls/tls.key" -out "$RUN/tls/tls.crt" 2>/dev/null
chown 0:"$GID_" "$RUN/tls/tls.key" "$RUN/tls/tls.crt"
chmod 0440 "$RUN/tls/tls.key" "$RUN/tls/tls.crt"
chmod 0755 "$RUN" "$RUN/policy" "$RUN/tls"

WEB_PORT="$(free_port)"; METRICS_PORT="$(free_port)"
while [[ "$METRICS_PORT" == "$WEB_PORT" ]]; do METRICS_PORT="$(free_port)"; done
ARGS=()
while read -r a; do
  case "$a" in
    --listen=*) a="--listen=127.0.0.1:$WEB_PORT" ;;
    --metrics-listen=*) a="--metrics-listen=127.0.0.1:$METRICS_PORT" ;;
  esac
  ARGS+=("$a")
done < <(python3 "$HERE/imagecheck.py" deployment-args)
say "args (deploy/base/deployment.yaml, loopback): ${ARGS[*]}"

# --- runners: start_server ARGS... sets SERVER_PID; stop_server -> exit code ---
podman_works() {
  command -v podman >/dev/null 2>&1 || return 1
  podman pull -q --tls-verify=false "$IMAGE_AT" >/dev/null 2>"$RUN/podman-pull.log" || return 1
  CLEANUP+=("podman rmi -f '$IMAGE_AT' >/dev/null 2>&1")
  podman_probe "$IMAGE_AT" --version || return 1
  VERSION_OUT="$PROBE_OUT"
}

if [[ "$RUNNER" == auto ]]; then
  if podman_works; then RUNNER=podman; else RUNNER=rootfs; fi
  say "runner: $RUNNER"
elif [[ "$RUNNER" == podman ]]; then
  need podman
  podman_works || { cat "$RUN/podman-pull.log" "$IMAGE_WORK/podman-probe.log" >&2; fail "podman cannot run the image here"; }
fi

if [[ "$RUNNER" == podman ]]; then
  say "podman $(podman --version | awk '{print $3}') ${PODMAN_OPTS[*]:-(default options)}"
  NAME="imagegate-check-$$"
  CLEANUP+=("podman rm -f $NAME-srv $NAME-cmd >/dev/null 2>&1")
  common=("${PODMAN_OPTS[@]}" --read-only --cap-drop=ALL --security-opt=no-new-privileges)
  start_server() {
    podman run -d --name "$NAME-srv" "${common[@]}" --network host \
      -v "$RUN/policy:/etc/imagegate/policy:ro" -v "$RUN/tls:/etc/imagegate/tls:ro" \
      "$IMAGE_AT" "$@" >/dev/null
    SERVER_PID="$(podman inspect -f '{{.State.Pid}}' "$NAME-srv")"
  }
  check_sandbox() {
    [[ "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$NAME-srv")" == true ]] \
      || fail "podman did not make the root filesystem read-only"
  }
  server_running() { [[ "$(podman inspect -f '{{.State.Running}}' "$NAME-srv" 2>/dev/null)" == true ]]; }
  stop_server() {
    podman stop -t 30 "$NAME-srv" >/dev/null
    podman logs "$NAME-srv" > "$RUN/server.log" 2>&1 || true
    STOP_RC="$(podman inspect -f '{{.State.ExitCode}}' "$NAME-srv")"
  }
  start_default() { podman run -d --name "$NAME-cmd" "${common[@]}" --network none "$IMAGE_AT" >/dev/null; }
  default_log() { podman logs "$NAME-cmd" 2>&1; }
  stop_default() { podman stop -t 10 "$NAME-cmd" >/dev/null; STOP_RC="$(podman inspect -f '{{.State.ExitCode}}' "$NAME-cmd")"; }
else
  skopeo copy -q --src-tls-verify=false "docker://$IMAGE_AT" "oci:$RUN/oci:run"
  umoci unpack --image "$RUN/oci:run" "$RUN/bundle" >/dev/null
  ROOTFS="$RUN/bundle/rootfs"
  # mount points a runtime would create
  mkdir -p "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/etc/imagegate/policy" "$ROOTFS/etc/imagegate/tls"
  # in_image host|none ARGS...: the entrypoint with ARGS, as the image's
  # user, rooted in the read-only rootfs; replaces the calling shell.
  in_image() {
    local net=()
    [[ "$1" == none ]] && net=(--net)
    shift
    exec unshare --mount --propagation private "${net[@]}" -- bash -euc '
      R=$1; shift
      mount --bind "$R" "$R"
      mount --rbind /dev "$R/dev"
      mount -t proc proc "$R/proc"
      mount --bind "'"$RUN"'/policy" "$R/etc/imagegate/policy"
      mount -o remount,bind,ro "$R/etc/imagegate/policy"
      mount --bind "'"$RUN"'/tls" "$R/etc/imagegate/tls"
      mount -o remount,bind,ro "$R/etc/imagegate/tls"
      mount -o remount,bind,ro "$R"
      exec "$@"' bash "$ROOTFS" \
      env -i "${ENVS[@]}" setpriv --no-new-privs \
      nsenter --root="$ROOTFS" --wd="$ROOTFS$WORKDIR" --setuid="$UID_" --setgid="$GID_" \
      "${ENTRYPOINT[@]}" "$@"
  }
  VERSION_OUT="$( (in_image none --version) )"
  start_server() {
    (in_image host "$@") > "$RUN/server.log" 2>&1 &
    SERVER_PID=$!
    CLEANUP+=("kill -KILL $SERVER_PID 2>/dev/null")
  }
  check_sandbox() {
    awk '$5 == "/" && $6 ~ /^ro(,|$)/ {found = 1} END {exit !found}' "/proc/$SERVER_PID/mountinfo" \
      || fail "the root filesystem is not mounted read-only for the server"
    [[ "$(readlink "/proc/$SERVER_PID/root")" == "$ROOTFS" ]] || fail "the server does not run in the image's rootfs"
    [[ "$(readlink "/proc/$SERVER_PID/cwd")" == "$ROOTFS$WORKDIR" ]] || fail "the server's working directory is not $WORKDIR"
  }
  server_running() { kill -0 "$SERVER_PID" 2>/dev/null; }
  stop_server() { kill -TERM "$SERVER_PID"; STOP_RC=0; wait "$SERVER_PID" || STOP_RC=$?; }
  start_default() {
    mapfile -t CMD < <(jq -r '.config.Cmd[]' "$RUN/config.json")
    (in_image none "${CMD[@]}") > "$RUN/default.log" 2>&1 &
    DEFAULT_PID=$!
    CLEANUP+=("kill -KILL $DEFAULT_PID 2>/dev/null")
  }
  default_log() { cat "$RUN/default.log"; }
  stop_default() { kill -TERM "$DEFAULT_PID"; STOP_RC=0; wait "$DEFAULT_PID" || STOP_RC=$?; }
  say "rootfs $ROOTFS"
fi

[[ "$VERSION_OUT" == "imagegate $CARGO_VERSION" ]] || fail "--version printed '$VERSION_OUT', want 'imagegate $CARGO_VERSION'"
pass "$RUNNER: \`IMAGE --version\` prints '$VERSION_OUT'"

# --- the Deployment's args ---
start_server "${ARGS[@]}"
CURL=(curl -fsS --max-time 5 --cacert "$RUN/tls/tls.crt")
up=""
for _ in $(seq 1 100); do
  if "${CURL[@]}" -o /dev/null "https://127.0.0.1:$WEB_PORT/healthz" 2>/dev/null; then up=1; break; fi
  server_running || break
  sleep 0.1
done
[[ -n "$up" ]] || { stop_server || true; cat "$RUN/server.log" >&2; fail "the server did not answer /healthz"; }
check_sandbox
status_uid="$(awk '/^Uid:/ {print $2":"$3":"$4":"$5}' "/proc/$SERVER_PID/status")"
status_gid="$(awk '/^Gid:/ {print $2}' "/proc/$SERVER_PID/status")"
groups="$(awk '/^Groups:/ {$1=""; print $0}' "/proc/$SERVER_PID/status" | xargs)"
[[ "$status_uid" == "$UID_:$UID_:$UID_:$UID_" && "$status_gid" == "$GID_" ]] \
  || fail "the server runs as uid $status_uid gid $status_gid, the image says $USER_SPEC"
caps="$(awk '/^CapEff:/ {print $2}' "/proc/$SERVER_PID/status")"
[[ "$caps" == 0000000000000000 ]] || fail "the server has capabilities $caps"
pass "$RUNNER: server pid $SERVER_PID runs as $UID_:$GID_ (groups: ${groups:-none}), no capabilities, read-only root filesystem"
"${CURL[@]}" "https://127.0.0.1:$WEB_PORT/readyz" >/dev/null || fail "/readyz"
pass "$RUNNER: /healthz and /readyz answer 200 over HTTPS with the mounted certificate"
review='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"run-check-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE","namespace":"default","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"a","image":"nginx:1.27"},{"name":"b","image":"nginx"}]}}}}'
answer="$("${CURL[@]}" -H 'content-type: application/json' -d "$review" "https://127.0.0.1:$WEB_PORT/validate")"
[[ "$(jq -r '.response.uid' <<< "$answer")" == run-check-1 && "$(jq -r '.response.allowed' <<< "$answer")" == true ]] \
  || fail "/validate answered $answer"
jq -e '.response.warnings // [] | any(test("nginx"))' <<< "$answer" >/dev/null \
  || fail "/validate (audit mode) gave no warning for the untagged image: $answer"
pass "$RUNNER: /validate judges an AdmissionReview with the mounted policy (audit mode: allowed, warning for \`nginx\`)"
metrics="$(curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics")"
grep -q "^imagegate_build_info{version=\"$CARGO_VERSION\"} 1" <<< "$metrics" || fail "/metrics has no imagegate_build_info for $CARGO_VERSION"
pass "$RUNNER: /metrics on the metrics listener (imagegate_build_info version $CARGO_VERSION)"
t0=$SECONDS
stop_server
[[ "$STOP_RC" == 0 ]] || { cat "$RUN/server.log" >&2; fail "exit status $STOP_RC after SIGTERM"; }
grep -q 'shutdown complete' "$RUN/server.log" || fail "no 'shutdown complete' in the server log"
pass "$RUNNER: SIGTERM: drained and exited 0 in $((SECONDS - t0)) s (--shutdown-delay from the manifest)"
if grep -qiE 'read-only file system|permission denied' "$RUN/server.log"; then
  fail "the server log mentions a write or permission failure: $(grep -iE 'read-only file system|permission denied' "$RUN/server.log" | head -n 1)"
fi

# --- the default CMD ---
start_default
ok=""
for _ in $(seq 1 50); do
  if default_log | grep -q 'imagegate serving'; then ok=1; break; fi
  sleep 0.1
done
[[ -n "$ok" ]] || { default_log >&2; fail "the default CMD did not start serving"; }
default_log | grep -q '"listen":"0.0.0.0:8443"\|0\.0\.0\.0:8443' || fail "the default CMD does not listen on 0.0.0.0:8443"
stop_default
[[ "$STOP_RC" == 0 ]] || fail "default CMD: exit status $STOP_RC after SIGTERM"
pass "$RUNNER: the default CMD serves on 0.0.0.0:8443 with the built-in policy (isolated network) and exits 0 on SIGTERM"

say "done in $((SECONDS - START)) s ($RUNNER)"
say "$PASSED passed, 0 failed"
