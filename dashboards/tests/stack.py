"""A real Prometheus scraping a real imagegate under a bounded load, for the
dashboard tests. Everything listens on 127.0.0.1 on free ports, lives in a
temporary folder, is bounded in time, and is stopped by PID on exit.

Prometheus is Debian's (`prometheus` package, /usr/bin/prometheus, or
$PROMETHEUS_BIN); imagegate is $IMAGEGATE_BIN or the newest build in target/.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

DASHBOARDS = Path(__file__).resolve().parent.parent
REPO = DASHBOARDS.parent
FIXTURES = REPO / "tests/fixtures/review"

GOOD_POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
spec:
  mode: enforce
  registries:
    allow: [registry.example.com, nginx]
    deny: [evil.example.com]
  tags:
    requireTagOrDigest: true
    forbid: [latest]
  exemptions:
    namespaces: [kube-system]
  overrides:
    - namespaces: ["sandbox-*"]
      mode: audit
"""
# Unknown field: rejected at reload, the previous policy keeps serving.
BAD_POLICY = GOOD_POLICY.replace("mode: enforce", "mode: enforce\n  moed: audit")


def imagegate_bin() -> Path:
    env = os.environ.get("IMAGEGATE_BIN")
    if env:
        return Path(env)
    found = [p for p in (REPO / "target/release/imagegate", REPO / "target/debug/imagegate") if p.exists()]
    if not found:
        pytest.fail("no imagegate binary: run `cargo build` or set IMAGEGATE_BIN")
    return max(found, key=lambda p: p.stat().st_mtime)


def prometheus_bin() -> str:
    path = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail("prometheus is required in CI (Debian package `prometheus`)")
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, ctype: str | None = "application/json",
         timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def image_review(namespace: str, *images: str) -> bytes:
    return json.dumps({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
                       "spec": {"containers": [{"image": i} for i in images], "namespace": namespace}}).encode()


def admission_review(fixture: str, namespace: str | None = None, image: str | None = None) -> bytes:
    doc = json.loads((FIXTURES / fixture).read_text())
    req = doc["request"]
    if namespace:
        req["namespace"] = namespace
        req["object"]["metadata"]["namespace"] = namespace
    if image:
        spec = req["object"]["spec"]
        spec = spec["template"]["spec"] if "template" in spec else spec
        spec["containers"][0]["image"] = image
    return json.dumps(doc).encode()


class Stack:
    """imagegate + Prometheus, started in `start`, stopped in `stop`."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.procs: list[subprocess.Popen] = []
        self.policy = workdir / "policy.yaml"
        self.ig_port = free_port()
        self.prom_port = free_port()
        self.ig = f"http://127.0.0.1:{self.ig_port}"
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        self.sent: dict[int, int] = {}

    # ------------------------------------------------------------ processes

    def spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        out = open(self.dir / log, "wb")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.dir, start_new_session=True)
        self.procs.append(proc)
        return proc

    def wait_http(self, url: str, proc: subprocess.Popen, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; see {self.dir}")
            try:
                if http("GET", url, ctype=None, timeout=0.5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{url} not ready within {deadline_s}s")

    def start(self) -> None:
        self.policy.write_text(GOOD_POLICY)
        ig = self.spawn([str(imagegate_bin()), "serve", f"--listen=127.0.0.1:{self.ig_port}",
                         f"--policy={self.policy}", "--file-poll-interval=1s", "--log-filter=warn"], "imagegate.log")
        self.wait_http(self.ig + "/readyz", ig, 15)
        config = self.dir / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(DASHBOARDS / "alerts.yaml")],
            "scrape_configs": [{"job_name": "imagegate",
                                "static_configs": [{"targets": [f"127.0.0.1:{self.ig_port}"]}]}],
        }))
        prom = self.spawn([prometheus_bin(), f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
                           f"--web.listen-address=127.0.0.1:{self.prom_port}", "--storage.tsdb.retention.time=1d",
                           "--log.level=warn"], "prometheus.log")
        self.wait_http(self.prom + "/-/ready", prom, 30)
        # Discovery hands targets to the scrape loop a few seconds after
        # start-up; the load must begin after the first scrape, or counters
        # would already be past 0 when first seen (no visible increase).
        end = time.monotonic() + 30
        while not self.query('up{job="imagegate"} == 1').get("result"):
            if time.monotonic() > end:
                raise RuntimeError("Prometheus did not scrape imagegate within 30s")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ----------------------------------------------------------------- load

    def requests(self) -> list[tuple[str, str, bytes | None, str | None]]:
        """One round: allowed, denied (several reasons), audit-mode, malformed."""
        ig = image_review
        return [
            ("POST", "/imagepolicy", ig("default", "registry.example.com/app:1.2.3"), "application/json"),
            ("POST", "/imagepolicy", ig("default", "nginx"), "application/json"),                  # tag_missing
            ("POST", "/imagepolicy", ig("default", "evil.example.com/x:1"), "application/json"),   # registry_denied
            ("POST", "/imagepolicy", ig("default", "quay.io/other/x:1"), "application/json"),      # registry_not_allowed
            ("POST", "/imagepolicy", ig("default", "UPPER/Case:1"), "application/json"),           # invalid_reference
            ("POST", "/imagepolicy", ig("kube-system", "anything:latest"), "application/json"),    # exempt
            ("POST", "/imagepolicy", ig("sandbox-a", "nginx:latest"), "application/json"),         # audit deny
            ("POST", "/validate?timeout=10s", admission_review("admission-v1-pod-create.json"), "application/json"),
            ("POST", "/validate", admission_review("admission-v1-deployment.json", image="nginx:latest"), "application/json"),
            ("POST", "/validate", admission_review("admission-v1-pod-create.json", "sandbox-b", "nginx"), "application/json"),
            ("POST", "/validate", b"{not json", "application/json"),                               # 400
            ("POST", "/validate", b'{"apiVersion":"v1","kind":"Pod"}', "application/json"),        # 400
            ("POST", "/imagepolicy", ig("default", "nginx:1"), "text/plain"),                      # 415
            ("GET", "/validate", None, None),                                                       # 405
            ("GET", "/nope", None, None),                                                           # 404
            ("GET", "/healthz", None, None),
            ("GET", "/readyz", None, None),
        ]

    def load(self, seconds: float, max_rounds: int) -> None:
        """Rounds of requests for at most `seconds` and `max_rounds`."""
        end = time.monotonic() + seconds
        rounds = 0
        while time.monotonic() < end and rounds < max_rounds:
            for method, path, body, ctype in self.requests():
                status, _ = http(method, self.ig + path, body, ctype)
                self.sent[status] = self.sent.get(status, 0) + 1
            rounds += 1
            time.sleep(0.05)

    def metric_value(self, text: str) -> float:
        for line in http("GET", self.ig + "/metrics", ctype=None)[1].decode().splitlines():
            if line.startswith(text + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def reload(self, text: str, counter: str, deadline_s: float = 15.0) -> None:
        before = self.metric_value(counter)
        write_atomically(self.policy, text)
        end = time.monotonic() + deadline_s
        while self.metric_value(counter) <= before:
            if time.monotonic() > end:
                raise RuntimeError(f"{counter} did not rise after a policy change")
            time.sleep(0.1)

    def exercise(self) -> None:
        """Load for 10 s; meanwhile a rejected policy reload, left in place
        for 18 s (longer than the reload alert's 15 s evaluation grid, so the
        alert fires), then an accepted one (so it resolves)."""
        worker = threading.Thread(target=self.load, args=(10.0, 400), daemon=True)
        worker.start()
        time.sleep(2.5)
        self.reload(BAD_POLICY, 'imagegate_policy_reloads_total{result="error"}')
        time.sleep(18.0)
        self.reload(GOOD_POLICY, 'imagegate_policy_reloads_total{result="success"}')
        worker.join(timeout=30)

    # ----------------------------------------------------------- Prometheus

    def query(self, expr: str) -> dict:
        url = self.prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        status, body = http("GET", url, ctype=None, timeout=10)
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            return {"error": doc.get("error", f"HTTP {status}"), "errorType": doc.get("errorType")}
        return doc["data"]

    def api(self, path: str) -> dict:
        status, body = http("GET", self.prom + path, ctype=None, timeout=10)
        assert status == 200, body
        return json.loads(body)["data"]
