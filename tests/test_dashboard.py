"""conf/grafana-dashboard.json and conf/prometheus.yml: importable, charting only what the service exposes.

METRICS below is the contract between the service's /metrics and the dashboard: every name and label the
dashboard queries must be in it, and every metric in it must be charted. PyYAML is not a dependency, so
the Prometheus file gets text checks.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

CONF = Path(__file__).resolve().parents[1] / "conf"

# name -> (type, labels). Histograms are queried through their _bucket/_sum/_count series.
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "streaming_stage_seconds": ("histogram", frozenset({"stage"})),
    "streaming_request_seconds": ("histogram", frozenset({"kind", "outcome"})),
    "streaming_cache_requests_total": ("counter", frozenset({"level", "result"})),
    "streaming_bytes_sent_total": ("counter", frozenset({"kind"})),
    "streaming_messages_sent_total": ("counter", frozenset({"kind"})),
    "streaming_bad_messages_total": ("counter", frozenset({"error"})),
    "streaming_store_reads_total": ("counter", frozenset({"backend", "outcome"})),
    "streaming_http_requests_total": ("counter", frozenset({"handler", "status"})),
    "streaming_websocket_connections": ("gauge", frozenset()),
    "streaming_requests_cancelled_total": ("counter", frozenset({"reason"})),
    "streaming_db_pool_connections": ("gauge", frozenset({"state"})),
    "streaming_store_read_bytes_total": ("counter", frozenset({"backend"})),
    "streaming_ingest_blocks_total": ("counter", frozenset()),
}
TARGET_LABELS = frozenset({"job", "instance"})  # added by Prometheus to every scraped series


def series_names() -> dict[str, str]:
    """Every series name a query may use -> the metric it belongs to."""
    names = {}
    for name, (kind, _) in METRICS.items():
        names[name] = name
        if kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                names[name + suffix] = name
    return names


SERIES = series_names()


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads((CONF / "grafana-dashboard.json").read_text())


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return panels


def data_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(dashboard) if p["type"] != "row"]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in data_panels(dashboard) for t in p["targets"]] + variable_queries(dashboard)


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\bstreaming_[a-z0-9_]+", expr))


def labels_in(expr: str) -> set[str]:
    """Labels an expression groups by or matches on (PromQL label names, not values)."""
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        labels.update(name.strip() for name in group.split(",") if name.strip())
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for selector in re.findall(r"\{([^}]*)\}", unquoted):
        labels.update(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", selector))
    return labels


def test_dashboard_is_an_importable_grafana_dashboard(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"] and dashboard["uid"]
    assert dashboard.get("id") is None  # import assigns one
    (source,) = dashboard["__inputs"]
    assert source == {**source, "name": "DS_PROMETHEUS", "type": "datasource", "pluginId": "prometheus"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "${DS_PROMETHEUS}" in json.dumps(variables["datasource"]["current"])
    assert {"job", "instance"} <= set(variables)
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"


def test_every_panel_has_a_datasource_and_queries_a_streaming_metric(dashboard):
    panels = data_panels(dashboard)
    assert len(panels) >= 13
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("datasource") == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel.get("targets"), where
        assert any(metrics_in(t.get("expr", "")) & set(SERIES) for t in panel["targets"]), where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target.get("datasource") == panel["datasource"], where
            assert target["expr"].strip(), where


def test_every_metric_and_label_used_is_in_the_contract(dashboard):
    used = set()
    for expr in exprs(dashboard):
        names = metrics_in(expr)
        assert names, expr
        unknown = names - set(SERIES)
        assert not unknown, f"not exposed by the service: {sorted(unknown)} in {expr}"
        used |= {SERIES[n] for n in names}
        allowed = set(TARGET_LABELS).union(*(METRICS[SERIES[n]][1] for n in names))
        if any(n.endswith("_bucket") for n in names):
            allowed.add("le")
        assert labels_in(expr) <= allowed, f"labels {sorted(labels_in(expr) - allowed)} in {expr}"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        assert expr.count("[") == expr.count("]"), expr
    assert used == set(METRICS), f"not charted: {sorted(set(METRICS) - used)}"


def test_every_query_is_scoped_to_the_selected_job_and_instance(dashboard):
    for panel in data_panels(dashboard):
        for target in panel["targets"]:
            for selector in re.findall(r"streaming_[a-z0-9_]+\{([^}]*)\}", target["expr"]):
                assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, target["expr"]
            assert not re.search(r"streaming_[a-z0-9_]+(?![a-z0-9_{])", target["expr"]), target["expr"]


def quantile_exprs(dashboard: dict[str, Any], histogram: str) -> dict[str, str]:
    found = {}
    for expr in exprs(dashboard):
        match = re.match(r"histogram_quantile\((0\.\d+),", expr)
        if match and f"{histogram}_bucket" in expr:
            found[match.group(1)] = expr
    return found


@pytest.mark.parametrize(
    "histogram, labels",
    [("streaming_stage_seconds", "le, stage"), ("streaming_request_seconds", "le, kind, outcome")],
)
def test_latency_panels_chart_p50_p95_p99(dashboard, histogram, labels):
    found = quantile_exprs(dashboard, histogram)
    assert set(found) >= {"0.5", "0.95", "0.99"}, sorted(found)
    for expr in found.values():
        assert f"sum by ({labels}) (rate({histogram}_bucket{{" in expr, expr
        assert expr.endswith("[5m])))"), expr


def test_cache_hit_ratio_per_level(dashboard):
    ratios = [e for e in exprs(dashboard) if 'result="hit"' in e and "sum by (level)" in e]
    assert ratios, "no per-level hit ratio"
    hits, _, total = ratios[0].partition(" / ")
    assert "streaming_cache_requests_total" in hits and "streaming_cache_requests_total" in total
    assert "result" not in total  # hits over hit + miss + error


def test_throughput_error_and_resource_queries(dashboard):
    every = "\n".join(exprs(dashboard))
    for fragment in (
        "rate(streaming_bytes_sent_total{",
        "sum by (kind) (rate(streaming_messages_sent_total{",
        "sum by (error) (rate(streaming_bad_messages_total{",
        'outcome!="ok"}[5m]',
        'status=~"5.."}[5m]',
        "sum by (handler) (rate(streaming_http_requests_total{",
        "sum by (reason) (rate(streaming_requests_cancelled_total{",
        "sum by (state) (streaming_db_pool_connections{",
        "sum by (backend) (rate(streaming_store_read_bytes_total{",
        "streaming_websocket_connections{",
        "streaming_ingest_blocks_total{",
    ):
        assert fragment in every, fragment


def test_panels_have_unique_ids_and_do_not_overlap(dashboard):
    panels = all_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        for x, y in itertools.product(
            range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        ):
            assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
            cells[(x, y)] = panel["title"]


def test_prometheus_scrape_config():
    text = (CONF / "prometheus.yml").read_text()
    assert "\t" not in text
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, line
        assert line.rstrip() == line, f"trailing space: {line!r}"
    body = "\n".join(lines)
    assert re.search(r"^scrape_configs:$", body, re.M)
    assert re.search(r"^  - job_name: streaming$", body, re.M)
    assert re.search(r"^    scrape_interval: 15s$", body, re.M)
    assert re.search(r"^    metrics_path: /metrics$", body, re.M)
    assert re.search(r"^    static_configs:\n      - targets:\n          - localhost:8080$", body, re.M)
    comments = " ".join(line.strip("# ") for line in text.splitlines() if line.lstrip().startswith("#"))
    assert "Several hosts" in comments
    assert "workers" in comments and "any worker returns the totals of all of them" in comments
