"""Small PromQL helpers for the dashboard tests: find the expressions of the
dashboard and the rules, substitute Grafana's variables, and pull metric
names, label names and label matchers out of an expression. Not a parser:
enough for the expressions in this folder, and strict where it is unsure."""

import json
import re
from pathlib import Path

import yaml

DASHBOARDS = Path(__file__).resolve().parent.parent

# Grafana variables and the values the tests give them.
VARIABLES = {
    "${datasource}": "",
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$job": "imagegate",
    "$instance": ".+",
}

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "group",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "absent", "absent_over_time",
    "max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "timestamp", "time", "vector", "scalar", "changes", "resets", "label_replace", "label_join", "clamp_min",
    "clamp_max", "abs", "ceil", "floor", "round", "sort", "sort_desc", "inf", "nan", "atan2", "le",
}


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def dashboard_queries(path: Path) -> list[tuple[str, str]]:
    """(where, expr) for every panel target, nested panels included."""
    dash = json.loads(path.read_text())
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"{path.name}: panel {p['title']!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    return out


def variable_queries(path: Path) -> list[tuple[str, str]]:
    dash = json.loads(path.read_text())
    out = []
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append((f"{path.name}: variable {v['name']}", q))
    return out


def rule_queries(path: Path) -> list[tuple[str, str]]:
    doc = yaml.safe_load(path.read_text())
    return [(f"{path.name}: {r.get('alert') or r.get('record')}", r["expr"])
            for g in doc["groups"] for r in g["rules"]]


def substitute(expr: str) -> str:
    for k in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(k, VARIABLES[k])
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, [(label, op, value)]) for each `metric{...}` or bare metric."""
    out = []
    for m in re.finditer(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}', expr):
        matchers = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m[2])
        out.append((m[1], matchers))
    return out


def metric_names(expr: str) -> set[str]:
    """Identifiers that name series: not keywords, functions, or label names
    inside braces, `by (...)`, `on (...)` and the like."""
    text = strip_strings(expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", text):
        word = m[1]
        if word not in KEYWORDS and not re.fullmatch(r"\d.*|e\d*", word):
            names.add(word)
    return names


def grouping_labels(expr: str) -> set[str]:
    labels = set()
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", strip_strings(expr)):
        labels.update(x.strip() for x in m[1].split(",") if x.strip())
    return labels


def with_bool(expr: str) -> str:
    """Comparison operators outside braces and strings get `bool`, so an
    alert expression returns its series (0 or 1) instead of only firing ones."""
    out, i, depth = [], 0, 0
    while i < len(expr):
        ch = expr[i]
        if ch == '"':
            j = i + 1
            while expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            out.append(expr[i:j + 1])
            i = j + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if depth == 0:
            m = re.match(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)", expr[i:])
            if m:
                out.append(m[1] + " bool")
                i += len(m[1])
                continue
        out.append(ch)
        i += 1
    return "".join(out)
