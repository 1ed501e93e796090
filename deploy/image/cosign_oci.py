#!/usr/bin/env python3
"""Keyed cosign artifacts for an image in a plain-HTTP (loopback) registry,
in the layouts `cosign sign` and `cosign attest` write (cosign's
specs/SIGNATURE_SPEC.md and specs/ATTESTATION_SPEC.md; the same layouts as
tests/it/support/registry/mod.rs pushes):

  sign     the `sha256-<hex>.sig` tag: an OCI manifest whose layer is the
           simple-signing payload (application/vnd.dev.cosign.simplesigning.v1+json)
           with its ECDSA P-256 / SHA-256 signature (DER, base64) in the
           annotation dev.cosignproject.cosign/signature
  attest   the `sha256-<hex>.att` tag: one layer per predicate, each a DSSE
           envelope (application/vnd.dsse.envelope.v1+json) whose payload is
           an in-toto statement (v0.1, as cosign attest writes) naming the
           image digest; signature over the DSSE PAE; layer annotations
           predicateType and dev.cosignproject.cosign/signature: ""
  remove   deletes the `.sig` or `.att` manifest (the registry must allow
           deletes)

usage:
  cosign_oci.py sign   REGISTRY REPO DIGEST KEY_PEM [--out DIR]
  cosign_oci.py attest REGISTRY REPO DIGEST KEY_PEM PREDICATE_TYPE=FILE... [--out DIR]
  cosign_oci.py remove REGISTRY REPO DIGEST sig|att

KEY_PEM: an unencrypted PKCS#8 EC P-256 private key (`openssl pkcs8
-topk8 -nocrypt`, e.g. examples/keys/example.key). Only the `cryptography`
package and the standard library are used. With --out, the payloads,
statements and envelopes are written there too (for an independent
`openssl dgst -verify`).
"""
import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
INTOTO = "application/vnd.in-toto+json"


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Registry:
    def __init__(self, addr, repo):
        self.base = f"http://{addr}/v2/{repo}"

    def _req(self, method, url, body=None, headers=None):
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def blob(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, _, _ = self._req("HEAD", f"{self.base}/blobs/{digest}")
        if status == 200:
            return digest
        status, headers, body = self._req("POST", f"{self.base}/blobs/uploads/")
        if status != 202:
            sys.exit(f"start upload: HTTP {status} {body[:200]!r}")
        location = headers.get("Location") or headers.get("location")
        if location.startswith("/"):
            location = self.base.split("/v2/")[0] + location
        sep = "&" if "?" in location else "?"
        status, _, body = self._req("PUT", f"{location}{sep}digest={digest}", data,
                                    {"Content-Type": "application/octet-stream"})
        if status != 201:
            sys.exit(f"put blob: HTTP {status} {body[:200]!r}")
        return digest

    def manifest(self, reference, media_type, data):
        status, _, body = self._req("PUT", f"{self.base}/manifests/{reference}", data,
                                    {"Content-Type": media_type})
        if status != 201:
            sys.exit(f"put manifest {reference}: HTTP {status} {body[:200]!r}")
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def delete_tag(self, tag):
        status, headers, _ = self._req("HEAD", f"{self.base}/manifests/{tag}",
                                       headers={"Accept": OCI_MANIFEST})
        if status == 404:
            return False
        if status != 200:
            sys.exit(f"head {tag}: HTTP {status}")
        digest = headers.get("Docker-Content-Digest") or headers.get("docker-content-digest")
        status, _, body = self._req("DELETE", f"{self.base}/manifests/{digest}")
        if status != 202:
            sys.exit(f"delete {tag} ({digest}): HTTP {status} {body[:200]!r}")
        return True


def load_key(path):
    key = load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        sys.exit(f"{path}: not an EC P-256 private key")
    return key


def sign_bytes(key, data):
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def pae(payload_type, body):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def tag_of(digest, suffix):
    algo, hexd = digest.split(":", 1)
    return f"{algo}-{hexd}.{suffix}"


def cmd_sign(registry, repo, digest, key_path, out):
    key = load_key(key_path)
    reg = Registry(registry, repo)
    # what Go cosign writes: the repository without tag or digest as identity
    payload = compact({"critical": {"identity": {"docker-reference": f"{registry}/{repo}"},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": "cosign container image signature"},
                       "optional": None})
    sig = sign_bytes(key, payload)
    config = reg.blob(b"{}")
    layer = reg.blob(payload)
    manifest = compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 2},
                        "layers": [{"mediaType": SIMPLESIGNING, "digest": layer, "size": len(payload),
                                    "annotations": {"dev.cosignproject.cosign/signature": sig}}]})
    tag = tag_of(digest, "sig")
    reg.manifest(tag, OCI_MANIFEST, manifest)
    if out:
        (out / "simplesigning.json").write_bytes(payload)
        (out / "simplesigning.sig").write_bytes(base64.b64decode(sig))
    print(f"signed {registry}/{repo}@{digest}: tag {tag}")


def cmd_attest(registry, repo, digest, key_path, predicates, out):
    key = load_key(key_path)
    reg = Registry(registry, repo)
    algo, hexd = digest.split(":", 1)
    layers, diff_ids = [], []
    for i, spec in enumerate(predicates):
        ptype, _, path = spec.partition("=")
        predicate = json.loads(Path(path).read_bytes())
        statement = compact({"_type": "https://in-toto.io/Statement/v0.1",
                             "predicateType": ptype,
                             "subject": [{"name": f"{registry}/{repo}", "digest": {algo: hexd}}],
                             "predicate": predicate})
        envelope = compact({"payloadType": INTOTO,
                            "payload": base64.b64encode(statement).decode(),
                            "signatures": [{"keyid": "", "sig": sign_bytes(key, pae(INTOTO, statement))}]})
        d = reg.blob(envelope)
        diff_ids.append(d)
        layers.append({"mediaType": DSSE, "digest": d, "size": len(envelope),
                       "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": ptype}})
        if out:
            (out / f"statement-{i}.json").write_bytes(statement)
            (out / f"envelope-{i}.json").write_bytes(envelope)
    config = compact({"architecture": "", "os": "", "config": {},
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    cd = reg.blob(config)
    manifest = compact({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(config)},
                        "layers": layers})
    tag = tag_of(digest, "att")
    reg.manifest(tag, OCI_MANIFEST, manifest)
    kinds = ", ".join(p.partition("=")[0] for p in predicates) or "nothing"
    print(f"attested {registry}/{repo}@{digest}: tag {tag} ({kinds})")


def main(argv):
    out = None
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1])
        out.mkdir(parents=True, exist_ok=True)
        del argv[i:i + 2]
    if len(argv) < 5:
        sys.exit(__doc__)
    cmd, registry, repo, digest = argv[1:5]
    if not digest.startswith("sha256:") or len(digest) != 71:
        sys.exit(f"not a sha256 digest: {digest}")
    if cmd == "sign" and len(argv) == 6:
        cmd_sign(registry, repo, digest, argv[5], out)
    elif cmd == "attest" and len(argv) >= 6:
        cmd_attest(registry, repo, digest, argv[5], argv[6:], out)
    elif cmd == "remove" and len(argv) == 6 and argv[5] in ("sig", "att"):
        gone = Registry(registry, repo).delete_tag(tag_of(digest, argv[5]))
        print(f"removed {tag_of(digest, argv[5])}" if gone else f"no {tag_of(digest, argv[5])} to remove")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
