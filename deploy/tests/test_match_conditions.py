"""The webhooks' rules and CEL matchConditions, evaluated on the golden
AdmissionReview fixtures (tests/fixtures/review/) and on updates made from
them: every CREATE and every image-changing UPDATE is sent to imagegate,
image-preserving UPDATEs are skipped, DELETE and status updates never match,
and no input makes an expression fail (an error would reject the request
under failurePolicy: Fail).

CEL is evaluated with cel-python, which implements the CEL language and its
standard macros used here (has, map, ternary); Kubernetes' own CEL
extensions are not used by these expressions.
"""

import copy
import json

import celpy
import pytest

from support import DEPLOY, REPO, load_yaml_docs

FIXTURES = sorted((REPO / "tests/fixtures/review").glob("admission-*.json"))


def webhooks() -> list[dict]:
    return load_yaml_docs(DEPLOY / "base/validatingwebhookconfiguration.yaml")[0]["webhooks"]


def programs(hook: dict):
    env = celpy.Environment()
    return [(c["name"], env.program(env.compile(c["expression"]))) for c in hook["matchConditions"]]


def rule_matches(hook: dict, request: dict) -> bool:
    res = request["resource"]
    name = res["resource"] + (f"/{request['subResource']}" if request.get("subResource") else "")
    for rule in hook["rules"]:
        if (res["group"] in rule["apiGroups"] and request["operation"] in rule["operations"]
                and name in rule["resources"]):
            return True
    return False


def called(hook: dict, request: dict) -> bool:
    """Whether the apiserver would call this webhook (rules, then every
    matchCondition true); a CEL error fails the test."""
    if not rule_matches(hook, request):
        return False
    activation = celpy.json_to_cel({"request": request, "object": request.get("object"),
                                    "oldObject": request.get("oldObject")})
    for name, prog in programs(hook):
        result = prog.evaluate(activation)
        assert isinstance(result, celpy.celtypes.BoolType), f"{hook['name']} {name}: {result!r}"
        if not result:
            return False
    return True


def hooks_called(request: dict) -> list[str]:
    return [h["name"] for h in webhooks() if called(h, request)]


def load(path) -> dict:
    return json.loads(path.read_text())["request"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixtures_go_to_exactly_the_right_webhook(path):
    req = load(path)
    got = hooks_called(req)
    sub = req.get("subResource")
    if req["operation"] == "DELETE" or sub == "status" or req["resource"]["resource"] == "configmaps":
        assert got == []
    else:
        assert len(got) == 1, got


def pod_spec(obj: dict) -> dict:
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind == "PodTemplate":
        return obj["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def as_update(req: dict, change) -> dict:
    upd = copy.deepcopy(req)
    upd["operation"] = "UPDATE"
    upd["oldObject"] = copy.deepcopy(req["object"])
    change(upd["object"])
    return upd


CREATES = [p for p in FIXTURES if load(p)["operation"] == "CREATE" and load(p)["resource"]["resource"] != "configmaps"]


@pytest.mark.parametrize("path", CREATES, ids=lambda p: p.name)
def test_updates_are_sent_only_when_an_image_changes(path):
    req = load(path)

    def nothing(obj):
        pass

    def relabel(obj):
        obj["metadata"].setdefault("labels", {})["touched"] = "yes"
        obj["metadata"].setdefault("annotations", {})["x"] = "y"

    def retag(obj):
        c = pod_spec(obj)["containers"][0]
        c["image"] = c.get("image", "") + "-changed"

    def add_init(obj):
        pod_spec(obj).setdefault("initContainers", []).append({"name": "new", "image": "busybox:1.36"})

    def drop_image(obj):
        pod_spec(obj)["containers"][0].pop("image", None)

    def reorder(obj):
        spec = pod_spec(obj)
        spec["containers"] = spec["containers"] + [{"name": "side", "image": "sidecar:1"}]

    def add_image_volume(obj):
        pod_spec(obj).setdefault("volumes", []).append(
            {"name": "tools", "image": {"reference": "evil.example.com/tools:1", "pullPolicy": "IfNotPresent"}})

    def add_config_volume(obj):
        pod_spec(obj).setdefault("volumes", []).append({"name": "cfg", "configMap": {"name": "x"}})

    assert hooks_called(as_update(req, nothing)) == []
    assert hooks_called(as_update(req, relabel)) == []
    # A volume that is not an image is not an image change.
    assert hooks_called(as_update(req, add_config_volume)) == []
    for change in (retag, add_init, reorder, add_image_volume):
        assert len(hooks_called(as_update(req, change))) == 1, change.__name__
    # A container without an image (allowed in templates) must not make
    # the expression fail; removing the image is a change.
    assert len(hooks_called(as_update(req, drop_image))) == 1


def test_ephemeral_container_updates_are_sent():
    req = load(REPO / "tests/fixtures/review/admission-v1-pod-ephemeralcontainers.json")
    assert req["subResource"] == "ephemeralcontainers"
    assert hooks_called(req) == ["pods.imagegate.dev"]
    same = copy.deepcopy(req)
    same["object"] = copy.deepcopy(req["oldObject"])
    assert hooks_called(same) == []


@pytest.mark.parametrize("path", CREATES, ids=lambda p: p.name)
def test_an_image_volume_change_is_sent(path):
    """Image volumes (spec.volumes[].image.reference) are images: changing
    one, or one without a reference, is sent; an unchanged one is not."""
    base = load(path)
    with_volume = copy.deepcopy(base)
    pod_spec(with_volume["object"]).setdefault("volumes", []).append(
        {"name": "data", "image": {"reference": "registry.example.com/data:1"}})

    def swap(obj):
        pod_spec(obj)["volumes"][-1]["image"]["reference"] = "evil.example.com/data:1"

    def unset(obj):
        pod_spec(obj)["volumes"][-1]["image"].pop("reference")

    def nothing(obj):
        pass

    assert len(hooks_called(as_update(with_volume, swap))) == 1
    assert len(hooks_called(as_update(with_volume, unset))) == 1
    assert hooks_called(as_update(with_volume, nothing)) == []


def test_an_image_swap_is_sent():
    """An update that swaps an image while keeping the count and names is
    still sent (the comparison is on image strings, in order)."""
    req = load(REPO / "tests/fixtures/review/admission-v1-pod-create.json")

    def swap(obj):
        obj["spec"]["containers"][0]["image"] = "evil.example.com/x:1"
    assert hooks_called(as_update(req, swap)) == ["pods.imagegate.dev"]
