"""Every manifest under deploy/, as written and as rendered by kustomize, is
valid against the schemas of the pinned Kubernetes versions
(kubernetes-validate, strict: unknown fields are errors).

Objects that are not built-in Kubernetes kinds are validated against schemas
written here (deploy/tests/schemas/): cert-manager's Certificate and Issuer
(CRDs), the apiserver's AdmissionConfiguration, the kubeconfig and the kubeadm
fragment. Kustomization and Component files are read by kustomize itself when
rendering, so they are skipped here; the imagegate policy files are checked by
`imagegate policy validate`.
"""

import copy
import json
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from support import DEPLOY, RENDERINGS, load_yaml_docs

# The oldest Kubernetes release the manifests support (matchConditions GA
# and the preStop `sleep` action need >= 1.30), and a current one.
K8S_VERSIONS = ["1.31.0", "1.34.0"]

SCHEMAS = Path(__file__).parent / "schemas"
OWN_SCHEMAS = {
    ("cert-manager.io/v1", "Certificate"): "certificate.schema.json",
    ("cert-manager.io/v1", "Issuer"): "issuer.schema.json",
    ("apiserver.config.k8s.io/v1", "AdmissionConfiguration"): "admissionconfiguration.schema.json",
    ("v1", "Config"): "kubeconfig.schema.json",
    ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"): "kubeadm-clusterconfiguration.schema.json",
}
SKIPPED_GROUPS = ("kustomize.config.k8s.io/",)


def raw_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if "tests" not in p.relative_to(DEPLOY).parts)


def validate_object(obj: dict, binary: Path, tmp_path: Path) -> list[str]:
    """Problems with one object; empty when it is valid for every pinned version."""
    api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if api.startswith(SKIPPED_GROUPS):
        return []
    if (api, kind) == ("imagegate.dev/v1alpha1", "ImagePolicy"):
        path = tmp_path / "policy.yaml"
        path.write_text(json.dumps(obj))
        out = subprocess.run([str(binary), "policy", "validate", str(path)], capture_output=True, text=True, timeout=30)
        return [] if out.returncode == 0 else [out.stderr]
    if (api, kind) in OWN_SCHEMAS:
        schema = json.loads((SCHEMAS / OWN_SCHEMAS[(api, kind)]).read_text())
        errors = jsonschema.Draft202012Validator(schema).iter_errors(obj)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    problems = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"k8s {version}: {'/'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"k8s {version}: {e.message}")
    return problems


def test_pinned_versions_are_supported_offline():
    supported = kubernetes_validate.utils.all_versions()
    for version in K8S_VERSIONS:
        assert version in supported, f"kubernetes-validate {kubernetes_validate.version.__version__} lacks {version}"


@pytest.mark.parametrize("path", raw_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_file_as_written_is_valid(path, binary, tmp_path):
    docs = load_yaml_docs(path)
    assert docs, f"{path} holds no document"
    for doc in docs:
        if path.name == "policy.yaml":
            assert doc.get("kind") == "ImagePolicy"
        problems = validate_object(doc, binary, tmp_path)
        assert not problems, f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_rendered_object_is_valid(name, rendered, binary, tmp_path):
    objs = rendered[name]
    assert objs
    for obj in objs:
        problems = validate_object(obj, binary, tmp_path)
        assert not problems, f"{name}: {obj['kind']} {obj['metadata']['name']}:\n" + "\n".join(problems)
    # The policy inside the ConfigMap is a valid imagegate policy.
    for cm in (o for o in objs if o["kind"] == "ConfigMap" and "policy.yaml" in o.get("data", {})):
        path = tmp_path / "cm-policy.yaml"
        path.write_text(cm["data"]["policy.yaml"])
        out = subprocess.run([str(binary), "policy", "validate", str(path)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr


def test_the_validator_rejects_what_it_should(rendered, binary, tmp_path):
    """The checks above can fail: a typo'd field, a wrong type, a bad CRD
    field and an out-of-range apiserver setting are each reported."""
    deployment = copy.deepcopy(next(o for o in rendered["cert-manager"] if o["kind"] == "Deployment"))
    deployment["spec"]["replica"] = 3
    assert validate_object(deployment, binary, tmp_path)
    deployment = copy.deepcopy(next(o for o in rendered["cert-manager"] if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8443"
    assert validate_object(deployment, binary, tmp_path)
    cert = copy.deepcopy(next(o for o in rendered["cert-manager"] if o["kind"] == "Certificate"))
    cert["spec"]["dnsName"] = ["x"]
    assert validate_object(cert, binary, tmp_path)
    admission = load_yaml_docs(DEPLOY / "imagepolicywebhook/admission-configuration.yaml")[0]
    admission["plugins"][0]["configuration"]["imagePolicy"]["allowTTL"] = 3600
    assert validate_object(admission, binary, tmp_path)
    policy = {"apiVersion": "imagegate.dev/v1alpha1", "kind": "ImagePolicy", "spec": {"mode": "enforced"}}
    assert validate_object(policy, binary, tmp_path)
