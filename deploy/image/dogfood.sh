#!/usr/bin/env bash
# imagegate's own image must pass imagegate's own supply-chain policy.
#
#   deploy/image/dogfood.sh [BINARY]     (the imagegate that runs `check`;
#                                         default $IMAGEGATE_BIN, else
#                                         target/release/imagegate)
#
# On the image build.sh pushed ($IMAGE_REF):
#   1. an SBOM of imagegate itself: cargo-cyclonedx from Cargo.lock
#      (CycloneDX 1.5 JSON), validated against the CycloneDX JSON schema
#      offline (supply_chain.py, schemas of cyclonedx-python-lib);
#   2. a vulnerability-scan predicate (cosign vuln/v1 around a Trivy-shaped
#      report). No vulnerability database is reachable here, so it is a
#      stand-in with no findings; a release attests a real scan;
#   3. a keyed cosign signature and the two attestations, signed with
#      examples/keys/example.key (cosign_oci.py; cross-checked with
#      `openssl dgst -verify` against example.pub);
#   4. `imagegate check --policy examples/policy-self.yaml IMAGE` allows it,
#      by tag and by digest; then each piece is taken away in turn and the
#      check must deny with signature_missing, sbom_missing,
#      vuln_report_missing; a finding above maxCvss gives vulnerable, a scan
#      older than maxAge vuln_report_stale, a signature by another key
#      signature_invalid. Everything is put back at the end.
# The image is signed with a key only: a keyless signature of it would
# need a Fulcio and a Rekor to sign with. Keyless verification itself is
# tested against @sigstore/mock bundles (tests/it/verify_keyless.rs).
#
# Needs: curl, jq, openssl, python3 with deploy/image/requirements.txt,
# cargo-cyclonedx (cargo install cargo-cyclonedx --locked --version 0.5.9).
SCRIPT=dogfood.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
BIN="${1:-${IMAGEGATE_BIN:-$ROOT/target/release/imagegate}}"
[[ "$BIN" == /* ]] || BIN="$PWD/$BIN"
[[ -x "$BIN" ]] || fail "no executable at $BIN (pass the imagegate binary's path)"
export PATH="$PATH:$HOME/.cargo/bin"
need curl jq openssl python3 docker-registry cargo cargo-cyclonedx
need_python 'import cryptography, cyclonedx.validation.json, jsonschema'
START=$SECONDS
cd "$ROOT" || exit 1   # the policy names its key relative to the repository root

DF="$IMAGE_WORK/dogfood"
rm -rf "$DF"
mkdir -p "$DF"
KEY=examples/keys/example.key
PUB=examples/keys/example.pub
POLICY=examples/policy-self.yaml
if [[ "$IMAGE_REGISTRY/$IMAGE_REPO" != 127.0.0.1:5000/imagegate/imagegate ]]; then
  sed "s#127\.0\.0\.1:5000#$IMAGE_REGISTRY#g; s#$IMAGE_REGISTRY/imagegate/imagegate#$IMAGE_REGISTRY/$IMAGE_REPO#" \
    "$POLICY" > "$DF/policy-self.yaml"
  say "policy: $POLICY for $IMAGE_REGISTRY/$IMAGE_REPO, as $DF/policy-self.yaml"
  POLICY="$DF/policy-self.yaml"
fi
"$BIN" policy validate "$POLICY" >/dev/null || fail "$POLICY does not validate"

registry_up
DIGEST="$(curl -fsSI -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' \
  "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/manifests/$IMAGE_TAG" | tr -d '\r' \
  | awk -F': ' 'tolower($1) == "docker-content-digest" {print $2}')" || true
[[ "$DIGEST" == sha256:* ]] || fail "$IMAGE_REF is not in the registry (run deploy/image/build.sh first)"
say "image $IMAGE_REF = $IMAGE_REGISTRY/$IMAGE_REPO@$DIGEST"
COSIGN=(python3 "$HERE/cosign_oci.py")

# --- 1. SBOM of imagegate, from Cargo.lock ---
# cargo-cyclonedx writes next to the manifest and may rewrite a stale
# Cargo.lock: run it on a copy of both (the sources are linked).
SRC="$DF/sbom-src"
mkdir -p "$SRC"
for f in "$ROOT"/*; do
  case "${f##*/}" in target|Cargo.toml|Cargo.lock) ;; *) ln -s "$f" "$SRC/" ;; esac
done
cp "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" "$SRC/"
t0=$SECONDS
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)" \
  cargo cyclonedx -q --manifest-path "$SRC/Cargo.toml" --format json --spec-version 1.5 \
  --describe binaries --no-build-deps
cmp -s "$ROOT/Cargo.lock" "$SRC/Cargo.lock" || fail "Cargo.lock is out of date with Cargo.toml (cargo-cyclonedx changed it)"
mv "$SRC/imagegate_bin.cdx.json" "$DF/imagegate.cdx.json"
say "SBOM: cargo-cyclonedx $(cargo cyclonedx --version | awk '{print $NF}') in $((SECONDS - t0)) s: $DF/imagegate.cdx.json"
python3 "$HERE/supply_chain.py" check-sbom "$DF/imagegate.cdx.json"
pass "SBOM: CycloneDX from Cargo.lock, valid against the CycloneDX JSON schema, describes imagegate $CARGO_VERSION"

# --- 2. vulnerability-scan predicates ---
SC=(python3 "$HERE/supply_chain.py" vuln-predicate "$DF/imagegate.cdx.json" "$IMAGE_REF" "$DIGEST")
"${SC[@]}" "$DF/vuln.json"
"${SC[@]}" "$DF/vuln-critical.json" --finding 9.8
"${SC[@]}" "$DF/vuln-stale.json" --age 200
SBOM_T=https://cyclonedx.org/bom
VULN_T=https://cosign.sigstore.dev/attestation/vuln/v1

# --- 3. sign and attest ---
"${COSIGN[@]}" sign "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" "$KEY" --out "$DF/signed"
"${COSIGN[@]}" attest "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" "$KEY" --out "$DF/signed" \
  "$SBOM_T=$DF/imagegate.cdx.json" "$VULN_T=$DF/vuln.json"

# Independent check of what the registry now holds, with OpenSSL only.
tag="$(tr : - <<< "$DIGEST")"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
curl -fsS -H "$ACCEPT" "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/manifests/$tag.sig" > "$DF/sig-manifest.json"
curl -fsS "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/blobs/$(jq -r '.layers[0].digest' "$DF/sig-manifest.json")" > "$DF/payload.json"
jq -r '.layers[0].annotations["dev.cosignproject.cosign/signature"]' "$DF/sig-manifest.json" | base64 -d > "$DF/payload.sig"
openssl dgst -sha256 -verify "$PUB" -signature "$DF/payload.sig" "$DF/payload.json" >/dev/null \
  || fail "openssl does not verify the .sig payload with $PUB"
[[ "$(jq -r '.critical.image["docker-manifest-digest"]' "$DF/payload.json")" == "$DIGEST" ]] || fail ".sig payload names another digest"
curl -fsS -H "$ACCEPT" "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/manifests/$tag.att" > "$DF/att-manifest.json"
n=0
for d in $(jq -r '.layers[].digest' "$DF/att-manifest.json"); do
  curl -fsS "http://$IMAGE_REGISTRY/v2/$IMAGE_REPO/blobs/$d" > "$DF/env.json"
  jq -r .payload "$DF/env.json" | base64 -d > "$DF/statement.json"
  jq -r '.signatures[0].sig' "$DF/env.json" | base64 -d > "$DF/env.sig"
  pt="$(jq -r .payloadType "$DF/env.json")"
  { printf 'DSSEv1 %d %s %d ' "${#pt}" "$pt" "$(stat -c %s "$DF/statement.json")"; cat "$DF/statement.json"; } > "$DF/pae.bin"
  openssl dgst -sha256 -verify "$PUB" -signature "$DF/env.sig" "$DF/pae.bin" >/dev/null \
    || fail "openssl does not verify the attestation envelope $d with $PUB"
  [[ "$(jq -r '.subject[0].digest.sha256' "$DF/statement.json")" == "${DIGEST#sha256:}" ]] || fail "attestation $d names another digest"
  n=$((n + 1))
done
[[ $n == 2 ]] || fail "expected 2 attestation layers, found $n"
pass "signature and both attestations verify with openssl against $PUB and name $DIGEST"

# --- 4. imagegate judges it ---
# expect DECISION REASON WHAT [IMAGE]
expect() {
  local want="$1" reason="$2" what="$3" image="${4:-$IMAGE_REF}" out rc=0
  out="$("$BIN" check --policy "$POLICY" --output json "$image" 2> "$DF/check.err")" || rc=$?
  local got got_reason
  got="$(jq -r '.images[0].decision' <<< "$out" 2>/dev/null)"
  got_reason="$(jq -r '.images[0].reason' <<< "$out" 2>/dev/null)"
  local want_rc=0
  [[ "$want" == deny ]] && want_rc=1
  if [[ "$got" != "$want" || "$got_reason" != "$reason" || "$rc" != "$want_rc" ]]; then
    printf '%s\n' "$out" >&2; cat "$DF/check.err" >&2
    fail "$what: got $got/$got_reason (exit $rc), want $want/$reason (exit $want_rc)"
  fi
  pass "$what: imagegate check -> $want [$reason] (exit $rc)"
}
att() { "${COSIGN[@]}" attest "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" "$KEY" "$@" >/dev/null; }

expect allow allowed "signed, SBOM, scan"
expect allow allowed "signed, SBOM, scan (by digest)" "$IMAGE_REGISTRY/$IMAGE_REPO@$DIGEST"

"${COSIGN[@]}" remove "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" sig >/dev/null
expect deny signature_missing "signature removed"
"${COSIGN[@]}" sign "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" "$KEY" >/dev/null

att "$VULN_T=$DF/vuln.json"
expect deny sbom_missing "SBOM attestation removed"

att "$SBOM_T=$DF/imagegate.cdx.json"
expect deny vuln_report_missing "vulnerability attestation removed"

"${COSIGN[@]}" remove "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" att >/dev/null
expect deny sbom_missing "both attestations removed"

att "$SBOM_T=$DF/imagegate.cdx.json" "$VULN_T=$DF/vuln-critical.json"
expect deny vulnerable "scan with a CVSS 9.8 finding (maxCvss 7.0)"

att "$SBOM_T=$DF/imagegate.cdx.json" "$VULN_T=$DF/vuln-stale.json"
expect deny vuln_report_stale "scan finished 200 h ago (maxAge 168h)"

att "$SBOM_T=$DF/imagegate.cdx.json" "$VULN_T=$DF/vuln.json"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$DF/other.key" 2>/dev/null
"${COSIGN[@]}" sign "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" "$DF/other.key" >/dev/null
expect deny signature_invalid "signed by a key the policy does not list"

"${COSIGN[@]}" sign "$IMAGE_REGISTRY" "$IMAGE_REPO" "$DIGEST" "$KEY" >/dev/null
expect allow allowed "everything back"

say "keyless: the image is signed with a key only (keyless verification: tests/it/verify_keyless.rs)"
say "done in $((SECONDS - START)) s"
say "$PASSED passed, 0 failed"
