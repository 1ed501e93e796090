#!/usr/bin/env python3
"""Checks that the Containerfile, an image's config and the deploy manifests
agree.

  imagecheck.py config CONFIG_JSON   the image config (skopeo inspect --config)
                                     has the Containerfile's user, entrypoint,
                                     cmd, exposed ports and labels
  imagecheck.py manifests            deploy/ runs the image as the
                                     Containerfile says: numeric non-root
                                     user, read-only root filesystem, the
                                     exposed ports, args (not command)
  imagecheck.py deployment-args      prints the Deployment's container args,
                                     one per line (for run-check.sh)

Options: --root DIR (the repository), --build-arg NAME=VALUE (repeatable,
as given to `docker build`). Prints one line per check; exit 1 on the first
disagreement.
"""
import argparse
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

REQUIRED_LABELS = ("source", "revision", "version", "licenses")
# Inherited from gcr.io/distroless/cc-debian12:nonroot (its image config).
DISTROLESS_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
}
DISTROLESS_WORKDIR = "/home/nonroot"


def fail(msg):
    print(f"imagecheck: FAIL {msg}", file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print(f"imagecheck: ok   {msg}")


def instructions(text):
    """(INSTRUCTION, argument text) pairs, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not cur and (not stripped or stripped.startswith("#")):
            continue
        if cur and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            cur += stripped[:-1] + " "
            continue
        cur += stripped
        word, _, rest = cur.partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def final_stage(root, build_args):
    """What the Containerfile's last stage sets, with ${ARG}s substituted."""
    ins = instructions((root / "Containerfile").read_text())
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    stage = ins[last_from + 1:]
    args, defaults = {}, {}
    for w, rest in stage:
        if w == "ARG":
            name, _, default = rest.partition("=")
            defaults[name] = default
            args[name] = build_args.get(name, default)
    subst = lambda s: re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], s)
    got = {"labels": {}, "expose": [], "user": None, "entrypoint": None, "cmd": None,
           "healthcheck": any(w == "HEALTHCHECK" for w, _ in ins), "arg_defaults": defaults}
    for w, rest in stage:
        if w == "LABEL":
            for pair in shlex.split(rest):
                k, _, v = pair.partition("=")
                got["labels"][k] = subst(v)
        elif w == "EXPOSE":
            got["expose"] += [p if "/" in p else p + "/tcp" for p in rest.split()]
        elif w == "USER":
            got["user"] = subst(rest)
        elif w == "ENTRYPOINT":
            got["entrypoint"] = json.loads(rest)
        elif w == "CMD":
            got["cmd"] = json.loads(rest)
    for k in ("user", "entrypoint", "cmd"):
        if got[k] is None:
            fail(f"Containerfile: the final stage sets no {k.upper()}")
    return got


def cargo_version(root):
    m = re.search(r'^version = "([^"]+)"', (root / "Cargo.toml").read_text(), re.M)
    return m.group(1)


def numeric_user(user):
    m = re.fullmatch(r"(\d+):(\d+)", user)
    if not m:
        fail(f"USER {user!r} is not numeric UID:GID (runAsNonRoot cannot check a name)")
    uid, gid = int(m.group(1)), int(m.group(2))
    if uid == 0:
        fail("USER is root")
    return uid, gid


def check_config(root, build_args, config_path):
    cf = final_stage(root, build_args)
    image = json.loads(Path(config_path).read_text())
    cfg = image.get("config") or {}
    if image.get("architecture") != "amd64" or image.get("os") != "linux":
        fail(f"platform {image.get('os')}/{image.get('architecture')}, want linux/amd64")
    ok("platform linux/amd64")
    if cfg.get("User") != cf["user"]:
        fail(f"User {cfg.get('User')!r}, Containerfile USER {cf['user']!r}")
    numeric_user(cfg["User"])
    ok(f"User {cfg['User']} (numeric, not root), as the Containerfile's USER")
    for key, mine in (("Entrypoint", "entrypoint"), ("Cmd", "cmd")):
        if cfg.get(key) != cf[mine]:
            fail(f"{key} {cfg.get(key)}, Containerfile {cf[mine]}")
        ok(f"{key} {cfg[key]}")
    ports = sorted((cfg.get("ExposedPorts") or {}).keys())
    if ports != sorted(cf["expose"]):
        fail(f"ExposedPorts {ports}, Containerfile EXPOSE {sorted(cf['expose'])}")
    ok(f"ExposedPorts {ports}")
    labels = cfg.get("Labels") or {}
    for k, v in cf["labels"].items():
        if labels.get(k) != v:
            fail(f"label {k}={labels.get(k)!r}, Containerfile {v!r}")
    for k in REQUIRED_LABELS:
        key = f"org.opencontainers.image.{k}"
        if not labels.get(key) or labels[key] == "unknown":
            fail(f"label {key} missing or unknown")
    if not re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"]):
        fail(f"label revision {labels['org.opencontainers.image.revision']!r} is not a commit id")
    if labels["org.opencontainers.image.version"] != cargo_version(root):
        fail("label version differs from Cargo.toml's")
    ok("labels " + ", ".join(f"{k}={labels['org.opencontainers.image.' + k]}" for k in REQUIRED_LABELS))
    if cf["healthcheck"] or cfg.get("Healthcheck"):
        fail("a HEALTHCHECK is set (the probes are Kubernetes')")
    ok("no Healthcheck")
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [])
    for k, v in DISTROLESS_ENV.items():
        if env.get(k) != v:
            fail(f"Env {k}={env.get(k)!r}, distroless nonroot has {v!r}")
    if cfg.get("WorkingDir") != DISTROLESS_WORKDIR:
        fail(f"WorkingDir {cfg.get('WorkingDir')!r}, distroless nonroot has {DISTROLESS_WORKDIR!r}")
    ok(f"Env and WorkingDir as distroless nonroot ({DISTROLESS_WORKDIR})")


def pod_specs(root):
    """(file, pod spec) of every manifest that runs the image."""
    dep = yaml.safe_load((root / "deploy/base/deployment.yaml").read_text())
    pod = yaml.safe_load((root / "deploy/imagepolicywebhook/static-pod.yaml").read_text())
    return [("deploy/base/deployment.yaml", dep["spec"]["template"]["spec"]),
            ("deploy/imagepolicywebhook/static-pod.yaml", pod["spec"])]


def check_manifests(root, build_args):
    cf = final_stage(root, build_args)
    uid, gid = numeric_user(cf["user"])
    for name, spec in pod_specs(root):
        psc = spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            fail(f"{name}: pod securityContext.runAsNonRoot is not true")
        if (psc.get("runAsUser"), psc.get("runAsGroup")) != (uid, gid):
            fail(f"{name}: runAsUser/runAsGroup {psc.get('runAsUser')}/{psc.get('runAsGroup')}, image {uid}/{gid}")
        for c in spec["containers"]:
            if c["image"] != "imagegate":
                fail(f"{name}: container {c['name']} image {c['image']!r}, want `imagegate` (pinned in deploy/components/image)")
            if "command" in c:
                fail(f"{name}: container {c['name']} sets command: the image's ENTRYPOINT is the binary, pass args")
            if c.get("args", [None])[0] != cf["cmd"][0]:
                fail(f"{name}: args start with {c.get('args', [None])[0]!r}, want {cf['cmd'][0]!r}")
            sc = c.get("securityContext") or {}
            want = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                    "privileged": False, "runAsNonRoot": True}
            for k, v in want.items():
                if sc.get(k) != v:
                    fail(f"{name}: container {c['name']} securityContext.{k} is {sc.get(k)!r}, want {v!r}")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
                fail(f"{name}: container {c['name']} does not drop ALL capabilities")
        ok(f"{name}: runs as {uid}:{gid}, non-root, read-only root fs, no capabilities, image `imagegate` with args")
    dep_ports = sorted(f"{p['containerPort']}/{p.get('protocol', 'TCP').lower()}"
                       for p in pod_specs(root)[0][1]["containers"][0]["ports"])
    if dep_ports != sorted(cf["expose"]):
        fail(f"deploy/base/deployment.yaml ports {dep_ports}, Containerfile EXPOSE {sorted(cf['expose'])}")
    ok(f"deploy/base/deployment.yaml ports {dep_ports} = EXPOSE")
    comp = yaml.safe_load((root / "deploy/components/image/kustomization.yaml").read_text())
    img = comp["images"][0]
    version = cargo_version(root)
    if img.get("newTag") != version and "digest" not in img:
        fail(f"deploy/components/image: newTag {img.get('newTag')!r}, Cargo.toml version {version!r}")
    if cf["arg_defaults"].get("VERSION") != version:
        fail(f"Containerfile: ARG VERSION={cf['arg_defaults'].get('VERSION')}, Cargo.toml version {version}")
    ok(f"Containerfile ARG VERSION={version}, as Cargo.toml")
    ok(f"deploy/components/image pins {img['newName']}:{img.get('newTag')} (the version the image is labelled with)")


def deployment_args(root):
    spec = pod_specs(root)[0][1]
    for a in spec["containers"][0]["args"]:
        print(a)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["config", "manifests", "deployment-args"])
    ap.add_argument("config", nargs="?")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--build-arg", action="append", default=[])
    a = ap.parse_args()
    root = Path(a.root)
    build_args = dict(x.split("=", 1) for x in a.build_arg)
    build_args.setdefault("VERSION", cargo_version(root))
    if "REVISION" not in build_args:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        build_args["REVISION"] = r.stdout.strip() if r.returncode == 0 else "unknown"
    if a.what == "config":
        if not a.config:
            ap.error("config needs CONFIG_JSON")
        check_config(root, build_args, a.config)
    elif a.what == "manifests":
        check_manifests(root, build_args)
    else:
        deployment_args(root)


if __name__ == "__main__":
    main()
