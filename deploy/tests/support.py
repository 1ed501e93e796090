"""Helpers of the deploy checks: the imagegate binary, free ports, a server
process, `kubectl kustomize` and YAML lookups. Fixtures are in conftest.py."""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent
REPO = DEPLOY.parent

# Every rendering the checks look at: name -> kustomization folder under deploy/.
KUSTOMIZATIONS = {
    "base": "base",
    "cert-manager": "overlays/cert-manager",
    "no-cert-manager": "overlays/no-cert-manager",
    "imagepolicywebhook": "imagepolicywebhook",
}
# The in-cluster overlays rendered again with the optional mutating webhook
# enabled the way deploy/README.md says: the overlay's commented
# `components:` stanza uncommented (in a copy).
MUTATING_COMPONENT = "../../components/mutating-webhook"
WITH_MUTATING = {
    "cert-manager+mutating": "overlays/cert-manager",
    "no-cert-manager+mutating": "overlays/no-cert-manager",
}
RENDERINGS = [*KUSTOMIZATIONS, *WITH_MUTATING]


def imagegate_bin() -> Path:
    """The binary under test: $IMAGEGATE_BIN, else the newest of the
    release and debug builds in target/."""
    env = os.environ.get("IMAGEGATE_BIN")
    if env:
        return Path(env)
    found = [p for p in (REPO / "target/release/imagegate", REPO / "target/debug/imagegate") if p.exists()]
    if not found:
        pytest.fail("no imagegate binary: run `cargo build` or set IMAGEGATE_BIN")
    return max(found, key=lambda p: p.stat().st_mtime)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_ready(url: str, proc: subprocess.Popen, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"imagegate exited with {proc.returncode} before {url} was ready:\n{out}")
        try:
            if http_status(url, 0.5) == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} not ready within {deadline_s}s")


class Server:
    """An `imagegate serve` child process, stopped with SIGTERM on exit."""

    def __init__(self, binary: Path, args: list[str]):
        self.proc = subprocess.Popen(
            [str(binary), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def kubectl_kustomize(folder: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (for `kubectl kustomize`) is required in CI")
        pytest.skip("kubectl not installed: overlays cannot be rendered")
    out = subprocess.run(
        [kubectl, "kustomize", str(folder)], check=False, capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        pytest.fail(f"kubectl kustomize {folder} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def enable_mutating_webhook(overlay: Path) -> None:
    """Uncomment the overlay's optional `components:` stanza, in place."""
    path = overlay / "kustomization.yaml"
    text = path.read_text()
    stanza = f"# components:\n#   - {MUTATING_COMPONENT}\n"
    assert text.count(stanza) == 1, f"{path} has no commented stanza enabling {MUTATING_COMPONENT}"
    path.write_text(text.replace(stanza, f"components:\n  - {MUTATING_COMPONENT}\n"))


def load_yaml_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def find(objs: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: list[dict], kind: str, name: str | None = None) -> dict:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]
