"""The certificate scripts make what the manifests expect, and imagegate
serves with it: the ImagePolicyWebhook PKI (serving certificate for
127.0.0.1 and localhost, the apiserver's client certificate, mTLS with
--client-ca) and the in-cluster PKI (deploy/overlays/no-cert-manager)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from support import DEPLOY, REPO, Server, free_port, wait_ready

IMAGE_REVIEW = json.dumps({
    "apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
    "spec": {"containers": [{"image": "registry.example.com/app:1.2.3"}, {"image": "nginx"}], "namespace": "default"},
})


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True, timeout=30).stdout


def run_script(script: Path, out: Path, env: dict | None = None) -> str:
    res = subprocess.run(["sh", str(script), str(out)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def ipw_pki(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    run_script(DEPLOY / "imagepolicywebhook/make-certs.sh", out, {"IMAGEGATE_UID": str(os.getuid())})
    return out


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory) -> Path:
    """A second, unrelated PKI made by the same script."""
    out = tmp_path_factory.mktemp("foreign")
    run_script(DEPLOY / "imagepolicywebhook/make-certs.sh", out, {"IMAGEGATE_UID": str(os.getuid())})
    return out


def test_imagepolicywebhook_pki_verifies(ipw_pki):
    names = {p.name for p in ipw_pki.iterdir()}
    assert names >= {"ca.crt", "ca.key", "serving.crt", "serving.key", "apiserver-client.crt", "apiserver-client.key"}
    for leaf in ("serving.crt", "apiserver-client.crt"):
        assert openssl("verify", "-CAfile", str(ipw_pki / "ca.crt"), str(ipw_pki / leaf)).strip().endswith("OK")
    serving = openssl("x509", "-noout", "-ext", "subjectAltName,extendedKeyUsage", "-in", str(ipw_pki / "serving.crt"))
    assert "IP Address:127.0.0.1" in serving and "DNS:localhost" in serving and "TLS Web Server Authentication" in serving
    client = openssl("x509", "-noout", "-subject", "-ext", "extendedKeyUsage", "-in", str(ipw_pki / "apiserver-client.crt"))
    assert "CN = kube-apiserver" in client and "TLS Web Client Authentication" in client
    for key in ("ca.key", "serving.key", "apiserver-client.key"):
        assert (ipw_pki / key).stat().st_mode & 0o077 == 0, f"{key} is private"


def test_rerun_keeps_the_ca_and_renews_the_leaves(tmp_path):
    script = DEPLOY / "imagepolicywebhook/make-certs.sh"
    env = {"IMAGEGATE_UID": str(os.getuid())}
    run_script(script, tmp_path, env)
    ca, serving = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "serving.crt").read_bytes()
    assert "reusing the CA" in run_script(script, tmp_path, env)
    assert (tmp_path / "ca.crt").read_bytes() == ca
    assert (tmp_path / "serving.crt").read_bytes() != serving


def curl(url: str, *extra: str, body: str = IMAGE_REVIEW) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "5", "-H", "content-type: application/json",
                           "--data-binary", body, *extra, url], capture_output=True, text=True, timeout=10)


def test_imagegate_serves_mtls_with_the_pki(ipw_pki, foreign_pki, binary):
    port, metrics = free_port(), free_port()
    args = ["serve", f"--listen=127.0.0.1:{port}", f"--metrics-listen=127.0.0.1:{metrics}",
            f"--tls-cert={ipw_pki / 'serving.crt'}", f"--tls-key={ipw_pki / 'serving.key'}",
            f"--client-ca={ipw_pki / 'ca.crt'}", f"--policy={REPO / 'examples/policy.yaml'}"]
    with Server(binary, args) as server:
        wait_ready(f"http://127.0.0.1:{metrics}/readyz", server.proc)
        url = f"https://127.0.0.1:{port}/imagepolicy?timeout=30s"
        ca = ["--cacert", str(ipw_pki / "ca.crt")]
        client = ["--cert", str(ipw_pki / "apiserver-client.crt"), "--key", str(ipw_pki / "apiserver-client.key")]
        # As the apiserver calls it (kubeconfig: CA + client certificate).
        ok = curl(url, *ca, *client)
        assert ok.returncode == 0, ok.stderr
        answer = json.loads(ok.stdout)
        assert answer["kind"] == "ImageReview" and answer["status"]["allowed"] is False
        assert "nginx" in answer["status"]["reason"]
        # `localhost` is in the certificate too.
        assert curl(f"https://localhost:{port}/imagepolicy", *ca, *client).returncode == 0
        # No client certificate, or one from another CA: refused in the handshake.
        assert curl(url, *ca).returncode != 0
        foreign = ["--cert", str(foreign_pki / "apiserver-client.crt"), "--key", str(foreign_pki / "apiserver-client.key")]
        assert curl(url, *ca, *foreign).returncode != 0
        # The serving certificate is not a client certificate (no clientAuth).
        assert curl(url, *ca, "--cert", str(ipw_pki / "serving.crt"), "--key", str(ipw_pki / "serving.key")).returncode != 0
        # A client that does not trust the CA refuses the server.
        assert curl(url, "--cacert", str(foreign_pki / "ca.crt"), *client).returncode != 0


def test_no_cert_manager_script_makes_a_service_certificate(tmp_path):
    script = DEPLOY / "overlays/no-cert-manager/make-certs.sh"
    run_script(script, tmp_path)
    assert openssl("verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / "tls.crt")).strip().endswith("OK")
    san = openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(tmp_path / "tls.crt"))
    assert "DNS:imagegate.imagegate.svc" in san and "DNS:imagegate.imagegate.svc.cluster.local" in san
    ca = (tmp_path / "ca.crt").read_bytes()
    assert "reusing the CA" in run_script(script, tmp_path)
    assert (tmp_path / "ca.crt").read_bytes() == ca
    other = subprocess.run(["sh", str(script), str(tmp_path / "other")], capture_output=True, text=True,
                           env={**os.environ, "NAMESPACE": "policy", "SERVICE": "gate"}, timeout=60)
    assert other.returncode == 0
    assert "DNS:gate.policy.svc" in openssl("x509", "-noout", "-ext", "subjectAltName", "-in",
                                            str(tmp_path / "other/tls.crt"))
