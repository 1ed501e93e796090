#!/usr/bin/env python3
"""Writes a deterministic multi-document YAML stream of Kubernetes objects.

Usage: gen_manifests.py --objects N --out FILE [--seed S]

The stream mixes Deployments, StatefulSets, Jobs, CronJobs, Pods, Services and
ConfigMaps; about 80% of the objects carry a pod template (or are Pods).

Each pod-bearing object has:
  - 1-3 containers, and sometimes 1-2 init containers;
  - realistic shapes: labels, resources, probes, env (literal values plus
    configMapKeyRef/secretKeyRef), ports, securityContext and volumes.

Images are drawn from a fixed pool of both kinds:
  - images that a strict policy accepts: a private registry with a version
    tag, or a digest-pinned reference;
  - images it rejects: an implicit or explicit `latest`, or Docker Hub short
    names.
See IMAGES_GOOD and IMAGES_BAD.

The output depends only on --objects and --seed (default 42). The same
arguments always produce a byte-identical file. Objects are written one at a
time, so the memory used does not grow with N.

Only the standard library is used; the YAML is emitted by a small block-style
writer that quotes every string that is not trivially plain.
"""

import argparse
import random
import re
import sys

# ---------------------------------------------------------------------------
# Image pool.
# ---------------------------------------------------------------------------

# Digests are fixed strings (not derived from the run's seed), so the image
# pool is identical for every run and every seed.
_DIGEST_RNG = random.Random(0x1D16E57)


def _digest():
    return "sha256:%064x" % _DIGEST_RNG.getrandbits(256)


IMAGES_GOOD = [
    "registry.example.com/team/app:1.2.3",
    "registry.example.com/team/api:2.14.0",
    "registry.example.com/team/worker:0.9.17",
    "registry.example.com/platform/gateway:3.1.0",
    "registry.example.com/platform/migrate:1.0.4",
    "registry.example.com/data/etl:2024.11.2",
    "ghcr.io/org/tool@" + _digest(),
    "ghcr.io/org/sidecar@" + _digest(),
    "ghcr.io/org/agent:v1.8.2@" + _digest(),
    "registry.example.com/team/app:1.2.3@" + _digest(),
    "quay.io/org/exporter:v0.15.1",
    "registry.k8s.io/pause:3.9",
    "registry.example.com/base/init-db:5.7.2",
    "registry.example.com/security/vault-agent:1.16.1",
]

IMAGES_BAD = [
    "nginx",
    "nginx:latest",
    "docker.io/library/redis:latest",
    "redis",
    "busybox",
    "alpine:latest",
    "postgres",
    "docker.io/library/python:latest",
    "mysql:latest",
    "curlimages/curl",
]

# Share of pod-bearing containers that get a "bad" image.
BAD_IMAGE_RATIO = 0.3

# Kind weights (percent). Pod-bearing: 30+10+10+8+22 = 80.
KIND_WEIGHTS = [
    ("Deployment", 30),
    ("StatefulSet", 10),
    ("Job", 10),
    ("CronJob", 8),
    ("Pod", 22),
    ("Service", 10),
    ("ConfigMap", 10),
]
POD_BEARING = {"Deployment", "StatefulSet", "Job", "CronJob", "Pod"}

NAMESPACES = [
    "default", "prod-web", "prod-api", "staging", "payments", "data",
    "monitoring", "ingress", "batch", "team-a", "team-b", "kube-system",
]
TEAMS = ["web", "api", "data", "payments", "platform", "search", "growth"]
COMPONENTS = ["frontend", "backend", "worker", "cache", "db", "proxy",
              "scheduler", "exporter", "gateway", "consumer"]
WORDS = ["alpha", "bravo", "cedar", "delta", "ember", "falcon", "garnet",
         "harbor", "indigo", "juniper", "kestrel", "lumen", "maple", "nova",
         "onyx", "pine", "quartz", "raven", "sable", "tundra"]
ENV_VALUES = {
    "LOG_LEVEL": ["info", "debug", "warn"],
    "PORT": ["8080", "8443", "3000"],
    "GOMAXPROCS": ["1", "2", "4"],
    "FEATURE_FLAGS": ["new-checkout,fast-path", "beta-search", ""],
    "REGION": ["eu-west-1", "us-east-1", "ap-southeast-2"],
    "OTEL_EXPORTER_OTLP_ENDPOINT": ["http://otel-collector.monitoring:4317"],
    "CACHE_TTL": ["30s", "5m", "1h"],
    "WORKERS": ["2", "4", "8", "16"],
    "JAVA_TOOL_OPTIONS": ["-XX:MaxRAMPercentage=75.0", "-Xss512k -XX:+UseG1GC"],
    "HTTP_TIMEOUT": ["10s", "30s", "2m"],
}
ENV_NAMES = sorted(ENV_VALUES)


def pick_image(rng):
    if rng.random() < BAD_IMAGE_RATIO:
        return rng.choice(IMAGES_BAD)
    return rng.choice(IMAGES_GOOD)


def weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    r = rng.random() * total
    for value, w in pairs:
        r -= w
        if r < 0:
            return value
    return pairs[-1][0]


def object_name(rng, component, serial):
    return "%s-%s-%d" % (rng.choice(WORDS), component, serial)


def std_labels(name, team, version, component):
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/version": version,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": team,
        "app.kubernetes.io/managed-by": "Helm",
        "team": team,
    }


def resources(rng):
    cpu_m = rng.choice([10, 50, 100, 250, 500, 1000])
    mem_mi = rng.choice([32, 64, 128, 256, 512, 1024, 2048])
    res = {"requests": {"cpu": "%dm" % cpu_m, "memory": "%dMi" % mem_mi}}
    if rng.random() < 0.8:
        res["limits"] = {"cpu": "%dm" % (cpu_m * rng.choice([2, 4])),
                         "memory": "%dMi" % (mem_mi * 2)}
    return res


def probe(rng, port):
    kind = rng.random()
    if kind < 0.6:
        handler = {"httpGet": {"path": rng.choice(["/healthz", "/readyz", "/livez", "/-/ready"]),
                               "port": port, "scheme": "HTTP"}}
    elif kind < 0.85:
        handler = {"tcpSocket": {"port": port}}
    else:
        handler = {"exec": {"command": ["/bin/sh", "-c", "test -f /tmp/ready"]}}
    handler.update({
        "initialDelaySeconds": rng.choice([0, 5, 10, 15, 30]),
        "periodSeconds": rng.choice([5, 10, 20]),
        "timeoutSeconds": rng.choice([1, 2, 5]),
        "failureThreshold": rng.choice([3, 5, 6]),
    })
    return handler


def env(rng, cm_name, secret_name):
    out = []
    for n in rng.sample(ENV_NAMES, rng.randint(1, 4)):
        out.append({"name": n, "value": rng.choice(ENV_VALUES[n])})
    if rng.random() < 0.5:
        out.append({"name": "APP_MODE", "valueFrom": {"configMapKeyRef": {
            "name": cm_name, "key": "mode"}}})
    if rng.random() < 0.4:
        out.append({"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": secret_name, "key": "password"}}})
    if rng.random() < 0.3:
        out.append({"name": "POD_NAME", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.name"}}})
    return out


def container(rng, name, long_running, cm_name, secret_name):
    port = rng.choice([80, 8080, 8443, 9090, 3000, 5432, 6379])
    c = {
        "name": name,
        "image": pick_image(rng),
        "imagePullPolicy": rng.choice(["IfNotPresent", "IfNotPresent", "Always"]),
    }
    if rng.random() < 0.4:
        c["args"] = rng.choice([["--config=/etc/app/config.yaml"],
                                ["serve", "--port=%d" % port],
                                ["--log-format=json", "--v=2"]])
    if long_running:
        c["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        if rng.random() < 0.3:
            c["ports"].append({"name": "metrics", "containerPort": 9102, "protocol": "TCP"})
    else:
        c["command"] = ["/bin/sh", "-c", rng.choice(
            ["run-batch --shard=$(SHARD)", "python -m app.jobs.nightly", "/app/migrate up"])]
    c["env"] = env(rng, cm_name, secret_name)
    c["resources"] = resources(rng)
    if long_running:
        if rng.random() < 0.85:
            c["readinessProbe"] = probe(rng, port)
        if rng.random() < 0.7:
            c["livenessProbe"] = probe(rng, port)
    if rng.random() < 0.6:
        c["volumeMounts"] = [{"name": "config", "mountPath": "/etc/app", "readOnly": True}]
    if rng.random() < 0.7:
        c["securityContext"] = {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": rng.random() < 0.5,
            "capabilities": {"drop": ["ALL"]},
        }
    elif rng.random() < 0.1:
        c["securityContext"] = {"privileged": True}
    return c


def init_container(rng, name):
    return {
        "name": name,
        "image": pick_image(rng),
        "command": ["/bin/sh", "-c", rng.choice(
            ["until nc -z db 5432; do sleep 1; done", "cp -r /seed/. /data/",
             "/app/migrate up", "chown -R 1000:1000 /data"])],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }


def pod_spec(rng, base, long_running, restart_policy):
    cm_name = base + "-config"
    secret_name = base + "-secrets"
    n = rng.choice([1, 1, 1, 2, 2, 3])
    names = ["app", "sidecar", "proxy"] if long_running else ["job", "uploader", "sidecar"]
    spec = {}
    if rng.random() < 0.25:
        spec["initContainers"] = [init_container(rng, "init-%d" % i)
                                  for i in range(rng.randint(1, 2))]
    spec["containers"] = [container(rng, names[i], long_running, cm_name, secret_name)
                          for i in range(n)]
    spec["restartPolicy"] = restart_policy
    spec["terminationGracePeriodSeconds"] = rng.choice([30, 30, 60, 10])
    spec["serviceAccountName"] = base if rng.random() < 0.6 else "default"
    if rng.random() < 0.5:
        spec["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                   "seccompProfile": {"type": "RuntimeDefault"}}
    if rng.random() < 0.3:
        spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
    if rng.random() < 0.2:
        spec["tolerations"] = [{"key": "dedicated", "operator": "Equal",
                                "value": rng.choice(TEAMS), "effect": "NoSchedule"}]
    if rng.random() < 0.15:
        spec["imagePullSecrets"] = [{"name": "regcred"}]
    spec["volumes"] = [{"name": "config", "configMap": {"name": cm_name}}]
    return spec


def meta(name, namespace, labels, rng):
    m = {"name": name, "namespace": namespace, "labels": labels}
    if rng.random() < 0.3:
        m["annotations"] = {"meta.helm.sh/release-name": name,
                            "meta.helm.sh/release-namespace": namespace}
    return m


def make_object(rng, serial):
    """Returns (kind, object) for object number `serial`."""
    kind = weighted(rng, KIND_WEIGHTS)
    component = rng.choice(COMPONENTS)
    name = object_name(rng, component, serial)
    ns = rng.choice(NAMESPACES)
    team = rng.choice(TEAMS)
    version = "%d.%d.%d" % (rng.randint(0, 4), rng.randint(0, 20), rng.randint(0, 30))
    labels = std_labels(name, team, version, component)
    selector = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}

    if kind == "Deployment":
        obj = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(name, ns, labels, rng),
            "spec": {
                "replicas": rng.choice([1, 2, 3, 3, 5, 10]),
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": dict(labels)},
                             "spec": pod_spec(rng, name, True, "Always")},
            },
        }
    elif kind == "StatefulSet":
        obj = {
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": meta(name, ns, labels, rng),
            "spec": {
                "serviceName": name,
                "replicas": rng.choice([1, 3, 3, 5]),
                "podManagementPolicy": rng.choice(["OrderedReady", "Parallel"]),
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": dict(labels)},
                             "spec": pod_spec(rng, name, True, "Always")},
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "storageClassName": rng.choice(["standard", "fast-ssd"]),
                             "resources": {"requests": {"storage": rng.choice(["1Gi", "10Gi", "50Gi"])}}},
                }],
            },
        }
    elif kind == "Job":
        obj = {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": meta(name, ns, labels, rng),
            "spec": {
                "backoffLimit": rng.choice([0, 3, 6]),
                "completions": rng.choice([1, 1, 5]),
                "parallelism": rng.choice([1, 2]),
                "ttlSecondsAfterFinished": 3600,
                "template": {"metadata": {"labels": dict(labels)},
                             "spec": pod_spec(rng, name, False, rng.choice(["Never", "OnFailure"]))},
            },
        }
    elif kind == "CronJob":
        obj = {
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": meta(name, ns, labels, rng),
            "spec": {
                "schedule": rng.choice(["*/5 * * * *", "0 * * * *", "30 2 * * *", "0 0 * * 0"]),
                "concurrencyPolicy": rng.choice(["Forbid", "Allow", "Replace"]),
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {
                    "backoffLimit": 2,
                    "template": {"metadata": {"labels": dict(labels)},
                                 "spec": pod_spec(rng, name, False, "OnFailure")},
                }},
            },
        }
    elif kind == "Pod":
        obj = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": meta(name, ns, labels, rng),
            "spec": pod_spec(rng, name, True, rng.choice(["Always", "Always", "Never"])),
        }
    elif kind == "Service":
        svc_type = rng.choice(["ClusterIP", "ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"])
        port = rng.choice([80, 443, 8080, 9090])
        obj = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta(name, ns, labels, rng),
            "spec": {
                "type": svc_type,
                "selector": selector,
                "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
            },
        }
    else:  # ConfigMap
        data = {"mode": rng.choice(["production", "canary", "shadow"]),
                "LOG_LEVEL": rng.choice(["info", "warn", "debug"])}
        if rng.random() < 0.5:
            data["config.yaml"] = ("server:\n  port: %d\n  readTimeout: 30s\n"
                                   "features:\n  - %s\n  - %s\n"
                                   % (rng.choice([8080, 8443]), rng.choice(WORDS), rng.choice(WORDS)))
        obj = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta(name, ns, labels, rng),
            "data": data,
        }
    return kind, obj


# ---------------------------------------------------------------------------
# Minimal YAML emitter (block style).
# ---------------------------------------------------------------------------

_PLAIN_RE = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./-]*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    s = str(v)
    if _PLAIN_RE.match(s) and s.lower() not in _RESERVED:
        return s
    # A JSON string literal is a valid YAML double-quoted scalar.
    return _json_str(s)


def _json_str(s):
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _emit(v, indent, out):
    pad = "  " * indent
    if isinstance(v, dict):
        for k, val in v.items():
            key = _scalar(k)
            if isinstance(val, dict) and val:
                out.append("%s%s:\n" % (pad, key))
                _emit(val, indent + 1, out)
            elif isinstance(val, list) and val:
                out.append("%s%s:\n" % (pad, key))
                _emit(val, indent, out)
            elif isinstance(val, dict):
                out.append("%s%s: {}\n" % (pad, key))
            elif isinstance(val, list):
                out.append("%s%s: []\n" % (pad, key))
            else:
                out.append("%s%s: %s\n" % (pad, key, _scalar(val)))
    elif isinstance(v, list):
        for item in v:
            if isinstance(item, dict) and item:
                sub = []
                _emit(item, indent + 1, sub)
                first = sub[0]
                # Put the first key on the "- " line.
                sub[0] = pad + "- " + first[len(pad) + 2:]
                out.extend(sub)
            elif isinstance(item, list) and item:
                out.append("%s-\n" % pad)
                _emit(item, indent + 1, out)
            else:
                out.append("%s- %s\n" % (pad, _scalar(item) if not isinstance(item, (dict, list))
                                          else ("{}" if isinstance(item, dict) else "[]")))
    else:
        out.append("%s%s\n" % (pad, _scalar(v)))


def to_yaml(obj):
    out = []
    _emit(obj, 0, out)
    return "".join(out)


# ---------------------------------------------------------------------------


def generate(n, seed):
    """Yields (kind, object) for n objects."""
    rng = random.Random(seed)
    for i in range(n):
        yield make_object(rng, i)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, required=True, help="number of objects")
    p.add_argument("--out", required=True, help="output file ('-' for stdout)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    args = p.parse_args(argv)
    if args.objects < 0:
        p.error("--objects must be >= 0")

    f = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")
    try:
        for i, (_, obj) in enumerate(generate(args.objects, args.seed)):
            if i:
                f.write("---\n")
            f.write(to_yaml(obj))
    finally:
        if f is not sys.stdout:
            f.close()


if __name__ == "__main__":
    main()
