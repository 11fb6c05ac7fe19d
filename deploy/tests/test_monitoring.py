"""The alert rules and the Grafana dashboard in deploy/monitoring: their structure, `promtool check rules` and
`promtool test rules` on the alerts, and every metric they query checked against the metrics the code defines.

A query naming a metric nobody exposes shows an empty panel or an alert that can never fire, silently. So every
metric name in an expression must be one of: defined in the code (found by reading every `Counter(…)`,
`Gauge(…)`, `Histogram(…)`, `Summary(…)` call under libs, services and apps), listed in ``TO_BE_ADDED`` (named by
issue 16, not in the code yet), or exported by a named outside exporter (``EXTERNAL``). A name in ``TO_BE_ADDED``
that the code defines fails too, so the list shrinks as the metrics land instead of drifting from the code.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
ALERT_TESTS = MONITORING / "alerts.test.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
OPERATIONS = REPO / "docs" / "operations.md"
CODE_ROOTS = ("libs", "services", "apps")

TO_BE_ADDED: dict[str, str] = {}
"""Metrics issue 16 asks the services to expose, as the dashboard and the alerts name them; not in the code yet."""

EXTERNAL: dict[str, str] = {
    "kafka_topic_partition_current_offset": "kafka_exporter: a partition's head offset",
    "kafka_topic_partition_oldest_offset": "kafka_exporter: a partition's oldest kept offset",
}
"""Metrics of exporters outside the product (docs/operations.md, "Monitoring")."""

METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary"}
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {
    *("and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"),
    *("inf", "nan"),
}

Yaml = dict[str, Any]


# --- what the code exposes -------------------------------------------------------------------------------------------


def _metric_definitions() -> Iterator[tuple[str, str]]:
    """(class, name) of every prometheus_client metric created in the product's source."""
    for root in CODE_ROOTS:
        for path in sorted((REPO / root).glob("*/src/**/*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                kind = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                first = node.args[0]
                if kind in METRIC_CLASSES and isinstance(first, ast.Constant) and isinstance(first.value, str):
                    yield kind, first.value


def _series_names(kind: str, name: str) -> set[str]:
    """The series names prometheus_client exposes for a metric (a counter always ends in _total)."""
    if kind == "Counter":
        base = name.removesuffix("_total")
        return {f"{base}_total"}
    if kind in ("Histogram", "Summary"):
        return {name} | {name + suffix for suffix in HISTOGRAM_SERIES}
    return {name}


def _exposed() -> set[str]:
    return {series for kind, name in _metric_definitions() for series in _series_names(kind, name)}


def _known() -> set[str]:
    planned = {series for name in TO_BE_ADDED for series in {name, *(name + suffix for suffix in HISTOGRAM_SERIES)}}
    return _exposed() | planned | set(EXTERNAL)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, keywords or label names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\b\d+(?:\.\d+)?[a-z]*\b", " ", text)  # numbers and durations (5m)
    words = re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text)
    return {word for word, call in words if not call and word.lower() not in PROMQL_KEYWORDS}


def test_the_code_scan_finds_the_bus_and_outbox_metrics() -> None:
    exposed = _exposed()
    for name in ("chat_bus_dead_lettered_total", "chat_bus_handler_seconds_bucket", "chat_outbox_lag_seconds"):
        assert name in exposed


def test_metric_names_are_read_from_an_expression() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(a_seconds_bucket{status=~"5.."}[5m]))) '
        "/ on (service) group_left b_total > 0 and c offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}


def test_no_planned_metric_is_in_the_code_yet() -> None:
    """Once the code defines one, move it out of TO_BE_ADDED (the check then comes from the code)."""
    exposed = _exposed()
    assert [name for name in TO_BE_ADDED if name in exposed or f"{name}_bucket" in exposed] == []


def test_every_planned_metric_is_used_by_the_alerts_or_the_dashboard() -> None:
    used = {name for expr in (*_alert_exprs(), *_dashboard_exprs()) for name in metric_names(expr)}
    planned = {name for name in TO_BE_ADDED if not {name, *(name + s for s in HISTOGRAM_SERIES)} & used}
    assert planned == set(), "an unused name in TO_BE_ADDED"


# --- the alert rules -------------------------------------------------------------------------------------------------


def _rules() -> list[Yaml]:
    loaded = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    assert list(loaded) == ["groups"]
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _alert_exprs() -> list[str]:
    return [str(rule["expr"]) for rule in _rules()]


def _headings() -> set[str]:
    """The GitHub anchors of docs/operations.md's headings."""
    anchors = set()
    for line in OPERATIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def test_every_group_has_a_name_and_rules() -> None:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    names = [group["name"] for group in groups]
    assert len(names) == len(set(names))
    assert all(group["rules"] for group in groups)


def test_every_rule_is_an_alert_with_a_duration_a_severity_a_summary_and_a_runbook() -> None:
    anchors = _headings()
    names = [rule["alert"] for rule in _rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    for rule in _rules():
        name = rule["alert"]
        assert re.fullmatch(r"Chat[A-Z][A-Za-z0-9]+", name), name
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert isinstance(rule["expr"], str), name
        assert rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), f"{name}: for"
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"].strip(), name
        document, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert document == "docs/operations.md", name
        assert anchor in anchors, f"{name}: docs/operations.md has no section #{anchor}"


def test_the_rules_cover_what_issue_16_asks_for() -> None:
    by_metric: dict[str, set[str]] = {}
    for rule in _rules():
        for name in metric_names(rule["expr"]):
            by_metric.setdefault(name, set()).add(rule["alert"])
    assert "ChatConsumerLagGrowing" in by_metric["chat_bus_consumer_lag"], "consumer lag growing"
    assert "ChatAckTimeouts" in by_metric["chat_gateway_client_events_total"], "ack timeouts"
    assert "ChatDeadLetterTopicNotEmpty" in by_metric["kafka_topic_partition_oldest_offset"], "DLQ not empty"
    assert "ChatOutboxBacklog" in by_metric["chat_outbox_lag_seconds"], "outbox backlog"
    assert "ChatHttp5xxRate" in by_metric["chat_http_requests_total"], "5xx rate"


def test_every_metric_an_alert_queries_is_known() -> None:
    known = _known()
    unknown = {rule["alert"]: sorted(metric_names(rule["expr"]) - known) for rule in _rules()}
    assert {alert: names for alert, names in unknown.items() if names} == {}


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make deploy-deps` installs it (Debian's prometheus package)"
    return promtool


def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout


def test_the_alerts_fire_on_bad_series_and_not_on_good_ones() -> None:
    """alerts.test.yaml: promtool evaluates each alert over series made up for it."""
    tested = subprocess.run(
        [_promtool(), "test", "rules", str(ALERT_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=MONITORING,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))["tests"]
    covered = {check["alertname"] for case in cases for check in case["alert_rule_test"]}
    assert covered == {rule["alert"] for rule in _rules()}, "every alert has a case"


# --- the dashboard ---------------------------------------------------------------------------------------------------


def _dashboard() -> Yaml:
    loaded = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _panels(dashboard: Yaml) -> Iterator[Yaml]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_exprs() -> list[str]:
    return [str(target["expr"]) for panel in _panels(_dashboard()) for target in panel.get("targets", [])]


def test_the_dashboard_is_importable() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"]
    assert dashboard["title"]
    assert {"name": "datasource", "type": "datasource", "query": "prometheus"}.items() <= next(
        variable for variable in dashboard["templating"]["list"] if variable["name"] == "datasource"
    ).items()
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in _panels(dashboard):
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_every_metric_a_panel_queries_is_known() -> None:
    known = _known()
    unknown = {
        panel["title"]: sorted(name for target in panel["targets"] for name in metric_names(target["expr"]) - known)
        for panel in _panels(_dashboard())
        if panel["type"] != "row"
    }
    assert {title: names for title, names in unknown.items() if names} == {}


@pytest.mark.parametrize(
    ("signal", "metric"),
    [
        ("requests by service", "chat_http_requests_total"),
        ("latency by service", "chat_http_request_duration_seconds_bucket"),
        ("sockets connected", "chat_gateway_sockets_connected"),
        ("deliveries per second", "chat_gateway_deliveries_total"),
        ("ack latency", "chat_gateway_ack_seconds_bucket"),
        ("consumer lag", "chat_bus_consumer_lag"),
        ("outbox backlog", "chat_outbox_lag_seconds"),
        ("store latency", "chat_store_operation_seconds_bucket"),
    ],
)
def test_the_dashboard_shows_each_golden_signal(signal: str, metric: str) -> None:
    used = {name for expr in _dashboard_exprs() for name in metric_names(expr)}
    assert metric in used, signal


def test_errors_by_service_are_a_share_of_5xx() -> None:
    assert any('status=~"5.."' in expr and "by (service)" in expr for expr in _dashboard_exprs())
