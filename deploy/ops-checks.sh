#!/usr/bin/env bash
# The operations checks, as CI runs them (from the repository root or
# anywhere):
#   - every manifest under deploy/ validated against the Kubernetes schemas
#     (kubernetes-validate, pinned versions) as written and as rendered by
#     `kubectl kustomize`, plus the cross-reference, certificate and CEL
#     matchCondition tests (deploy/tests);
#   - the alerting rules: promtool check rules + promtool test rules;
#   - the dashboard and rules evaluated by a real Prometheus scraping a real
#     imagegate under load (dashboards/tests).
#
# Needs: python3 with deploy/requirements.txt, promtool and prometheus
# (Debian package `prometheus`), openssl, curl, kubectl (for kustomize).
# The binary under test is $IMAGEGATE_BIN, else the debug build (built here
# if needed; `cargo test` has usually built it already).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in python3 promtool prometheus openssl curl kubectl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
python3 -c 'import kubernetes_validate, celpy, pytest, yaml' 2>/dev/null \
  || missing+=("python packages: python3 -m pip install -r deploy/requirements.txt")
if ((${#missing[@]})); then
  printf 'ops-checks: missing %s\n' "${missing[@]}" >&2
  exit 1
fi

if [[ -z "${IMAGEGATE_BIN:-}" ]]; then
  cargo build --locked --quiet --bin imagegate
  IMAGEGATE_BIN="$PWD/target/debug/imagegate"
fi
export IMAGEGATE_BIN
export PYTHONDONTWRITEBYTECODE=1

echo "ops-checks: promtool"
promtool check rules dashboards/alerts.yaml
promtool test rules dashboards/alerts.test.yaml

echo "ops-checks: pytest (binary $IMAGEGATE_BIN)"
exec python3 -m pytest -p no:cacheprovider -q deploy/tests dashboards/tests
