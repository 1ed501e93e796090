#!/usr/bin/env python3
"""Pushes the signed fixture image into a local registry for the fan-out test.

Usage: fanout_registry.py HOST:PORT

Does what tests/it/support/registry (Pusher::image and Pusher::signatures)
does: the OCI layout tests/fixtures/verify/images/app goes to
fixtures/app:v1, and its cosign signature (sig/app.payload.json,
sig/app.sig.b64, made with keys/cosign) to the sha256-<hex>.sig tag.
Prints the image digest. Plain HTTP, 127.0.0.1 only.
"""

import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FX = os.path.join(ROOT, "tests", "fixtures", "verify")


def call(addr, method, path, body=b"", ctype=None):
    req = urllib.request.Request(f"http://{addr}{path}", data=body if method != "GET" else None, method=method)
    if ctype:
        req.add_header("content-type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(addr, repo, data):
    d = digest(data)
    status, headers, body = call(addr, "POST", f"/v2/{repo}/blobs/uploads/")
    if status != 202:
        sys.exit(f"start upload: {status} {body[:200]!r}")
    loc = urllib.parse.urlsplit(headers.get("Location") or headers.get("location"))
    pq = loc.path + ("?" + loc.query if loc.query else "")
    sep = "&" if "?" in pq else "?"
    status, _, body = call(addr, "PUT", f"{pq}{sep}digest={d}", data, "application/octet-stream")
    if status != 201:
        sys.exit(f"put blob: {status} {body[:200]!r}")
    return d


def manifest(addr, repo, ref, media_type, data):
    status, _, body = call(addr, "PUT", f"/v2/{repo}/manifests/{ref}", data, media_type)
    if status != 201:
        sys.exit(f"put manifest {ref}: {status} {body[:200]!r}")
    return digest(data)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    addr = sys.argv[1]
    if not addr.startswith("127.0.0.1:"):
        sys.exit("the registry must be on 127.0.0.1")
    repo = "fixtures/app"
    layout = os.path.join(FX, "images", "app")
    with open(os.path.join(layout, "index.json"), encoding="utf-8") as f:
        manifest_digest = json.load(f)["manifests"][0]["digest"]
    blobs_dir = os.path.join(layout, "blobs", "sha256")
    man = None
    for name in sorted(os.listdir(blobs_dir)):
        with open(os.path.join(blobs_dir, name), "rb") as f:
            data = f.read()
        if f"sha256:{name}" == manifest_digest:
            man = data
        else:
            blob(addr, repo, data)
    if man is None:
        sys.exit("fixture manifest not found")
    image = manifest(addr, repo, "v1", OCI_MANIFEST, man)
    with open(os.path.join(FX, "images", "app.digest"), encoding="utf-8") as f:
        if f.read().strip() != image:
            sys.exit("pushed digest differs from tests/fixtures/verify/images/app.digest")
    # cosign .sig image: one simple-signing layer.
    with open(os.path.join(FX, "sig", "app.payload.json"), "rb") as f:
        payload = f.read()
    with open(os.path.join(FX, "sig", "app.sig.b64"), encoding="utf-8") as f:
        sig = f.read().strip()
    config = blob(addr, repo, b"{}")
    layer = blob(addr, repo, payload)
    sig_manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": layer,
            "size": len(payload),
            "annotations": {"dev.cosignproject.cosign/signature": sig},
        }],
    }
    tag = image.replace(":", "-") + ".sig"
    manifest(addr, repo, tag, OCI_MANIFEST, json.dumps(sig_manifest).encode())
    print(image)


if __name__ == "__main__":
    main()
