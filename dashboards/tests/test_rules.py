"""promtool checks the rules file and runs its unit tests."""

import shutil
import subprocess

import pytest

from promql import DASHBOARDS


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is required (Debian package `prometheus`)")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, cwd=DASHBOARDS)


def test_rules_check():
    out = promtool("check", "rules", "alerts.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_unit_tests():
    out = promtool("test", "rules", "alerts.test.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_unit_test():
    import yaml
    rules = yaml.safe_load((DASHBOARDS / "alerts.yaml").read_text())
    tests = yaml.safe_load((DASHBOARDS / "alerts.test.yaml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    fired = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    assert alerts <= fired, alerts - fired
    for g in rules["groups"]:
        for r in g["rules"]:
            assert r["labels"]["severity"] in {"critical", "warning"}
            assert r["annotations"]["summary"] and r["annotations"]["description"]
