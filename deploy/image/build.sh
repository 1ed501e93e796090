#!/usr/bin/env bash
# Assembles imagegate's container image without a container engine, from an
# already built binary, and pushes it to a loopback registry.
#
#   deploy/image/build.sh [BINARY]       (default $IMAGEGATE_BIN, else
#                                         target/release/imagegate)
#
# The image is the one the top-level Containerfile builds: distroless `cc`
# (Debian 12) contents taken from this Debian 12 machine in one layer
# (glibc and libgcc as `ldd` lists them, CA certificates, /etc/passwd and
# /etc/group with `nonroot` 65532, nsswitch.conf, os-release, dpkg status
# entries and copyright files of the packages copied, /tmp, /home/nonroot),
# and the binary at /usr/local/bin/imagegate in a second layer; the config
# is the Containerfile's (user, entrypoint, cmd, exposed ports, labels, env,
# working directory). A debug build's debug info is stripped to keep the
# layer small; a release binary (which has none) is copied unchanged.
#
# Tools: umoci (OCI layout), skopeo (push), docker-registry (when nothing
# answers at $IMAGE_REGISTRY), curl, jq. Layer and config timestamps come
# from the last commit (SOURCE_DATE_EPOCH), so one commit and one binary
# give one digest.
#
# Writes $IMAGE_WORK/oci (the layout), $IMAGE_WORK/image.ref and
# $IMAGE_WORK/image.digest. Settings: see lib.sh.
SCRIPT=build.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

BIN="${1:-${IMAGEGATE_BIN:-$ROOT/target/release/imagegate}}"
[[ -x "$BIN" ]] || fail "no executable at $BIN (cargo build --release --locked, or pass the binary's path)"
need umoci skopeo curl jq ldd docker-registry readelf strip
[[ "$(uname -m)" == x86_64 ]] || fail "this script assembles linux/amd64 images only (machine: $(uname -m))"

EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}"
CREATED="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
REVISION="$(git_revision)"
SOURCE_URL="https://github.com/imagegate/imagegate"
LAYOUT="$IMAGE_WORK/oci"
STAGE="$IMAGE_WORK/stage"
START=$SECONDS

rm -rf "$LAYOUT" "$STAGE"
mkdir -p "$STAGE"

# --- layer 1: the runtime base (what distroless/cc-debian12:nonroot holds) ---
BASE="$STAGE/base"
mkdir -p "$BASE"/{etc/ssl/certs,home/nonroot,root,tmp,usr/bin,usr/sbin,usr/lib64,usr/local/bin,usr/lib/x86_64-linux-gnu,var/lib/dpkg/status.d,usr/share/doc}
# merged /usr, as Debian 12
for d in bin sbin lib lib64; do ln -s "usr/$d" "$BASE/$d"; done
chmod 0700 "$BASE/root" "$BASE/home/nonroot"
chmod 1777 "$BASE/tmp"
chown 65532:65532 "$BASE/home/nonroot"

cat > "$BASE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$BASE/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
# glibc >= 2.34 has `files` and `dns` built in: no libnss_* needed.
cat > "$BASE/etc/nsswitch.conf" <<'EOF'
passwd:   files
group:    files
hosts:    files dns
networks: files
protocols: files
services: files
EOF
cp /etc/ssl/certs/ca-certificates.crt "$BASE/etc/ssl/certs/ca-certificates.crt"
cp -L /etc/os-release "$BASE/etc/os-release"

# The shared libraries the binary loads, at the paths ldd reports (through
# the /lib -> usr/lib links), real files copied from this machine.
libs=()
while read -r path; do
  [[ -n "$path" ]] || continue
  real="$(readlink -f "$path")"
  mkdir -p "$BASE$(dirname "$real")"
  cp -L "$path" "$BASE$real"
  libs+=("$path")
  # /lib64/ld-linux-x86-64.so.2 is a link on Debian: keep it one.
  canon="/usr${path#/usr}"
  if [[ "$canon" != "$real" && ! -e "$BASE$canon" ]]; then
    mkdir -p "$BASE$(dirname "$canon")"
    ln -s "$real" "$BASE$canon"
  fi
done < <(ldd "$BIN" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}')
((${#libs[@]} > 0)) || fail "ldd lists no shared libraries for $BIN (a static binary needs none; this script expects glibc)"

# dpkg status entries and copyright files of the packages files came from,
# so scanners (Trivy, Grype) see what the image holds, as in distroless.
pkgs=(base-files ca-certificates)
for f in "${libs[@]}"; do
  # dpkg knows the paths before the /usr merge, as ldd prints them
  p="$(dpkg-query -S "$f" 2>/dev/null | head -n 1 | cut -d: -f1)" || true
  [[ -n "$p" ]] && pkgs+=("$p")
done
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
for p in "${pkgs[@]}"; do
  dpkg-query -s "$p" > "$BASE/var/lib/dpkg/status.d/${p%%:*}"
  if [[ -f "/usr/share/doc/${p%%:*}/copyright" ]]; then
    mkdir -p "$BASE/usr/share/doc/${p%%:*}"
    cp "/usr/share/doc/${p%%:*}/copyright" "$BASE/usr/share/doc/${p%%:*}/copyright"
  fi
done

# --- layer 2: the binary ---
APP="$STAGE/app"
mkdir -p "$APP/usr/local/bin"
how="$(image_binary "$BIN" "$APP/usr/local/bin/imagegate")"
say "binary: $BIN ($how)"
chmod 0755 "$APP/usr/local/bin/imagegate"
chown -R 0:0 "$APP" "$BASE"
chown 65532:65532 "$BASE/home/nonroot"

# --- the OCI layout ---
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:$IMAGE_TAG"
umoci unpack --image "$LAYOUT:$IMAGE_TAG" "$STAGE/bundle" >/dev/null
ROOTFS="$STAGE/bundle/rootfs"
stamp() { find "$ROOTFS" -exec touch -h -d "@$EPOCH" {} +; }

cp -a "$BASE/." "$ROOTFS/"
stamp
umoci repack --image "$LAYOUT:$IMAGE_TAG" --refresh-bundle --history.created "$CREATED" \
  --history.created_by "distroless/cc-debian12:nonroot contents from Debian $(cat /etc/debian_version): ${pkgs[*]}" \
  "$STAGE/bundle"
cp -a "$APP/." "$ROOTFS/"
stamp
umoci repack --image "$LAYOUT:$IMAGE_TAG" --history.created "$CREATED" \
  --history.created_by "COPY imagegate /usr/local/bin/imagegate" "$STAGE/bundle"

umoci config --image "$LAYOUT:$IMAGE_TAG" --no-history \
  --created "$CREATED" --architecture amd64 --os linux \
  --config.user 65532:65532 \
  --config.workingdir /home/nonroot \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --config.entrypoint /usr/local/bin/imagegate \
  --config.cmd serve --config.cmd --listen=0.0.0.0:8443 \
  --config.exposedports 8443/tcp --config.exposedports 9090/tcp \
  --config.label org.opencontainers.image.title=imagegate \
  --config.label "org.opencontainers.image.description=Kubernetes image admission webhook: ImageReview and AdmissionReview from one policy engine" \
  --config.label "org.opencontainers.image.source=$SOURCE_URL" \
  --config.label "org.opencontainers.image.revision=$REVISION" \
  --config.label "org.opencontainers.image.version=$CARGO_VERSION" \
  --config.label org.opencontainers.image.licenses=Apache-2.0
umoci gc --layout "$LAYOUT"

MANIFEST="$(jq -r --arg t "$IMAGE_TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$LAYOUT/index.json")"
[[ "$MANIFEST" == sha256:* ]] || fail "no manifest for tag $IMAGE_TAG in $LAYOUT"
blob() { echo "$LAYOUT/blobs/sha256/${1#sha256:}"; }
LAYERS_BYTES="$(jq '[.layers[].size] | add' "$(blob "$MANIFEST")")"
CONFIG_BYTES="$(jq '.config.size' "$(blob "$MANIFEST")")"
ROOTFS_BYTES="$(du -sb --apparent-size "$ROOTFS" | cut -f1)"
say "layout $LAYOUT: manifest $MANIFEST, $(jq '.layers | length' "$(blob "$MANIFEST")") layers"

# --- push ---
registry_up fresh
skopeo copy -q --preserve-digests --dest-tls-verify=false \
  "oci:$LAYOUT:$IMAGE_TAG" "docker://$IMAGE_REF"
PUSHED="$(curl -fsS -o /dev/null -w '%header{docker-content-digest}' \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/manifests/$IMAGE_TAG" 2>/dev/null || true)"
if [[ -z "$PUSHED" ]]; then  # curl < 7.84 has no %header{}
  PUSHED="$(curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/manifests/$IMAGE_TAG" | tr -d '\r' \
    | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}')"
fi
[[ "$PUSHED" == "$MANIFEST" ]] || fail "registry has $PUSHED for $IMAGE_REF, the layout $MANIFEST"
echo "$IMAGE_REF" > "$IMAGE_WORK/image.ref"
echo "$MANIFEST" > "$IMAGE_WORK/image.digest"
echo "$REVISION" > "$IMAGE_WORK/image.revision"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "pushed $IMAGE_REF@$MANIFEST"
say "size: $(mib $((LAYERS_BYTES + CONFIG_BYTES))) compressed (what a node pulls), $(mib "$ROOTFS_BYTES") unpacked; binary $(mib "$(stat -c %s "$APP/usr/local/bin/imagegate")")"
say "done in $((SECONDS - START)) s"
