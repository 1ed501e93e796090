"""The dashboard JSON itself: current Grafana schema, datasource as a
variable, unique ids, panels inside the grid, every target with a query, and
the panels an operator expects (one per question the dashboard answers)."""

import json

import pytest

from promql import dashboard_files, dashboard_queries

PATHS = dashboard_files()


@pytest.fixture(params=PATHS, ids=lambda p: p.name)
def dash(request):
    return json.loads(request.param.read_text())


def all_panels(dash):
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def test_schema_and_variables(dash):
    assert dash["schemaVersion"] >= 39
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"]["uid"] == "${datasource}"


def test_panels_are_well_formed(dash):
    ids = [p["id"] for p in all_panels(dash)]
    assert len(ids) == len(set(ids))
    boxes = []
    for p in all_panels(dash):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
        for (x, y, w, h) in boxes:
            assert not (g["x"] < x + w and x < g["x"] + g["w"] and g["y"] < y + h and y < g["y"] + g["h"]), p["title"]
        boxes.append((g["x"], g["y"], g["w"], g["h"]))
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p.get("description"), f"{p['title']}: say how to read it"
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}" and t["expr"].strip()
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))


@pytest.mark.parametrize("needle", [
    "imagegate_http_requests_total",            # request rate per endpoint
    "histogram_quantile(0.99",                  # latency percentiles
    'decision="deny"',                          # deny rate and reasons
    'mode="audit"',                             # audit-mode would-deny
    "imagegate_image_decisions_total",          # deny reasons
    "imagegate_policy_generation",
    "imagegate_policy_reloads_total",
    "imagegate_tls_reloads_total",
    "imagegate_trust_root_refreshes_total",
    "imagegate_trust_root_sources_failing",
    "imagegate_requests_in_flight",
    "imagegate_connections_open",
    "imagegate_build_info",
    'path=~"validate|mutate|imagepolicy"',      # /mutate in the latency panels
    "imagegate_registry_requests_total",        # registry rate and errors
    'status=~"5xx|none"',
    "imagegate_registry_request_duration_seconds_bucket",
    'result=~"hit|miss"',                       # cache hit ratio
    "imagegate_verify_cache_total",             # lookups, coalesced waits
    "imagegate_verifications_total",
    'result="verification_unavailable"',
    "imagegate_transport_requests_total",
    "imagegate_transport_connections_open",
])
def test_operator_questions_are_answered(needle):
    exprs = [e for p in PATHS for _, e in dashboard_queries(p)]
    assert any(needle in e for e in exprs), needle
