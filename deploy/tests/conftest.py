"""Fixtures of the deploy checks: the imagegate binary and the rendered
kustomizations (helpers are in support.py).

Overlays are rendered with `kubectl kustomize` (kustomize is built into
kubectl; Debian has no `kustomize` package and the PyPI package of that name
is an unrelated reimplementation). The no-cert-manager overlay needs the
files its make-certs.sh writes, so it is rendered from a temporary copy of
deploy/ after running the script there; the repository is never written to.
The same copy holds each in-cluster overlay a second time with the optional
mutating webhook component enabled (support.WITH_MUTATING).
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from support import DEPLOY, KUSTOMIZATIONS, WITH_MUTATING, enable_mutating_webhook, imagegate_bin, kubectl_kustomize


@pytest.fixture(scope="session")
def binary() -> Path:
    return imagegate_bin()


@pytest.fixture(scope="session")
def deploy_copy(tmp_path_factory) -> Path:
    """A copy of deploy/ with the no-cert-manager certificates made in it."""
    root = tmp_path_factory.mktemp("deploy-copy")
    copy = root / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("certs", "__pycache__", ".pytest_cache"))
    script = copy / "overlays/no-cert-manager/make-certs.sh"
    subprocess.run(["sh", str(script)], check=True, capture_output=True, timeout=60)
    for name, folder in WITH_MUTATING.items():
        # A sibling folder: the overlay's relative paths stay valid.
        variant = copy / "overlays" / name
        shutil.copytree(copy / folder, variant)
        enable_mutating_webhook(variant)
    return copy


@pytest.fixture(scope="session")
def rendered(deploy_copy) -> dict[str, list[dict]]:
    """name -> the objects `kubectl kustomize` renders for it."""
    out = {name: kubectl_kustomize(deploy_copy / folder) for name, folder in KUSTOMIZATIONS.items()}
    for name in WITH_MUTATING:
        out[name] = kubectl_kustomize(deploy_copy / "overlays" / name)
    return out
