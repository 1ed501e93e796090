#!/usr/bin/env bash
# Cold keyless verification in registry round trips: runs the `discovery`
# example (a real docker-registry on loopback behind a proxy that holds each
# request 20 ms, a fresh verifier per try) and writes its table to
# loadtest/RESULTS-discovery.md.
#
# usage: loadtest/discovery.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
[ -x /usr/bin/docker-registry ] || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 2; }
cargo build --release --locked --example discovery
table=$(target/release/examples/discovery)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "# Cold verification: registry round trips"
  echo
  echo "Written by \`loadtest/discovery.sh\` on $(date -u +%Y-%m-%d) at commit $commit ($(nproc) cores)."
  echo "A real \`docker-registry\` on loopback (no referrers API: the fallback tag is read) behind a proxy"
  echo "that holds every request 20 ms; each try a fresh verifier (empty caches, new connections); medians"
  echo "of 7 tries. \"Round trips\" is the difference between the two medians over 20 ms: the length of"
  echo "the chain of requests that wait on one another (the rest is CPU and loopback time)."
  echo
  echo "$table"
  echo
  echo "The chain is what the formats allow: from a tag, the digest first (HEAD); then at once the"
  echo "\`.sig\` and \`.att\` tags, the referrers API and the fallback tag; then every referrer's manifest"
  echo "at once; then every bundle or layer blob at once. cosign v3 bundles sit one level deeper than"
  echo "cosign v2 layers (listing, manifest, blob), so from a tag they cost four round trips and from a"
  echo "digest three; cosign v2 layers three and two."
} > loadtest/RESULTS-discovery.md
cat loadtest/RESULTS-discovery.md
