#!/usr/bin/env python3
"""Writes a deterministic stream of kube-apiserver audit Events, one JSON per line.

Usage: gen_audit.py --events N --out FILE [--gzip] [--version v1|v1beta1]
                    [--seed S] [--no-received-object]

The events follow the log backend's wire format, modelled on the real samples
in tests/fixtures/audit/real/ (see SOURCE.md there).

Wire format:
  - Compact JSON in the apiserver's key order: kind, apiVersion, level,
    auditID, stage, requestURI, verb, user, sourceIPs, userAgent, objectRef,
    responseStatus, requestObject, responseObject, requestReceivedTimestamp,
    stageTimestamp, annotations.
  - Go-style escaping of '&', '<' and '>' (\\u0026, \\u003c, \\u003e).
  - Microsecond RFC 3339 timestamps.
  - --version v1beta1 adds the v1beta1-only `metadata.creationTimestamp` and
    `timestamp` fields and sets apiVersion to audit.k8s.io/v1beta1.

Mix, as shares of the N lines written:
  ~40%  Pod-bearing create/update events at Request or RequestResponse level.
        - Kinds: Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and
          CronJob.
        - Each auditID appears twice: a RequestReceived line, then, a few
          lines later (interleaved with other traffic), its ResponseComplete
          line. Both lines carry the requestObject.
        - RequestResponse ResponseComplete lines also carry a responseObject.
  ~20%  Metadata-level events, with no requestObject:
        - secrets, serviceaccounts/token, pods/log, pods/exec;
        - tokenreviews, subjectaccessreviews;
        - node status, namespaces, non-resource URLs.
  ~20%  Other resources: configmaps and secrets get/list/watch at Request
        level, plus a few configmap updates that carry a (non-pod)
        requestObject.
  ~10%  Deletes, patches and gets of pods: kubectl delete with DeleteOptions,
        label patches, kubelet pods/status patches, gets.
  ~10%  Noise: Lease renewals (kube-node-lease and leader election) and
        Event creates.
Only the Pod-bearing requests have a RequestReceived line (as with per-rule
omitStages in a real policy); every other request is a single
ResponseComplete line.

Notes on real-world fidelity:
  - The real apiserver emits RequestReceived before the request body is
    decoded, so real RequestReceived events never carry a requestObject.
    Pass --no-received-object to reproduce that. The default, where both
    stages carry the object, exercises consumers that must de-duplicate by
    auditID.
  - In both modes, RequestReceived lines carry no responseStatus and no
    annotations, and have stageTimestamp == requestReceivedTimestamp.
  - Controller-made pod creates use generateName. Their objectRef therefore
    has no `name`, as in the real replicaset-controller samples.

Images come from the pools in gen_manifests.py (IMAGES_GOOD/IMAGES_BAD). The
output depends only on --events, --seed (default 42), --version and
--no-received-object; the same arguments give a byte-identical file, with
--gzip too (no name or mtime is stored in the gzip header). Events are
written as they are generated; memory use stays flat for N = 1,000,000 and
beyond. Nothing is printed except the events themselves when --out is '-'.
"""

import argparse
import copy
import gzip
import heapq
import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # leave no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_manifests as gm  # noqa: E402  (same directory)

K8S_VERSION = "v1.30.4"
K8S_COMMIT = "a51b3b7"
KUBECTL_UA = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"
KCM_UA = "kube-controller-manager/%s (linux/amd64) kubernetes/%s" % (K8S_VERSION, K8S_COMMIT)
KUBELET_UA = "kubelet/%s (linux/amd64) kubernetes/%s" % (K8S_VERSION, K8S_COMMIT)
SCHED_UA = "kube-scheduler/%s (linux/amd64) kubernetes/%s" % (K8S_VERSION, K8S_COMMIT)
APISERVER_UA = "kube-apiserver/%s (linux/amd64) kubernetes/%s" % (K8S_VERSION, K8S_COMMIT)
CONTROL_PLANE_IP = "10.0.0.10"
NODES = ["worker-%s" % s for s in ("a1b2", "c3d4", "e5f6", "g7h8", "i9j0", "k1l2", "m3n4", "o5p6")]
NODE_IPS = {n: "10.0.1.%d" % (11 + i) for i, n in enumerate(NODES)}
POOL_SIZE = 2048

SEP = (",", ":")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=SEP).encode


def go_json(obj):
    """Compact JSON with Go encoding/json's HTML escaping."""
    return _dumps(obj).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def sa_user(ns, name, uid):
    return {
        "username": "system:serviceaccount:%s:%s" % (ns, name),
        "uid": uid,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:%s" % ns,
                   "system:authenticated"],
    }


def rbac_reason(binding, role, subject):
    return 'RBAC: allowed by ClusterRoleBinding "%s" of ClusterRole "%s" to %s' % (
        binding, role, subject)


_UID_RNG = random.Random(0xA0D17)


def fixed_uid():
    """A UUID-shaped id that is the same in every run."""
    h = "%032x" % _UID_RNG.getrandbits(128)
    return "%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:])


def controller(name):
    return {
        "user": sa_user("kube-system", name, fixed_uid()),
        "ua": "%s/system:serviceaccount:kube-system:%s" % (KCM_UA, name),
        "ips": [CONTROL_PLANE_IP],
        "reason": rbac_reason("system:controller:" + name, "system:controller:" + name,
                              'ServiceAccount "%s/kube-system"' % name),
    }


CONTROLLERS = {
    "replicaset-controller": controller("replicaset-controller"),
    "statefulset-controller": controller("statefulset-controller"),
    "job-controller": controller("job-controller"),
    "daemon-set-controller": controller("daemon-set-controller"),
    "deployment-controller": controller("deployment-controller"),
    "cronjob-controller": controller("cronjob-controller"),
}

APPLIERS = [
    # (weight, actor)
    (30, {
        "user": {"username": "kubernetes-admin",
                 "groups": ["kubeadm:cluster-admins", "system:authenticated"],
                 "extra": {"authentication.kubernetes.io/credential-id": [
                     "X509SHA256=96f6f167b921061bb17c858bdbfb75b4cba41cc73218345837fa48d1f3f68fda"]}},
        "ua": KUBECTL_UA, "ips": ["192.168.49.1"],
        "reason": rbac_reason("kubeadm:cluster-admins", "cluster-admin",
                              'Group "kubeadm:cluster-admins"'),
        "fm": "kubectl-client-side-apply", "last_applied": True}),
    (15, {
        "user": {"username": "alice@example.com",
                 "groups": ["oidc:platform-team", "system:authenticated"]},
        "ua": "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625", "ips": ["203.0.113.24"],
        "reason": 'RBAC: allowed by RoleBinding "platform-edit/%(ns)s" of ClusterRole "edit" '
                  'to Group "oidc:platform-team"',
        "fm": "kubectl-create", "last_applied": False}),
    (20, {
        "user": sa_user("argocd", "argocd-application-controller", "5e1c9a64-2f0e-4c39-9a55-0b51f3b6c7d2"),
        "ua": "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        "ips": ["10.244.3.17"],
        "reason": rbac_reason("argocd-application-controller", "argocd-application-controller",
                              'ServiceAccount "argocd-application-controller/argocd"'),
        "fm": "argocd-controller", "last_applied": True}),
    (20, {
        "user": sa_user("ci", "deployer", "0b7f5d2e-91c4-4c0b-8f13-6d2f0a9e4b11"),
        "ua": "Helm/3.14.2", "ips": ["10.244.7.42"],
        "reason": 'RBAC: allowed by RoleBinding "ci-deployer/%(ns)s" of ClusterRole "admin" '
                  'to ServiceAccount "deployer/ci"',
        "fm": "helm", "last_applied": False}),
    (15, {
        "user": sa_user("flux-system", "kustomize-controller", "7a2d4e61-3b8f-4a7e-b0c5-92e1d7f4a3c8"),
        "ua": "kustomize-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
        "ips": ["10.244.1.9"],
        "reason": rbac_reason("cluster-reconciler-flux-system", "cluster-admin",
                              'ServiceAccount "kustomize-controller/flux-system"'),
        "fm": "kustomize-controller", "last_applied": False}),
]

RESOURCE_OF = {
    # kind: (resource, apiGroup, apiVersion, objectApiVersion)
    "Pod": ("pods", "", "v1", "v1"),
    "Deployment": ("deployments", "apps", "v1", "apps/v1"),
    "ReplicaSet": ("replicasets", "apps", "v1", "apps/v1"),
    "StatefulSet": ("statefulsets", "apps", "v1", "apps/v1"),
    "DaemonSet": ("daemonsets", "apps", "v1", "apps/v1"),
    "Job": ("jobs", "batch", "v1", "batch/v1"),
    "CronJob": ("cronjobs", "batch", "v1", "batch/v1"),
}


def collection_uri(resource, group, version, ns):
    base = "/api/v1" if group == "" else "/apis/%s/%s" % (group, version)
    return "%s/namespaces/%s/%s" % (base, ns, resource)


def object_ref(resource, group, version, ns, name=None, uid=None, rv=None, sub=None):
    ref = {"resource": resource}
    if ns is not None:
        ref["namespace"] = ns
    if name is not None:
        ref["name"] = name
    if uid is not None:
        ref["uid"] = uid
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if rv is not None:
        ref["resourceVersion"] = rv
    if sub is not None:
        ref["subresource"] = sub
    return ref


# ---------------------------------------------------------------------------
# Pool of Pod-bearing request bodies, serialised once with placeholders.
# ---------------------------------------------------------------------------

P_NAME, P_NS, P_RNAME, P_UID, P_RV, P_TS = "@@N@@", "@@NS@@", "@@RN@@", "@@UID@@", "@@RV@@", "@@TS@@"


def _default_pod_spec(spec):
    """Fields the apiserver defaults, as present in controller-copied templates."""
    for c in spec.get("initContainers", []) + spec["containers"]:
        c.setdefault("resources", {})
        c["terminationMessagePath"] = "/dev/termination-log"
        c["terminationMessagePolicy"] = "File"
        c.setdefault("imagePullPolicy", "IfNotPresent")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec["schedulerName"] = "default-scheduler"
    return spec


def _template_spec(obj):
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def _to_kind(rng, obj, kind):
    """Turns a gen_manifests workload into `kind` (ReplicaSet/DaemonSet)."""
    spec = obj["spec"]
    template = spec["template"]
    if kind == "DaemonSet":
        obj["spec"] = {"selector": spec["selector"], "template": template,
                       "updateStrategy": {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}
    elif kind == "ReplicaSet":
        obj["spec"] = {"replicas": spec["replicas"], "selector": spec["selector"],
                       "template": template}
    obj["kind"] = kind
    return obj


def _workload(rng, serial, want):
    """A gen_manifests object of the wanted pod-bearing family."""
    while True:
        _, obj = gm.make_object(rng, serial)
        k = obj["kind"]
        if want in ("Deployment", "ReplicaSet", "DaemonSet") and k == "Deployment":
            return _to_kind(rng, obj, want) if want != "Deployment" else obj
        if want == k:
            return obj


def _response_variant(req, kind, name_fmt):
    """The stored object as the apiserver returns it (RequestResponse level)."""
    generated = name_fmt is None
    resp = copy.deepcopy(req)
    md = resp["metadata"]
    md.pop("creationTimestamp", None)
    new_md = {"name": P_RNAME if generated else name_fmt}
    if generated:
        new_md["generateName"] = md.pop("generateName")
    new_md["namespace"] = P_NS
    new_md["uid"] = P_UID
    new_md["resourceVersion"] = P_RV
    new_md["creationTimestamp"] = P_TS
    for k in ("labels", "annotations", "ownerReferences"):
        if k in md:
            new_md[k] = md[k]
    resp["metadata"] = new_md
    if kind == "Pod":
        spec = resp["spec"]
        sa = spec.get("serviceAccountName", "default")
        spec["serviceAccountName"] = sa
        spec["serviceAccount"] = sa
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        spec["tolerations"] = spec.get("tolerations", []) + [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
             "effect": "NoExecute", "tolerationSeconds": 300}]
        resp["status"] = {"phase": "Pending", "qosClass": "Burstable"}
    else:
        resp["status"] = {}
    return resp


def build_pool(seed):
    """Pod-bearing request templates.

    Each entry is a dict holding:
      - kind: one of the RESOURCE_OF kinds;
      - source: "controller" or "applier";
      - actor: for controller sources, the controller name; otherwise an
        index into APPLIERS;
      - name_fmt: the object's name with the name placeholder, or None
        when the object is named by generateName;
      - req: the serialised requestObject, with name/namespace placeholders;
      - resp: the serialised responseObject, with placeholders.
    """
    rng = random.Random(seed * 1000003 + 17)
    applier_weights = [(i, w) for i, (w, _) in enumerate(APPLIERS)]
    pool = []
    for serial in range(POOL_SIZE):
        r = rng.random()
        if r < 0.45:
            # Controller-made objects (copied, defaulted templates).
            which = gm.weighted(rng, [("rs-pod", 45), ("sts-pod", 12), ("job-pod", 15),
                                      ("ds-pod", 8), ("deploy-rs", 12), ("cron-job", 8)])
            if which in ("rs-pod", "sts-pod", "ds-pod", "job-pod"):
                family = {"rs-pod": "Deployment", "sts-pod": "StatefulSet",
                          "ds-pod": "DaemonSet", "job-pod": "Job"}[which]
                src = _workload(rng, serial, family)
                src_name = src["metadata"]["name"]
                tmpl = src["spec"]["template"]
                labels = dict(tmpl["metadata"]["labels"])
                if which == "rs-pod":
                    h = "%010x" % rng.getrandbits(40)
                    labels["pod-template-hash"] = h[:10]
                    owner_kind, owner, ctrl = "ReplicaSet", P_NAME + "-" + h[:10], "replicaset-controller"
                    gen = owner + "-"
                elif which == "sts-pod":
                    owner_kind, owner, ctrl = "StatefulSet", P_NAME, "statefulset-controller"
                    labels["apps.kubernetes.io/pod-index"] = str(rng.randint(0, 4))
                    labels["controller-revision-hash"] = P_NAME + "-%08x" % rng.getrandbits(32)
                    gen = None
                elif which == "ds-pod":
                    owner_kind, owner, ctrl = "DaemonSet", P_NAME, "daemon-set-controller"
                    labels["controller-revision-hash"] = "%09x" % rng.getrandbits(36)
                    labels["pod-template-generation"] = str(rng.randint(1, 9))
                    gen = owner + "-"
                else:
                    owner_kind, owner, ctrl = "Job", P_NAME, "job-controller"
                    labels["batch.kubernetes.io/job-name"] = P_NAME
                    labels["job-name"] = P_NAME
                    gen = owner + "-"
                md = {}
                if gen is not None:
                    md["generateName"] = gen
                else:
                    md["name"] = P_NAME + "-" + labels["apps.kubernetes.io/pod-index"]
                md["namespace"] = P_NS
                md["creationTimestamp"] = None
                md["labels"] = labels
                md["ownerReferences"] = [{
                    "apiVersion": RESOURCE_OF[owner_kind][3], "kind": owner_kind, "name": owner,
                    "uid": "%08x-%04x-4%03x-8%03x-%012x" % (
                        rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12),
                        rng.getrandbits(12), rng.getrandbits(48)),
                    "controller": True, "blockOwnerDeletion": True}]
                req = {"kind": "Pod", "apiVersion": "v1", "metadata": md,
                       "spec": _default_pod_spec(copy.deepcopy(tmpl["spec"])), "status": {}}
                kind, name_fmt = "Pod", md.get("name")
            elif which == "deploy-rs":
                src = _workload(rng, serial, "Deployment")
                src_name = src["metadata"]["name"]
                h = "%010x" % rng.getrandbits(40)
                tmpl = copy.deepcopy(src["spec"]["template"])
                tmpl["metadata"]["labels"]["pod-template-hash"] = h
                tmpl["metadata"]["creationTimestamp"] = None
                _default_pod_spec(tmpl["spec"])
                req = {"kind": "ReplicaSet", "apiVersion": "apps/v1",
                       "metadata": {"name": P_NAME + "-" + h, "namespace": P_NS,
                                    "creationTimestamp": None,
                                    "labels": dict(tmpl["metadata"]["labels"]),
                                    "annotations": {"deployment.kubernetes.io/desired-replicas": str(src["spec"]["replicas"]),
                                                    "deployment.kubernetes.io/max-replicas": str(src["spec"]["replicas"] + 1),
                                                    "deployment.kubernetes.io/revision": str(rng.randint(1, 30))},
                                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "name": P_NAME, "uid": "%032x" % rng.getrandbits(128),
                                                         "controller": True, "blockOwnerDeletion": True}]},
                       "spec": {"replicas": src["spec"]["replicas"],
                                "selector": {"matchLabels": dict(src["spec"]["selector"]["matchLabels"],
                                                                 **{"pod-template-hash": h})},
                                "template": tmpl},
                       "status": {"replicas": 0}}
                kind, name_fmt, ctrl = "ReplicaSet", req["metadata"]["name"], "deployment-controller"
            else:  # cron-job
                src = _workload(rng, serial, "CronJob")
                src_name = src["metadata"]["name"]
                jt = copy.deepcopy(src["spec"]["jobTemplate"])
                jt["spec"]["template"]["metadata"]["creationTimestamp"] = None
                _default_pod_spec(jt["spec"]["template"]["spec"])
                req = {"kind": "Job", "apiVersion": "batch/v1",
                       "metadata": {"name": P_NAME + "-%d" % (28000000 + rng.randint(0, 999999)),
                                    "namespace": P_NS, "creationTimestamp": None,
                                    "labels": dict(src["metadata"]["labels"]),
                                    "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-03-04T06:00:00Z"},
                                    "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                                         "name": P_NAME, "uid": "%032x" % rng.getrandbits(128),
                                                         "controller": True, "blockOwnerDeletion": True}]},
                       "spec": jt["spec"], "status": {}}
                kind, name_fmt, ctrl = "Job", req["metadata"]["name"], "cronjob-controller"
            entry = {"kind": kind, "source": "controller", "actor": ctrl, "name_fmt": name_fmt}
        else:
            # Objects sent by people and deployment tools.
            kind = gm.weighted(rng, [("Deployment", 40), ("StatefulSet", 12), ("DaemonSet", 6),
                                     ("Job", 10), ("CronJob", 8), ("Pod", 24)])
            obj = _workload(rng, serial, kind)
            src_name = obj["metadata"]["name"]
            obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                   "metadata": obj["metadata"], "spec": obj["spec"]}
            obj["metadata"]["name"] = P_NAME
            obj["metadata"]["namespace"] = P_NS
            actor = gm.weighted(rng, applier_weights)
            req = {"kind": obj["kind"], "apiVersion": obj["apiVersion"],
                   "metadata": {"name": P_NAME, "namespace": P_NS, "creationTimestamp": None,
                                "labels": obj["metadata"]["labels"]},
                   "spec": obj["spec"]}
            annotations = dict(obj["metadata"].get("annotations", {}))
            if APPLIERS[actor][1]["last_applied"]:
                annotations["kubectl.kubernetes.io/last-applied-configuration"] = go_json(obj) + "\n"
            if annotations:
                req["metadata"]["annotations"] = annotations
            req["status"] = {}
            entry = {"kind": kind, "source": "applier", "actor": actor, "name_fmt": P_NAME}
        # Labels, selectors and config names derived from the source object's
        # name follow the per-event name.
        entry["req"] = go_json(req).replace(src_name, P_NAME)
        entry["resp"] = go_json(_response_variant(req, entry["kind"], entry["name_fmt"])).replace(
            src_name, P_NAME)
        pool.append(entry)
    return pool


# ---------------------------------------------------------------------------
# Clock and ids.
# ---------------------------------------------------------------------------


class Clock:
    """Microsecond clock starting 2025-03-04T06:00:00Z, advancing per line."""

    def __init__(self, rng):
        self.rng = rng
        self.us = 1741068000 * 1000000
        self._sec = None
        self._sec_str = ""

    def tick(self):
        # Roughly 300 events per second, with bursts.
        self.us += int(self.rng.expovariate(1.0 / 3300)) + 1
        return self.us

    def fmt(self, us):
        sec, frac = divmod(us, 1000000)
        if sec != self._sec:
            self._sec = sec
            self._sec_str = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return "%s.%06dZ" % (self._sec_str, frac)

    def fmt_sec(self, us):
        self.fmt(us)
        return self._sec_str + "Z"


def new_uuid(rng):
    h = "%032x" % rng.getrandbits(128)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3],
                                  h[17:20], h[20:])


# ---------------------------------------------------------------------------
# Event writer.
# ---------------------------------------------------------------------------


class Writer:
    def __init__(self, out, version, clock):
        self.out = out
        self.v1beta1 = version == "v1beta1"
        self.api_version = "audit.k8s.io/" + version
        self.clock = clock

    def emit(self, level, audit_id, stage, uri, verb, user, ips, ua, ref, status,
             req_obj, resp_obj, received_us, stage_us, annotations):
        ev = {"kind": "Event", "apiVersion": self.api_version}
        if self.v1beta1:
            ev["metadata"] = {"creationTimestamp": self.clock.fmt_sec(stage_us)}
            ev["level"] = level
            ev["timestamp"] = self.clock.fmt_sec(stage_us)
        else:
            ev["level"] = level
        ev["auditID"] = audit_id
        ev["stage"] = stage
        ev["requestURI"] = uri
        ev["verb"] = verb
        ev["user"] = user
        ev["sourceIPs"] = ips
        ev["userAgent"] = ua
        if ref is not None:
            ev["objectRef"] = ref
        if status is not None:
            ev["responseStatus"] = status
        head = go_json(ev)
        tail = {"requestReceivedTimestamp": self.clock.fmt(received_us),
                "stageTimestamp": self.clock.fmt(stage_us)}
        if annotations is not None:
            tail["annotations"] = annotations
        tail_s = go_json(tail)
        parts = [head[:-1]]
        if req_obj is not None:
            parts.append(',"requestObject":')
            parts.append(req_obj)
        if resp_obj is not None:
            parts.append(',"responseObject":')
            parts.append(resp_obj)
        parts.append(",")
        parts.append(tail_s[1:])
        parts.append("\n")
        self.out.write("".join(parts).encode("utf-8"))


def ok(code):
    return {"metadata": {}, "code": code}


def failure(code, reason, message, details=None):
    st = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        st["details"] = details
    st["code"] = code
    return st


def fmt_reason(actor, ns):
    reason = actor.get("reason", "")
    return reason % {"ns": ns} if "%(ns)s" in reason else reason


def allow(reason=""):
    return {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason}


class Generator:
    def __init__(self, seed, version, received_object):
        self.rng = random.Random(seed)
        self.pool = build_pool(seed)
        self.clock = Clock(self.rng)
        self.version = version
        self.received_object = received_object
        self.pending = []  # heap of (due_line, seq, closure-args)
        self.seq = 0
        self.rv = 4000000
        self.node_lease_rv = {}

    # -- helpers --------------------------------------------------------
    def next_rv(self):
        self.rv += self.rng.randint(1, 40)
        return str(self.rv)

    def rand_name(self):
        return gm.object_name(self.rng, self.rng.choice(gm.COMPONENTS), self.rng.randint(0, 99999))

    def suffix(self, n=5):
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))

    def latency(self):
        return int(self.rng.lognormvariate(8.3, 0.8)) + 300  # ~4 ms median

    # -- pod-bearing ----------------------------------------------------
    def start_pod_bearing(self, w, line):
        rng = self.rng
        e = self.pool[rng.randrange(len(self.pool))]
        kind = e["kind"]
        resource, group, version, _ = RESOURCE_OF[kind]
        ns = rng.choice(gm.NAMESPACES)
        base = self.rand_name()
        if e["source"] == "controller":
            actor = CONTROLLERS[e["actor"]]
            verb = "create"
            fm = None
        else:
            actor = APPLIERS[e["actor"]][1]
            verb = "create" if rng.random() < 0.65 else "update"
            fm = actor["fm"]
        level = "Request" if rng.random() < 0.6 else "RequestResponse"
        uid = new_uuid(rng)
        rv = self.next_rv()
        uri = collection_uri(resource, group, version, ns)
        name = None if e["name_fmt"] is None else e["name_fmt"].replace(P_NAME, base)
        if verb == "update":
            uri += "/" + name
            ref = object_ref(resource, group, version, ns, name, uid, str(int(rv) - 7))
        else:
            # generateName creates have no name in objectRef.
            ref = object_ref(resource, group, version, ns, name)
        if fm is not None:
            if fm.startswith("kubectl"):
                uri += "?fieldManager=%s&fieldValidation=Strict" % fm
            else:
                uri += "?fieldManager=%s" % fm
        req = e["req"].replace(P_NAME, base).replace(P_NS, ns)
        if verb == "update":
            req = req.replace('"creationTimestamp":null', '"resourceVersion":"%s","creationTimestamp":null'
                              % (int(rv) - 7), 1)
        audit_id = new_uuid(rng)
        received = self.clock.us
        reason = fmt_reason(actor, ns)
        # RequestReceived now.
        w.emit(level, audit_id, "RequestReceived", uri, verb, actor["user"], actor["ips"],
               actor["ua"], ref, None, req if self.received_object else None, None,
               received, received, None)
        # ResponseComplete later, interleaved with other traffic.
        r = rng.random()
        if r < 0.02 and verb == "create" and e["source"] != "controller":
            details = {"name": name, "group": group, "kind": resource} if group else \
                {"name": name, "kind": resource}
            status = failure(409, "AlreadyExists", '%s "%s" already exists'
                             % (resource + "." + group if group else resource, name), details)
            resp = None
        elif r < 0.03 and e["source"] != "controller" and verb == "create":
            field = "spec.containers[0].image" if kind == "Pod" else \
                "spec.template.spec.containers[0].image"
            status = failure(422, "Invalid", '%s "%s" is invalid: %s: Required value' % (kind, name, field),
                             {"name": name, "group": group, "kind": kind,
                              "causes": [{"reason": "FieldValueRequired", "message": "Required value",
                                          "field": field}]})
            resp = None
        else:
            status = ok(201 if verb == "create" else 200)
            resp = None
            if level == "RequestResponse":
                rname = base + "-" + self.suffix() if name is None else name
                resp = (e["resp"].replace(P_RNAME, rname).replace(P_NAME, base).replace(P_NS, ns)
                        .replace(P_UID, uid).replace(P_RV, rv).replace(P_TS, self.clock.fmt_sec(received)))
        ann = allow(reason)
        if kind == "Pod" and status["code"] < 300:
            ann["pod-security.kubernetes.io/enforce-policy"] = "baseline:latest"
        delay = 1 + int(rng.expovariate(1 / 4.0))
        self.seq += 1
        heapq.heappush(self.pending, (line + delay, self.seq,
                                      (level, audit_id, uri, verb, actor, ref, status, req, resp,
                                       received, ann)))

    def finish_pod_bearing(self, w, item):
        level, audit_id, uri, verb, actor, ref, status, req, resp, received, ann = item
        stage_us = max(self.clock.us, received + 200)
        w.emit(level, audit_id, "ResponseComplete", uri, verb, actor["user"], actor["ips"],
               actor["ua"], ref, status, req, resp, received, stage_us, ann)

    # -- single-line categories -------------------------------------------
    def single(self, w, level, uri, verb, actor, ref, status, req_obj=None, ann=None):
        now = self.clock.us
        received = now - self.latency()
        if ann is None:
            ns = ref.get("namespace", "default") if ref else "default"
            ann = allow(fmt_reason(actor, ns))
        w.emit(level, new_uuid(self.rng), "ResponseComplete", uri, verb, actor["user"],
               actor["ips"], actor["ua"], ref, status, req_obj, None, received, now, ann)

    def kubelet(self, node=None):
        node = node or self.rng.choice(NODES)
        return node, {"user": {"username": "system:node:" + node,
                               "groups": ["system:nodes", "system:authenticated"]},
                      "ua": KUBELET_UA, "ips": [NODE_IPS[node]], "reason": ""}

    def metadata_event(self, w):
        rng = self.rng
        ns = rng.choice(gm.NAMESPACES)
        r = rng.random()
        if r < 0.22:
            name = self.rand_name() + "-secrets"
            verb = rng.choice(["get", "get", "update", "create"])
            actor = APPLIERS[3][1] if verb != "get" else CONTROLLERS[rng.choice(list(CONTROLLERS))]
            uri = collection_uri("secrets", "", "v1", ns)
            if verb != "create":
                uri += "/" + name
            self.single(w, "Metadata", uri, verb, actor,
                        object_ref("secrets", "", "v1", ns, name),
                        ok(201 if verb == "create" else 200),
                        ann=allow(fmt_reason(actor, ns)))
        elif r < 0.40:
            node, actor = self.kubelet()
            sa = rng.choice(["default", "app", "prometheus", "fluent-bit", "coredns"])
            uri = "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (ns, sa)
            self.single(w, "Metadata", uri, "create", actor,
                        object_ref("serviceaccounts", "", "v1", ns, sa, sub="token"), ok(201))
        elif r < 0.55:
            pod = self.rand_name() + "-" + self.suffix()
            uri = "/api/v1/namespaces/%s/pods/%s/log?container=app&follow=true&tailLines=100" % (ns, pod)
            self.single(w, "Metadata", uri, "get", APPLIERS[1][1],
                        object_ref("pods", "", "v1", ns, pod, sub="log"), ok(200),
                        ann=allow('RBAC: allowed by RoleBinding "platform-edit/%s" of ClusterRole '
                                  '"edit" to Group "oidc:platform-team"' % ns))
        elif r < 0.62:
            pod = self.rand_name() + "-" + self.suffix()
            uri = ("/api/v1/namespaces/%s/pods/%s/exec?command=sh&container=app&stdin=true"
                   "&stdout=true&tty=true" % (ns, pod))
            self.single(w, "Metadata", uri, "create", APPLIERS[0][1],
                        object_ref("pods", "", "v1", ns, pod, sub="exec"), ok(101))
        elif r < 0.75:
            actor = {"user": {"username": "system:kube-apiserver", "uid": "a9c1f0de-7b0c-4f3e-9d1b-0f6a2c1e5b77",
                              "groups": ["system:authenticated"]},
                     "ua": APISERVER_UA, "ips": ["::1"], "reason": ""}
            kind = rng.choice(["tokenreviews", "subjectaccessreviews"])
            grp = "authentication.k8s.io" if kind == "tokenreviews" else "authorization.k8s.io"
            self.single(w, "Metadata", "/apis/%s/v1/%s" % (grp, kind), "create",
                        rng.choice([actor, CONTROLLERS["replicaset-controller"]]),
                        object_ref(kind, grp, "v1", None), ok(201))
        elif r < 0.88:
            node, actor = self.kubelet()
            uri = "/api/v1/nodes/%s/status?timeout=10s" % node
            self.single(w, "Metadata", uri, "patch", actor,
                        object_ref("nodes", "", "v1", None, node, sub="status"), ok(200))
        elif r < 0.94:
            actor = APPLIERS[rng.randrange(len(APPLIERS))][1]
            self.single(w, "Metadata", "/api/v1/namespaces/" + ns, "get", actor,
                        object_ref("namespaces", "", "v1", None, ns), ok(200),
                        ann=allow(""))
        else:
            path = rng.choice(["/readyz", "/livez", "/version", "/openapi/v3", "/metrics",
                               "/apis/apps/v1?timeout=32s"])
            actor = {"user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
                     "ua": "kube-probe/1.30", "ips": ["10.0.0.1"], "reason": ""}
            if path.startswith("/apis") or path in ("/metrics", "/openapi/v3"):
                actor = APPLIERS[rng.randrange(len(APPLIERS))][1]
            self.single(w, "Metadata", path, "get", actor, None, ok(200), ann=allow(""))

    def other_resource_event(self, w):
        rng = self.rng
        ns = rng.choice(gm.NAMESPACES)
        resource = "configmaps" if rng.random() < 0.6 else "secrets"
        actor = rng.choice([APPLIERS[2][1], APPLIERS[4][1], self.kubelet()[1],
                            {"user": sa_user("monitoring", "prometheus", "4c1f2e9a-8d3b-4e5f-a6c7-1b2d3e4f5a6b"),
                             "ua": "prometheus/v2.51.0", "ips": ["10.244.5.33"],
                             "reason": 'RBAC: allowed by ClusterRoleBinding "prometheus" of ClusterRole '
                                       '"prometheus" to ServiceAccount "prometheus/monitoring"'}])
        reason = fmt_reason(actor, ns)
        r = rng.random()
        base = collection_uri(resource, "", "v1", ns)
        if r < 0.45:
            name = self.rand_name()
            code = 200 if rng.random() < 0.93 else 404
            status = ok(200) if code == 200 else failure(
                404, "NotFound", '%s "%s" not found' % (resource, name), {"name": name, "kind": resource})
            self.single(w, "Request", base + "/" + name, "get", actor,
                        object_ref(resource, "", "v1", ns, name), status, ann=allow(reason))
        elif r < 0.75:
            q = rng.choice(["?limit=500", "?labelSelector=app.kubernetes.io%2Fpart-of%3Dapi&limit=500",
                            "?resourceVersion=0"])
            self.single(w, "Request", base + q, "list", actor,
                        object_ref(resource, "", "v1", ns), ok(200), ann=allow(reason))
        elif r < 0.90:
            q = ("?allowWatchBookmarks=true&resourceVersion=%s&timeout=7m13s&timeoutSeconds=433&watch=true"
                 % self.next_rv())
            self.single(w, "Request", base + q, "watch", actor,
                        object_ref(resource, "", "v1", ns), ok(200), ann=allow(reason))
        else:
            name = self.rand_name() + "-config"
            rv = self.next_rv()
            cm = {"kind": "ConfigMap", "apiVersion": "v1",
                  "metadata": {"name": name, "namespace": ns, "resourceVersion": rv,
                               "creationTimestamp": None,
                               "labels": {"app.kubernetes.io/managed-by": "Helm"}},
                  "data": {"mode": rng.choice(["production", "canary"]),
                           "LOG_LEVEL": rng.choice(["info", "debug"])}}
            self.single(w, "Request", collection_uri("configmaps", "", "v1", ns) + "/" + name
                        + "?fieldManager=helm", "update", APPLIERS[3][1],
                        object_ref("configmaps", "", "v1", ns, name, new_uuid(rng), rv), ok(200),
                        req_obj=go_json(cm),
                        ann=allow(APPLIERS[3][1]["reason"] % {"ns": ns}))

    def pod_misc_event(self, w):
        rng = self.rng
        ns = rng.choice(gm.NAMESPACES)
        pod = self.rand_name() + "-" + "%010x" % rng.getrandbits(40) + "-" + self.suffix()
        uri = "/api/v1/namespaces/%s/pods/%s" % (ns, pod)
        r = rng.random()
        if r < 0.3:
            actor = APPLIERS[rng.choice([0, 1])][1]
            body = {"kind": "DeleteOptions", "apiVersion": "v1",
                    "propagationPolicy": "Background"}
            if rng.random() < 0.3:
                body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
            self.single(w, "Request", uri, "delete", actor,
                        object_ref("pods", "", "v1", ns, pod), ok(200), req_obj=go_json(body),
                        ann=allow(fmt_reason(actor, ns)))
        elif r < 0.45:
            actor = APPLIERS[0][1]
            body = {"metadata": {"labels": {rng.choice(["tier", "canary", "debug"]):
                                            rng.choice(["true", "backend", "v2"])}}}
            self.single(w, "Request", uri + "?fieldManager=kubectl-label", "patch", actor,
                        object_ref("pods", "", "v1", ns, pod), ok(200), req_obj=go_json(body),
                        ann=allow(actor["reason"]))
        elif r < 0.70:
            node, actor = self.kubelet()
            body = {"metadata": {"uid": new_uuid(rng)},
                    "status": {"$setElementOrder/conditions": [
                        {"type": "PodReadyToStartContainers"}, {"type": "Initialized"},
                        {"type": "Ready"}, {"type": "ContainersReady"}, {"type": "PodScheduled"}],
                        "conditions": [{"lastTransitionTime": self.clock.fmt_sec(self.clock.us),
                                        "status": "True", "type": "Ready"}],
                        "phase": "Running"}}
            self.single(w, "Request", uri + "/status", "patch", actor,
                        object_ref("pods", "", "v1", ns, pod, sub="status"), ok(200),
                        req_obj=go_json(body))
        else:
            actor = rng.choice([self.kubelet()[1], APPLIERS[1][1],
                                {"user": {"username": "system:kube-scheduler",
                                          "groups": ["system:authenticated"]},
                                 "ua": SCHED_UA, "ips": [CONTROL_PLANE_IP],
                                 "reason": rbac_reason("system:kube-scheduler", "system:kube-scheduler",
                                                       'User "system:kube-scheduler"')}])
            self.single(w, "Request", uri, "get", actor,
                        object_ref("pods", "", "v1", ns, pod), ok(200),
                        ann=allow(fmt_reason(actor, ns)))

    def noise_event(self, w):
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            node, actor = self.kubelet()
            rv = self.node_lease_rv.get(node, int(self.next_rv()))
            self.node_lease_rv[node] = rv + rng.randint(100, 900)
            uri = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s?timeout=10s" % node
            self.single(w, "Metadata", uri, "update", actor,
                        object_ref("leases", "coordination.k8s.io", "v1", "kube-node-lease", node,
                                   "%08x-0e66-11e9-a584-42010a280002" % (0x411615ce + NODES.index(node)),
                                   str(rv)), ok(200))
        elif r < 0.75:
            who = rng.choice(["kube-scheduler", "kube-controller-manager"])
            ua = (SCHED_UA if who == "kube-scheduler" else KCM_UA) + "/leader-election"
            actor = {"user": {"username": "system:" + who, "groups": ["system:authenticated"]},
                     "ua": ua, "ips": [CONTROL_PLANE_IP],
                     "reason": rbac_reason("system:" + who, "system:" + who, 'User "system:%s"' % who)}
            uri = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/%s?timeout=5s" % who
            self.single(w, "Metadata", uri, "update", actor,
                        object_ref("leases", "coordination.k8s.io", "v1", "kube-system", who,
                                   "1246e48d-5376-4ced-af4b-eb67db1f3a97", self.next_rv()), ok(200))
        else:
            ns = rng.choice(gm.NAMESPACES)
            node, actor = self.kubelet()
            involved = self.rand_name() + "-" + self.suffix()
            name = "%s.%x" % (involved, rng.getrandbits(60))
            reason, msg = rng.choice([("Pulled", 'Container image "%s" already present on machine'
                                       % gm.pick_image(rng)),
                                      ("Started", "Started container app"),
                                      ("Created", "Created container app"),
                                      ("BackOff", "Back-off restarting failed container app"),
                                      ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503")])
            ev = {"kind": "Event", "apiVersion": "v1",
                  "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                  "involvedObject": {"kind": "Pod", "namespace": ns, "name": involved,
                                     "uid": new_uuid(rng), "apiVersion": "v1",
                                     "fieldPath": "spec.containers{app}"},
                  "reason": reason, "message": msg,
                  "source": {"component": "kubelet", "host": node},
                  "firstTimestamp": self.clock.fmt_sec(self.clock.us),
                  "lastTimestamp": self.clock.fmt_sec(self.clock.us),
                  "count": 1, "type": "Warning" if reason in ("BackOff", "Unhealthy") else "Normal",
                  "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": node}
            self.single(w, "Request", "/api/v1/namespaces/%s/events" % ns, "create", actor,
                        object_ref("events", "", "v1", ns, name), ok(201), req_obj=go_json(ev))

    # -- main loop --------------------------------------------------------
    def run(self, n, w):
        rng = self.rng
        # Shares of new requests (each pod-bearing request yields two lines):
        # 20 : 20 : 20 : 10 : 10 -> 40% of lines pod-bearing.
        choices = [(0, 20), (1, 20), (2, 20), (3, 10), (4, 10)]
        handlers = [None, self.metadata_event, self.other_resource_event,
                    self.pod_misc_event, self.noise_event]
        pending = self.pending
        for line in range(n):
            self.clock.tick()
            if pending and (pending[0][0] <= line or n - line <= len(pending)):
                _, _, item = heapq.heappop(pending)
                self.finish_pod_bearing(w, item)
                continue
            cat = gm.weighted(rng, choices)
            if cat == 0:
                if n - line - len(pending) >= 2:
                    self.start_pod_bearing(w, line)
                    continue
                cat = 1
            handlers[cat](w)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, required=True, help="number of lines to write")
    p.add_argument("--out", required=True, help="output file ('-' for stdout)")
    p.add_argument("--gzip", action="store_true", help="gzip the output")
    p.add_argument("--version", choices=["v1", "v1beta1"], default="v1",
                   help="audit.k8s.io API version (default v1)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--no-received-object", action="store_true",
                   help="omit requestObject from RequestReceived lines, as the real apiserver does")
    args = p.parse_args(argv)
    if args.events < 0:
        p.error("--events must be >= 0")

    if args.out == "-":
        raw = sys.stdout.buffer
        close_raw = False
    else:
        raw = open(args.out, "wb", buffering=1 << 20)
        close_raw = True
    out = gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) if args.gzip else raw
    try:
        gen = Generator(args.seed, args.version, not args.no_received_object)
        gen.run(args.events, Writer(out, args.version, gen.clock))
    finally:
        if args.gzip:
            out.close()
        if close_raw:
            raw.close()
        else:
            raw.flush()


if __name__ == "__main__":
    main()
