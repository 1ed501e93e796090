"""A real Prometheus scraping a real imagegate under a bounded load, for the
dashboard tests. Everything listens on 127.0.0.1 on free ports, lives in a
temporary folder, is bounded in time, and is stopped by PID on exit.

The policy has `verify` rules, so the supply-chain families see real traffic
without a real registry: a stub registry in this process (FakeRegistry:
nothing is signed there, one repository answers 500, one answers slowly) and
a loopback port where nothing listens (no answer at all).

Prometheus is Debian's (`prometheus` package, /usr/bin/prometheus, or
$PROMETHEUS_BIN); imagegate is $IMAGEGATE_BIN or the newest build in target/.
"""

import hashlib
import http.server
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
    allow: [registry.example.com, nginx, "127.0.0.1:{registry}", "127.0.0.1:{dead}"]
    deny: [evil.example.com]
    insecure: ["127.0.0.1:{registry}", "127.0.0.1:{dead}"]
  tags:
    requireTagOrDigest: true
    forbid: [latest]
  exemptions:
    namespaces: [kube-system]
  overrides:
    - namespaces: ["sandbox-*"]
      mode: audit
  # Only these loopback registries are ever contacted: every other allowed
  # image matches no rule, and /mutate (pinDigests) is sent only images on
  # them.
  verify:
    - images: ["127.0.0.1:{registry}/**", "127.0.0.1:{dead}/**"]
      keys:
        - file: {key}
  verification:
    timeout: 3s
    onError: deny
  mutate:
    pinDigests: true
"""
KEY = REPO / "examples/keys/example.pub"


def good_policy(registry: int, dead: int) -> str:
    return GOOD_POLICY.format(registry=registry, dead=dead, key=json.dumps(str(KEY)))


def bad_policy(registry: int, dead: int) -> str:
    """Unknown field: rejected at reload, the previous policy keeps serving."""
    return good_policy(registry, dead).replace("mode: enforce", "mode: enforce\n  moed: audit")


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


class FakeRegistry(http.server.ThreadingHTTPServer):
    """A registry where nothing is signed: 404 for every manifest, tag,
    referrer and blob (signature_missing, a verdict that is cached), except
    /v2/broken/ (500: a registry failure) and /v2/slow/ (404 after 0.3 s, so
    two reviews of the same digest overlap and one waits on the other)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeRegistryHandler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() would wait forever otherwise
            self.shutdown()
            self.thread.join(timeout=5)
        self.server_close()


class FakeRegistryHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        if self.path.startswith("/v2/slow/"):
            time.sleep(0.3)
        status = 500 if self.path.startswith("/v2/broken/") else 404
        body = b"" if self.command == "HEAD" else b'{"errors":[{"code":"UNKNOWN"}]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = answer

    def log_message(self, *args) -> None:
        pass


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
        self.registry = FakeRegistry()
        # Nothing listens here: a verification round gets no answer.
        self.dead_port = free_port()
        self.good_policy = good_policy(self.registry.port, self.dead_port)
        self.bad_policy = bad_policy(self.registry.port, self.dead_port)

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
        self.registry.start()
        self.policy.write_text(self.good_policy)
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
        self.registry.stop()
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
        """One round: allowed, denied (several reasons), audit-mode, malformed,
        supply-chain verification and /mutate against the loopback registries."""
        ig = image_review
        reg, dead = f"127.0.0.1:{self.registry.port}", f"127.0.0.1:{self.dead_port}"
        unsigned = f"{reg}/unsigned/app@{digest('unsigned')}"
        return [
            ("POST", "/imagepolicy", ig("default", unsigned), "application/json"),                 # signature_missing, cached
            ("POST", "/imagepolicy", ig("default", f"{reg}/broken/app@{digest('broken')}"), "application/json"),  # 5xx
            ("POST", "/imagepolicy", ig("default", f"{dead}/app:1.0"), "application/json"),      # no answer
            ("POST", "/validate", admission_review("admission-v1-pod-create.json", image=unsigned), "application/json"),
            ("POST", "/mutate", admission_review("admission-v1-pod-create.json", image=f"{reg}/unsigned/app:1.0"),
             "application/json"),
            ("POST", "/mutate", admission_review("admission-v1-pod-create.json", image=f"{dead}/app:1.0"),
             "application/json"),
            ("POST", "/mutate", b"{not json", "application/json"),                                    # 400
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

    def overlap(self, seconds: float, max_pairs: int) -> None:
        """Pairs of concurrent reviews of a new digest on the slow repository:
        the second waits on the first's registry round (a coalesced miss)."""
        end = time.monotonic() + seconds
        for i in range(max_pairs):
            if time.monotonic() >= end:
                break
            body = image_review("default", f"127.0.0.1:{self.registry.port}/slow/app@{digest(f'slow-{i}')}")
            pair = [threading.Thread(target=http, args=("POST", self.ig + "/imagepolicy", body)) for _ in range(2)]
            for t in pair:
                t.start()
            for t in pair:
                t.join(timeout=10)
            time.sleep(0.2)

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
        overlap = threading.Thread(target=self.overlap, args=(10.0, 10), daemon=True)
        worker.start()
        overlap.start()
        time.sleep(2.5)
        self.reload(self.bad_policy, 'imagegate_policy_reloads_total{result="error"}')
        time.sleep(18.0)
        self.reload(self.good_policy, 'imagegate_policy_reloads_total{result="success"}')
        worker.join(timeout=30)
        overlap.join(timeout=30)

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
