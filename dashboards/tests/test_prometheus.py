"""Every PromQL expression of the dashboard and of the alerting rules,
evaluated by a real Prometheus that scraped a real imagegate under load
(allowed, denied, audit-mode and malformed reviews, supply-chain
verification and /mutate against loopback registries that fail in each of
the ways the panels show, a rejected and an accepted policy reload): none may fail, none may come back empty, and every
metric, label and label value they name must be what imagegate exports.

Dashboard variables get test values ($__rate_interval=1m, $__range=5m,
$job=imagegate, $instance=.+). Alert expressions are also evaluated with
`bool` added to their comparisons, so a healthy system still shows their
series (an alert that is not firing returns nothing by design).
"""

import re
import time

import pytest

from conftest import all_checked_queries, has_data
from promql import (DASHBOARDS, dashboard_files, dashboard_queries, grouping_labels, metric_names,
                    rule_queries, selectors, strip_strings, substitute, variable_queries)
from stack import http

QUERIES = all_checked_queries()
RAW_RULES = rule_queries(DASHBOARDS / "alerts.yaml")
TARGET_LABELS = {"job", "instance"}
# Series Prometheus makes itself for every target.
SYNTHETIC = {"up"}


def exposition(stack) -> dict[str, dict[str, set[str]]]:
    """metric name (as in samples) -> label -> values, from /metrics."""
    status, body = http("GET", stack.ig + "/metrics", ctype=None)
    assert status == 200
    out: dict[str, dict[str, set[str]]] = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", line)
        assert m, line
        labels = out.setdefault(m[1], {})
        for k, v in re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m[2] or ""):
            labels.setdefault(k, set()).add(v)
    return out


@pytest.mark.parametrize("where,expr", QUERIES, ids=[w for w, _ in QUERIES])
def test_expression_returns_data(stack, where, expr):
    result = stack.query(expr)
    assert "error" not in result, f"{where}: {result['error']}\n{expr}"
    assert has_data(result), f"{where}: no data\n{expr}"


@pytest.mark.parametrize("where,expr", RAW_RULES, ids=[w for w, _ in RAW_RULES])
def test_alert_expression_as_written_evaluates(stack, where, expr):
    result = stack.query(expr)
    assert "error" not in result, f"{where}: {result['error']}"


def test_rules_are_loaded_and_healthy(stack):
    groups = stack.api("/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(RAW_RULES)
    for r in rules:
        assert r["health"] == "ok", f"{r['name']}: {r.get('lastError')}"


def test_reload_alert_fired_and_every_alert_resolves(stack):
    """The rejected policy fired ImagegatePolicyReloadFailing in the real
    Prometheus; once the good policy was loaded, nothing is firing."""
    fired = stack.query('max_over_time(ALERTS{alertname="ImagegatePolicyReloadFailing", alertstate="firing"}[5m])')
    assert has_data(fired), "ImagegatePolicyReloadFailing never fired during the bad-policy window"
    end = time.monotonic() + 30
    while True:
        firing = [a["labels"]["alertname"] for a in stack.api("/api/v1/alerts")["alerts"] if a["state"] == "firing"]
        if not firing or time.monotonic() > end:
            break
        time.sleep(1)
    assert firing == []


@pytest.mark.parametrize("where,query", [q for p in dashboard_files() for q in variable_queries(p)],
                         ids=lambda x: x if isinstance(x, str) and ":" in x else "")
def test_template_variables_have_values(stack, where, query):
    m = re.fullmatch(r"label_values\((?:(.+),\s*)?(\w+)\)", substitute(query))
    assert m, f"{where}: only label_values(metric, label) is supported: {query}"
    result = stack.query(f"count by ({m[2]}) ({m[1]})")
    assert has_data(result), f"{where}: {query} has no values"
    assert all(r["metric"].get(m[2]) for r in result["result"])


def test_every_metric_named_is_exported(stack):
    exported = exposition(stack)
    families = set(exported)
    problems = []
    variables = [(w, re.sub(r"^label_values\((.+),\s*\w+\)$", r"\1", substitute(q)))
                 for p in dashboard_files() for w, q in variable_queries(p)]
    for where, expr in all_checked_queries() + variables:
        for name in metric_names(expr):
            if name not in families and name not in SYNTHETIC:
                problems.append(f"{where}: {name}")
    assert not problems, "metrics not exported by imagegate:\n" + "\n".join(problems)
    # And the dashboard uses every family imagegate exports.
    used = {n for _, e in all_checked_queries() for n in metric_names(e)}
    used_families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    exported_families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in families}
    assert exported_families <= used_families | {"imagegate_http_request_duration_seconds"}, (
        exported_families - used_families)


def test_every_label_and_value_named_is_exported(stack):
    exported = exposition(stack)
    problems = []
    for where, expr in all_checked_queries():
        names = metric_names(expr)
        known = set(TARGET_LABELS)
        for n in names:
            known |= set(exported.get(n, {}))
        for label in grouping_labels(expr):
            if label not in known:
                problems.append(f"{where}: label {label!r} is on none of {sorted(names)}")
        for metric, matchers in selectors(strip_strings(expr) and expr):
            if metric in SYNTHETIC:
                continue
            labels = exported.get(metric)
            if labels is None:
                continue  # reported by the test above
            for label, op, value in matchers:
                if label in TARGET_LABELS:
                    continue
                if label not in labels:
                    problems.append(f"{where}: {metric} has no label {label!r}")
                    continue
                if op in ("=", "!="):
                    wanted = [value]
                elif re.fullmatch(r"[\w.-]+(\|[\w.-]+)*", value):
                    wanted = value.split("|")
                else:
                    continue
                for v in wanted:
                    if v not in labels[label]:
                        problems.append(f"{where}: {metric}{{{label}={v!r}}} is never exported")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("expr", [
    'sum(imagegate_reviews_total{decision="allow", api="imagereview"})',
    'sum(imagegate_reviews_total{decision="allow", api="admissionreview"})',
    'sum(imagegate_reviews_total{decision="deny", mode="enforce"})',
    'sum(imagegate_reviews_total{decision="deny", mode="audit"})',
    'sum(imagegate_image_decisions_total{reason="tag_missing"})',
    'sum(imagegate_image_decisions_total{reason="registry_denied"})',
    'sum(imagegate_image_decisions_total{reason="registry_not_allowed"})',
    'sum(imagegate_image_decisions_total{reason="invalid_reference"})',
    'sum(imagegate_image_decisions_total{reason="exempt"})',
    'sum(imagegate_decode_errors_total)',
    'sum(imagegate_http_requests_total{code="415"})',
    'sum(imagegate_http_requests_total{code="405"})',
    'sum(imagegate_http_requests_total{code="404"})',
    'sum(imagegate_policy_reloads_total{result="error"})',
    'sum(imagegate_policy_reloads_total{result="success"})',
    'min(imagegate_policy_generation)',
    'sum(imagegate_build_info)',
    'sum(imagegate_http_requests_total{path="mutate", code="200"})',
    'sum(imagegate_http_requests_total{path="mutate", code="400"})',
    'sum(imagegate_registry_requests_total{status="4xx"})',
    'sum(imagegate_registry_requests_total{status="5xx"})',
    'sum(imagegate_registry_requests_total{status="none"})',
    'sum(imagegate_registry_request_duration_seconds_count)',
    'sum(imagegate_verify_cache_total{result="hit"})',
    'sum(imagegate_verify_cache_total{result="miss"})',
    'sum(imagegate_verify_cache_total{result="coalesced"})',
    'sum(imagegate_verifications_total{result="signature_missing"})',
    'sum(imagegate_verifications_total{result="verification_unavailable"})',
    'sum(imagegate_image_decisions_total{reason="verification_unavailable"})',
    'sum(imagegate_transport_requests_total{transport="tcp"})',
])
def test_the_load_reached_every_panel(stack, expr):
    """The load is what the dashboard is for: these counters moved."""
    result = stack.query(f"max_over_time(({expr})[5m:1s])")
    assert has_data(result), expr
    assert float(result["result"][0]["value"][1]) > 0, expr
    if "policy_generation" in expr:
        assert float(stack.query("max(imagegate_policy_generation)")["result"][0]["value"][1]) >= 2
