"""The manifests agree with each other and with the binary: flags, ports,
probe paths, Service and webhook references, labels and selectors, names and
namespaces, CA bundles, the pinned image, shutdown timing, and the
apiserver-side files of the ImagePolicyWebhook mode.

The strongest check starts the real binary with exactly the arguments of each
manifest (only addresses and file paths are swapped for local ones), sends an
AdmissionReview to every path a webhook configuration names, and shuts it
down with SIGTERM within the pod's termination budget.

The optional mutating webhook (components/mutating-webhook) is checked in
both overlays with the component enabled: same rules, exclusions and
matchConditions as the validating webhooks, on /mutate.
"""

import base64
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from support import (DEPLOY, REPO, WITH_MUTATING, Server, find, free_port, http_status, load_yaml_docs,
                     one, wait_ready)

ENDPOINTS = {"/imagepolicy", "/validate", "/mutate", "/healthz", "/readyz", "/metrics"}
# The path each kind of webhook configuration must call.
WEBHOOK_PATHS = {"ValidatingWebhookConfiguration": "/validate", "MutatingWebhookConfiguration": "/mutate"}
WORKLOAD_RESOURCES = {
    "": {"pods", "pods/ephemeralcontainers", "podtemplates", "replicationcontrollers"},
    "apps": {"deployments", "replicasets", "statefulsets", "daemonsets"},
    "batch": {"jobs", "cronjobs"},
}
# CONTRACT section 6: the default supply-chain verification deadline.
DEFAULT_VERIFICATION_TIMEOUT_S = 5.0
IN_CLUSTER = ["cert-manager", "no-cert-manager"]
# The in-cluster renderings, with and without the mutating webhook.
IN_CLUSTER_ALL = IN_CLUSTER + list(WITH_MUTATING)


def serve_flags(binary: Path) -> set[str]:
    out = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=30, check=True)
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", out.stdout, re.M))


def args_of(container: dict) -> dict[str, str]:
    args = container.get("args", [])
    assert args and args[0] == "serve", "the container runs `imagegate serve`"
    parsed = {}
    for a in args[1:]:
        assert a.startswith("--") and "=" in a, f"flags are written --flag=value: {a}"
        k, v = a.split("=", 1)
        assert k not in parsed, f"{k} given twice"
        parsed[k] = v
    return parsed


def duration_s(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    assert m, f"duration {text!r}"
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60}[m[2]]


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def imagegate_pod(objs: list[dict]) -> tuple[dict, dict, dict]:
    """(object, pod spec, pod metadata) of the Deployment or static Pod."""
    for o in objs:
        if o["kind"] == "Deployment":
            return o, o["spec"]["template"]["spec"], o["spec"]["template"]["metadata"]
        if o["kind"] == "Pod":
            return o, o["spec"], o["metadata"]
    raise AssertionError("no imagegate workload")


def container_of(spec: dict) -> dict:
    assert len(spec["containers"]) == 1
    return spec["containers"][0]


def resolve_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"port name {port!r} is not a container port"
    return named[port]


def pinned_image() -> str:
    comp = load_yaml_docs(DEPLOY / "components/image/kustomization.yaml")[0]
    (img,) = comp["images"]
    assert img["name"] == "imagegate"
    return f"{img['newName']}:{img['newTag']}"


def webhook_configs(objs: list[dict]) -> list[dict]:
    """The validating configuration, then the mutating one if any."""
    return [o for kind in WEBHOOK_PATHS for o in find(objs, kind)]


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels", {})
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


# ---------------------------------------------------------------- flags, ports


@pytest.mark.parametrize("name", IN_CLUSTER + ["imagepolicywebhook"])
def test_every_flag_is_accepted_by_the_binary(name, rendered, binary):
    known = serve_flags(binary)
    assert {"--listen", "--tls-cert", "--client-ca", "--shutdown-delay"} <= known, known
    _, spec, _ = imagegate_pod(rendered[name])
    for flag in args_of(container_of(spec)):
        assert flag in known, f"{name}: {flag} is not a flag of `imagegate serve`"


@pytest.mark.parametrize("name", IN_CLUSTER + ["imagepolicywebhook"])
def test_ports_and_probes_match_the_listeners(name, rendered):
    _, spec, _ = imagegate_pod(rendered[name])
    c = container_of(spec)
    args = args_of(c)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["https"] == port_of(args["--listen"])
    assert ports["metrics"] == port_of(args["--metrics-listen"])
    tls_ports = {ports["https"]}
    for probe, path in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]:
        get = c[probe]["httpGet"]
        assert get["path"] == path and get["path"] in ENDPOINTS
        port = resolve_port(c, get["port"])
        assert port in set(ports.values())
        scheme = get.get("scheme", "HTTP")
        assert scheme == ("HTTPS" if port in tls_ports else "HTTP"), f"{probe} scheme {scheme} on port {port}"
        if "--client-ca" in args:
            # mTLS: the kubelet has no client certificate, so probes use the
            # plain metrics listener.
            assert port not in tls_ports
        if spec.get("hostNetwork"):
            listen_host = (args["--listen"] if port in tls_ports else args["--metrics-listen"]).rsplit(":", 1)[0]
            assert get.get("host") == listen_host, "a host-network probe must target the loopback listener"


def test_static_pod_listens_on_loopback_with_mtls(rendered):
    pod, spec, _ = imagegate_pod(rendered["imagepolicywebhook"])
    assert pod["kind"] == "Pod" and spec["hostNetwork"] is True
    args = args_of(container_of(spec))
    assert args["--listen"].startswith("127.0.0.1:")
    assert args["--metrics-listen"].startswith("127.0.0.1:")
    assert {"--tls-cert", "--tls-key", "--client-ca"} <= set(args)
    for flag in ("--policy", "--tls-cert", "--tls-key", "--client-ca"):
        mount = container_of(spec)["volumeMounts"][0]["mountPath"]
        assert args[flag].startswith(mount + "/"), f"{flag} lies in the mounted host folder"


# ------------------------------------------------------- services and webhooks


@pytest.mark.parametrize("name", IN_CLUSTER_ALL)
def test_service_selects_the_pods_and_targets_the_listener(name, rendered):
    objs = rendered[name]
    dep, spec, meta = imagegate_pod(objs)
    c = container_of(spec)
    svc = one(objs, "Service", "imagegate")
    assert svc["metadata"]["namespace"] == dep["metadata"]["namespace"]
    assert all(meta["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
    assert dep["spec"]["selector"]["matchLabels"].items() <= meta["labels"].items()
    for p in svc["spec"]["ports"]:
        resolve_port(c, p["targetPort"])
    one(objs, "ValidatingWebhookConfiguration")
    https_port = resolve_port(c, "https")
    for config in webhook_configs(objs):
        for hook in config["webhooks"]:
            ref = hook["clientConfig"]["service"]
            assert (ref["namespace"], ref["name"]) == (svc["metadata"]["namespace"], svc["metadata"]["name"])
            assert ref["path"] == WEBHOOK_PATHS[config["kind"]] and ref["path"] in ENDPOINTS
            sp = next(p for p in svc["spec"]["ports"] if p["port"] == ref.get("port", 443))
            assert resolve_port(c, sp["targetPort"]) == https_port


@pytest.mark.parametrize("name", IN_CLUSTER_ALL)
def test_webhook_registration(name, rendered):
    objs = rendered[name]
    configs = webhook_configs(objs)
    assert [c["kind"] for c in configs] == list(WEBHOOK_PATHS)[: 2 if name in WITH_MUTATING else 1]
    for config in configs:
        check_webhooks(objs, config)


def check_webhooks(objs: list[dict], config: dict) -> None:
    ns = one(objs, "Namespace")["metadata"]["name"]
    policy = yaml.safe_load(one(objs, "ConfigMap", "imagegate-policy")["data"]["policy.yaml"])
    timeout = policy.get("spec", {}).get("verification", {}).get("timeout")
    deadline = duration_s(timeout) if timeout else DEFAULT_VERIFICATION_TIMEOUT_S
    covered: dict[str, set[str]] = {}
    names = set()
    mutating = config["kind"] == "MutatingWebhookConfiguration"
    assert config["metadata"]["labels"]["imagegate.dev/part"] == "webhook", "installed last (README, Deploy)"
    for hook in config["webhooks"]:
        assert hook["name"] not in names and hook["name"].count(".") >= 2
        names.add(hook["name"])
        # Fail closed (validating); the mutating one fails only when imagegate
        # does not answer, when the validating one already refuses (see the
        # header of its manifest).
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        if mutating:
            # Pins the containers a later mutating webhook adds, too.
            assert hook["reinvocationPolicy"] == "IfNeeded"
        assert deadline < hook["timeoutSeconds"] <= 30
        assert "v1" in hook["admissionReviewVersions"]
        excluded = [e for e in hook["namespaceSelector"]["matchExpressions"]
                    if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
        assert excluded and ns in excluded[0]["values"], "imagegate's own namespace is excluded"
        assert hook.get("matchConditions"), "each webhook skips image-preserving updates"
        for rule in hook["rules"]:
            assert set(rule["operations"]) == {"CREATE", "UPDATE"}
            for group in rule["apiGroups"]:
                covered.setdefault(group, set()).update(rule["resources"])
    for group, resources in WORKLOAD_RESOURCES.items():
        assert resources <= covered.get(group, set()), f"{group or 'core'}: {resources - covered.get(group, set())} not covered"


@pytest.mark.parametrize("name", list(WITH_MUTATING))
def test_mutating_webhooks_mirror_the_validating_ones(name, rendered):
    """Same objects, namespaces, exclusions, CEL and timeouts: a pod the
    validating webhook judges is the pod the mutating one pinned, and the
    CEL tested in test_match_conditions.py is the CEL of both."""
    objs = rendered[name]
    vwc = one(objs, "ValidatingWebhookConfiguration")
    mwc = one(objs, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["name"] == vwc["metadata"]["name"]
    assert len(mwc["webhooks"]) == len(vwc["webhooks"])
    same = ["rules", "namespaceSelector", "matchConditions", "admissionReviewVersions", "matchPolicy",
            "timeoutSeconds", "sideEffects"]
    for m, v in zip(mwc["webhooks"], vwc["webhooks"]):
        assert m["name"] != v["name"] and m["name"].split(".", 1)[0] == v["name"].split(".", 1)[0]
        for key in same:
            assert m.get(key) == v.get(key), f"{m['name']}: {key} differs from {v['name']}"
        mref, vref = m["clientConfig"]["service"], v["clientConfig"]["service"]
        assert {**mref, "path": "/validate"} == vref
        assert m["clientConfig"].get("caBundle") == v["clientConfig"].get("caBundle")


@pytest.mark.parametrize("name", IN_CLUSTER)
def test_mutating_webhook_is_optional(name, rendered):
    """Not shipped unless the component is enabled; the overlays' CA
    plumbing selects it by name when it is."""
    assert not find(rendered[name], "MutatingWebhookConfiguration")
    assert len(find(rendered[f"{name}+mutating"], "MutatingWebhookConfiguration")) == 1


def test_podtemplates_are_judged_by_the_server():
    """podtemplates is registered only because the server reads them."""
    src = (REPO / "src/review/extract.rs").read_text()
    assert '("", "PodTemplate") => Some(Shape::PodTemplate)' in src


@pytest.mark.parametrize("variant", ["cert-manager", "cert-manager+mutating"])
def test_ca_bundle_comes_from_cert_manager(variant, rendered):
    objs = rendered[variant]
    configs = webhook_configs(objs)
    injected = {c["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] for c in configs}
    assert len(injected) == 1, injected
    ns, name = injected.pop().split("/")
    cert = one(objs, "Certificate", name)
    assert cert["metadata"]["namespace"] == ns
    svc = one(objs, "Service", "imagegate")
    assert f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc" in cert["spec"]["dnsNames"]
    issuer = one(objs, "Issuer", cert["spec"]["issuerRef"]["name"])
    assert issuer["metadata"]["namespace"] == ns
    ca_cert = one(objs, "Certificate", "imagegate-ca")
    assert ca_cert["spec"]["isCA"] is True and issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    _, spec, _ = imagegate_pod(objs)
    tls = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == cert["spec"]["secretName"]
    for hook in (h for c in configs for h in c["webhooks"]):
        assert "caBundle" not in hook["clientConfig"], "the cainjector fills it; a stale value must not be shipped"


@pytest.mark.parametrize("variant", ["no-cert-manager", "no-cert-manager+mutating"])
def test_ca_bundle_without_cert_manager(variant, rendered, deploy_copy, tmp_path):
    objs = rendered[variant]
    certs = deploy_copy / "overlays" / variant / "certs"
    ca_pem = (certs / "ca.crt").read_bytes()
    for hook in (h for c in webhook_configs(objs) for h in c["webhooks"]):
        bundle = base64.b64decode("".join(hook["clientConfig"]["caBundle"].split()))
        assert bundle == ca_pem
    secret = one(objs, "Secret", "imagegate-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode("".join(secret["data"]["tls.crt"].split())) == (certs / "tls.crt").read_bytes()
    assert "ca.key" not in secret["data"], "the CA key never leaves the admin's machine"
    _, spec, _ = imagegate_pod(objs)
    tls = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == secret["metadata"]["name"]
    svc = one(objs, "Service", "imagegate")
    san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(certs / "tls.crt")],
                         capture_output=True, text=True, check=True).stdout
    assert f"DNS:{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc" in san
    subprocess.run(["openssl", "verify", "-CAfile", str(certs / "ca.crt"), str(certs / "tls.crt")], check=True,
                   capture_output=True)


def test_base_alone_has_no_ca_bundle(rendered):
    """The base is not applied on its own; only overlays provide the CA."""
    vwc = one(rendered["base"], "ValidatingWebhookConfiguration")
    assert all("caBundle" not in h["clientConfig"] for h in vwc["webhooks"])
    assert "annotations" not in vwc["metadata"]


# ---------------------------------------------------- names, labels, selectors


@pytest.mark.parametrize("name", IN_CLUSTER_ALL)
def test_names_namespaces_and_selectors_agree(name, rendered):
    objs = rendered[name]
    ns = one(objs, "Namespace")["metadata"]["name"]
    cluster_scoped = {"Namespace", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}
    for o in objs:
        if o["kind"] not in cluster_scoped:
            assert o["metadata"].get("namespace") == ns, f"{o['kind']} {o['metadata']['name']}"
        assert o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "imagegate"
    dep, spec, meta = imagegate_pod(objs)
    labels = meta["labels"]
    one(objs, "ServiceAccount", spec["serviceAccountName"])
    policy_vol = next(v for v in spec["volumes"] if v["name"] == "policy")
    one(objs, "ConfigMap", policy_vol["configMap"]["name"])
    args = args_of(container_of(spec))
    mounts = {m["name"]: m["mountPath"] for m in container_of(spec)["volumeMounts"]}
    assert args["--policy"] == mounts["policy"] + "/policy.yaml"
    assert args["--tls-cert"] == mounts["tls"] + "/tls.crt" and args["--tls-key"] == mounts["tls"] + "/tls.key"
    assert selects(one(objs, "PodDisruptionBudget")["spec"]["selector"], labels)
    netpol = one(objs, "NetworkPolicy")
    assert selects(netpol["spec"]["podSelector"], labels)
    for rule in netpol["spec"]["ingress"]:
        for p in rule["ports"]:
            resolve_port(container_of(spec), p["port"])
    for tsc in spec["topologySpreadConstraints"]:
        assert selects(tsc["labelSelector"], labels)
    for term in spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]:
        assert selects(term["podAffinityTerm"]["labelSelector"], labels)
    assert dep["spec"]["replicas"] >= 3
    pdb = one(objs, "PodDisruptionBudget")["spec"]
    assert pdb.get("maxUnavailable", 0) >= 1 or pdb.get("minAvailable", 99) < dep["spec"]["replicas"]


# ----------------------------------------- image, resources, security, timing


@pytest.mark.parametrize("name", IN_CLUSTER + ["imagepolicywebhook"])
def test_image_is_pinned_in_one_place(name, rendered):
    _, spec, _ = imagegate_pod(rendered[name])
    assert container_of(spec)["image"] == pinned_image()
    raw = [p for p in DEPLOY.rglob("*.yaml") if "tests" not in p.relative_to(DEPLOY).parts]
    mentions = [p for p in raw if "ghcr.io/imagegate" in p.read_text()]
    assert mentions == [DEPLOY / "components/image/kustomization.yaml"]


@pytest.mark.parametrize("name", IN_CLUSTER + ["imagepolicywebhook"])
def test_resources_and_security_context(name, rendered):
    _, spec, _ = imagegate_pod(rendered[name])
    c = container_of(spec)
    res = c["resources"]
    assert {"cpu", "memory"} <= set(res["requests"]) and "memory" in res["limits"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert all(m.get("readOnly") for m in c["volumeMounts"])


@pytest.mark.parametrize("name", IN_CLUSTER)
def test_shutdown_fits_the_termination_grace_period(name, rendered):
    _, spec, _ = imagegate_pod(rendered[name])
    c = container_of(spec)
    args = args_of(c)
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    delay, grace = duration_s(args["--shutdown-delay"]), duration_s(args["--grace-period"])
    assert pre_stop >= 5, "endpoint removal needs a few seconds to reach the apiservers"
    assert pre_stop + delay + grace < spec["terminationGracePeriodSeconds"]


# ------------------------------------------------- the real binary, real args


def localized(args: dict[str, str], files: dict[str, Path]) -> tuple[list[str], int, int]:
    """The manifest's arguments with addresses moved to free loopback ports
    and file flags pointed at local files; every other flag as written."""
    listen, metrics = free_port(), free_port()
    out = ["serve"]
    for k, v in args.items():
        if k == "--listen":
            v = f"127.0.0.1:{listen}"
        elif k == "--metrics-listen":
            v = f"127.0.0.1:{metrics}"
        elif k in files:
            v = str(files[k])
        out.append(f"{k}={v}")
    return out, listen, metrics


@pytest.mark.parametrize("name", IN_CLUSTER_ALL)
def test_binary_runs_with_the_deployment_args(name, rendered, binary, deploy_copy, tmp_path):
    objs = rendered[name]
    _, spec, _ = imagegate_pod(objs)
    args = args_of(container_of(spec))
    policy = tmp_path / "policy.yaml"
    policy.write_text(one(objs, "ConfigMap", "imagegate-policy")["data"]["policy.yaml"])
    certs = deploy_copy / "overlays/no-cert-manager/certs"
    files = {"--policy": policy, "--tls-cert": certs / "tls.crt", "--tls-key": certs / "tls.key"}
    assert set(files) <= set(args)
    argv, listen, metrics = localized(args, files)
    with Server(binary, argv) as server:
        wait_ready(f"http://127.0.0.1:{metrics}/readyz", server.proc)
        body = (REPO / "tests/fixtures/review/admission-v1-pod-create.json").read_text()
        # Every path a webhook configuration of this rendering calls, as the
        # apiserver calls it (its `?timeout=` included).
        paths = {h["clientConfig"]["service"]["path"] for c in webhook_configs(objs) for h in c["webhooks"]}
        want = {"/validate", "/mutate"} if name in WITH_MUTATING else {"/validate"}
        assert paths == want
        for path in sorted(paths):
            out = subprocess.run(
                ["curl", "-sS", "--max-time", "5", "--cacert", str(certs / "ca.crt"),
                 "--resolve", f"imagegate.imagegate.svc:{listen}:127.0.0.1",
                 "-H", "content-type: application/json", "--data-binary", body, "-w", "\n%{http_code}",
                 f"https://imagegate.imagegate.svc:{listen}{path}?timeout=10s"],
                capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, out.stderr
            answer, code = out.stdout.rsplit("\n", 1)
            assert code == "200", f"{path}: HTTP {code}: {answer}"
            review = json.loads(answer)
            assert review["kind"] == "AdmissionReview" and review["response"]["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
            if path == "/mutate":
                # pinDigests is off in the shipped policy: allowed, no patch.
                assert review["response"]["allowed"] is True and "patch" not in review["response"]
        # SIGTERM: /readyz turns 503 during --shutdown-delay, then a clean exit
        # well inside terminationGracePeriodSeconds minus the preStop sleep.
        started = time.monotonic()
        server.proc.send_signal(15)
        time.sleep(0.3)
        if duration_s(args["--shutdown-delay"]) > 0.5:
            assert http_status(f"http://127.0.0.1:{metrics}/readyz") == 503
        rc = server.proc.wait(timeout=spec["terminationGracePeriodSeconds"])
        assert rc == 0
        budget = spec["terminationGracePeriodSeconds"] - container_of(spec)["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert time.monotonic() - started < budget


# ------------------------------------------------ ImagePolicyWebhook mode files


def test_apiserver_files_agree_with_the_static_pod(rendered):
    ipw = DEPLOY / "imagepolicywebhook"
    _, spec, _ = imagegate_pod(rendered["imagepolicywebhook"])
    args = args_of(container_of(spec))
    host_dir = spec["volumes"][0]["hostPath"]["path"]
    admission = load_yaml_docs(ipw / "admission-configuration.yaml")[0]
    (plugin,) = admission["plugins"]
    assert plugin["name"] == "ImagePolicyWebhook"
    conf = plugin["configuration"]["imagePolicy"]
    assert conf["defaultAllow"] is False
    assert 2 <= conf["allowTTL"] <= 1800 and 2 <= conf["denyTTL"] <= 1800 and 1 <= conf["retryBackoff"] <= 300000
    assert conf["kubeConfigFile"] == f"{host_dir}/kubeconfig.yaml"
    kubeconfig = load_yaml_docs(ipw / "kubeconfig.yaml")[0]
    ctx = next(c for c in kubeconfig["contexts"] if c["name"] == kubeconfig["current-context"])["context"]
    cluster = next(c for c in kubeconfig["clusters"] if c["name"] == ctx["cluster"])["cluster"]
    user = next(u for u in kubeconfig["users"] if u["name"] == ctx["user"])["user"]
    assert cluster["server"] == f"https://{args['--listen']}/imagepolicy"
    pki = Path(args["--client-ca"]).parent
    assert Path(cluster["certificate-authority"]) == pki / "ca.crt"
    assert Path(args["--tls-cert"]) == pki / "serving.crt" and Path(args["--tls-key"]) == pki / "serving.key"
    assert Path(user["client-certificate"]) == pki / "apiserver-client.crt"
    assert Path(user["client-key"]) == pki / "apiserver-client.key"
    script = (ipw / "make-certs.sh").read_text()
    assert f"out=${{1:-{pki}}}" in script, "make-certs.sh writes where the manifests read"
    kubeadm = load_yaml_docs(ipw / "kube-apiserver-flags.yaml")[0]["apiServer"]
    extra = {a["name"]: a["value"] for a in kubeadm["extraArgs"]}
    assert "ImagePolicyWebhook" in extra["enable-admission-plugins"].split(",")
    assert extra["admission-control-config-file"] == f"{host_dir}/admission-configuration.yaml"
    (vol,) = kubeadm["extraVolumes"]
    assert vol["hostPath"] == host_dir == vol["mountPath"] and vol["readOnly"] is True
    assert args["--policy"] == f"{host_dir}/policy.yaml"
