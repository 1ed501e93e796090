"""Fixtures of the dashboard tests: one Prometheus + imagegate stack per
session, exercised once, and waited on until every expression has data
(bounded)."""

import time

import pytest

from promql import DASHBOARDS, dashboard_files, dashboard_queries, rule_queries, substitute, with_bool
from stack import Stack

DATA_DEADLINE_S = 60.0
# The end of the exercise is visible: the accepted reload was scraped and
# has reached the reload alert's 15 s evaluation grid.
SETTLED = [
    ("settled", 'imagegate_policy_reloads_total{result="success"} > 0'),
    ("settled", 'max_over_time((timestamp(increase(imagegate_policy_reloads_total{result="success"}[1m]) > 0))[5m:15s])'),
]


def all_checked_queries() -> list[tuple[str, str]]:
    """(where, PromQL as evaluated) for every dashboard target and rule."""
    out = []
    for path in dashboard_files():
        out += [(w, substitute(e)) for w, e in dashboard_queries(path)]
    out += [(w, with_bool(e)) for w, e in rule_queries(DASHBOARDS / "alerts.yaml")]
    return out


def has_data(result: dict) -> bool:
    return "error" not in result and bool(result.get("result")) and (
        result["resultType"] != "scalar" or result["result"][1] is not None)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("prometheus-stack"))
    try:
        s.start()
        s.exercise()
        # Rates need two scrapes, and the reload alerts' subqueries a 15 s
        # step after each reload: poll until every expression has data.
        end = time.monotonic() + DATA_DEADLINE_S
        queries = all_checked_queries() + SETTLED
        while time.monotonic() < end:
            if all(has_data(s.query(q)) for _, q in queries):
                break
            time.sleep(1.0)
        yield s
    finally:
        s.stop()
