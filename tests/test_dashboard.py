"""The Grafana dashboard's queries against a real Prometheus scraping real worker metrics.

A subprocess serves `worker.metrics.WorkerMetrics` through prometheus_client
and keeps every metric moving, Prometheus (the `prometheus` binary) scrapes it
every second, and each query of deploy/grafana/dashboards/streamrec.json runs
through Prometheus's HTTP API with the Grafana variables filled in.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.prometheus_server import PrometheusServer, find_binary, free_port, http_get
from worker.metrics import WorkerMetrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "streamrec.json"
LOCAL_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus-local.yml"
COMPOSE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# Prometheus scrapes the stand-in worker every second, so after three scrapes a
# 1m window contains enough samples for rate() and increase().
SCRAPE_INTERVAL = "1s"
WINDOW = "1m"
INTERVAL_VARIABLES = {"__rate_interval": WINDOW, "__interval": WINDOW, "__range": WINDOW}
# The stand-in worker's shards: (partition, model).
SHARDS = (("0", "popular"), ("1", "imf"), ("2", "imf"))
SELECTIONS = {
    "all": {"partition": ".*", "model": ".*"},
    "one": {"partition": "1", "model": "imf"},
}

# Serves WorkerMetrics on 127.0.0.1:<argv[1]> and moves every metric ten
# times a second for at most <argv[2]> seconds, like a worker that owns the
# shards in <argv[3]> (JSON), processes events, rejects some, checkpoints and
# restores.
EXPORTER_SCRIPT = """
import json, sys, time
from worker.metrics import WorkerMetrics

port, lifetime, shards = int(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
metrics = WorkerMetrics()
metrics.serve(port, address="127.0.0.1")
deadline = time.monotonic() + lifetime
step = 0
while time.monotonic() < deadline:
    step += 1
    for partition, model in shards:
        metrics.events_processed.labels(partition, model).inc(20)
        metrics.hits.labels(partition, model).inc(3)
        metrics.recall.labels(partition, model).set(0.15)
        for seconds in (3e-5, 8e-5, 4e-4, 2e-3):
            metrics.event_seconds.labels(partition, model).observe(seconds)
        metrics.shard_users.labels(partition, model).set(100 + step)
        metrics.shard_items.labels(partition, model).set(40 + step // 2)
        metrics.consumer_lag.labels(partition).set(5000 + step)
        metrics.events_rejected.labels(partition, "undecodable").inc()
        metrics.events_rejected.labels(partition, "missing_field").inc(2)
    metrics.assigned_partitions.set(len(shards))
    metrics.ready.set(1)
    metrics.checkpoints.inc()
    metrics.checkpoint_seconds.observe(0.02)
    metrics.restore_seconds.observe(0.4)
    time.sleep(0.1)
"""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def dashboard_targets() -> list[tuple[str, dict]]:
    """Return (panel title, target) for every query target in the dashboard, rows included."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []

    def visit(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((panel.get("title", ""), target))
            visit(panel.get("panels", []))

    visit(dashboard["panels"])
    return found


def variable_queries() -> list[tuple[str, str]]:
    """Return (variable name, label_values query) for every query variable of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        found.append((variable["name"], query["query"] if isinstance(query, dict) else query))
    return found


def fill_variables(expr: str, selection: dict[str, str]) -> str:
    """Replace Grafana's variables in `expr` with concrete values, failing the test on an unknown one."""
    values = INTERVAL_VARIABLES | selection

    def replace(match: re.Match) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            pytest.fail(f"the query {expr!r} uses the variable ${name}, which this test does not know")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def metric_names(expr: str) -> set[str]:
    """Return the metric names that the PromQL expression `expr` selects.

    Strings, label matchers, ranges and grouping clauses are removed first.
    Every remaining identifier that is not a function call or a keyword is a
    metric name.
    """
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def worker_sample_names() -> dict[str, set[str]]:
    """Return, per metric family that worker/metrics.py defines, the sample names Prometheus stores."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    families = {}
    for family in WorkerMetrics().registry.collect():
        families[family.name] = {family.name + suffix for suffix in suffixes[family.type]}
    return families


def test_metric_names_parse_known_cases() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, model) (rate(a_bucket{model=~"x|y", le!="1e-5"}[5m])))'
        " / on (model) group_left () sum by (model) (b_total offset 5m) > bool 0.5e3 or c"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def test_dashboard_queries_exist() -> None:
    assert dashboard_targets(), f"{DASHBOARD} has no query targets"
    for title, target in dashboard_targets():
        assert target.get("expr", "").strip(), f"panel {title!r} target {target.get('refId')} has no expr"


def test_dashboard_covers_every_worker_metric() -> None:
    used = set().union(*(metric_names(target["expr"]) for _, target in dashboard_targets()))
    missing = sorted(family for family, samples in worker_sample_names().items() if not samples & used)
    assert missing == [], f"metrics of worker/metrics.py that no dashboard query uses: {missing}"


def test_dashboard_names_only_worker_metrics() -> None:
    defined = set().union(*worker_sample_names().values())
    for title, target in dashboard_targets():
        unknown = sorted(metric_names(target["expr"]) - defined)
        assert unknown == [], f"panel {title!r} target {target['refId']} names undefined metrics {unknown}"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping a stand-in worker whose counters have grown between scrapes."""
    binary = find_binary()
    if binary is None:
        pytest.skip("the prometheus binary is not on the PATH; install it with `apt-get install prometheus`")
    workdir = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    with open(workdir / "exporter.log", "wb") as log:
        exporter = subprocess.Popen(
            [sys.executable, "-c", EXPORTER_SCRIPT, str(port), "120", json.dumps(SHARDS)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_exporter(port, exporter, workdir / "exporter.log")
        config = local_config(f"127.0.0.1:{port}")
        with PrometheusServer(binary, config, workdir) as server:
            server.wait_for_targets_up()
            wait_for_counters_to_grow(server)
            yield server
    finally:
        exporter.terminate()
        try:
            exporter.wait(timeout=10)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.wait(timeout=5)


def local_config(target: str) -> str:
    """Return deploy/prometheus/prometheus-local.yml scraping `target` every SCRAPE_INTERVAL."""
    text = LOCAL_CONFIG.read_text()
    for old, new in (('"127.0.0.1:9400"', f'"{target}"'), ("scrape_interval: 5s", f"scrape_interval: {SCRAPE_INTERVAL}")):
        assert text.count(old) == 1, f"{LOCAL_CONFIG} should contain {old!r} exactly once"
        text = text.replace(old, new)
    return text


def wait_for_exporter(port: int, exporter: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if exporter.poll() is not None:
            pytest.fail(f"the metrics exporter exited with code {exporter.returncode}:\n{log.read_text()}")
        try:
            status, _ = http_get(f"http://127.0.0.1:{port}/metrics", timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the metrics exporter did not serve 127.0.0.1:{port}/metrics within {timeout} s")
        time.sleep(0.1)


def wait_for_counters_to_grow(server: PrometheusServer, timeout: float = 30.0) -> None:
    """Wait until every counter and histogram series increased within the last WINDOW."""
    growing = [
        name
        for samples in worker_sample_names().values()
        for name in samples
        if name.endswith(("_total", "_count"))
    ]
    deadline = time.monotonic() + timeout
    while True:
        pending = []
        for name in growing:
            response = server.query(f"count({name}) - count(increase({name}[{WINDOW}]) > 0)")
            result = response.get("data", {}).get("result", [])
            if not result or float(result[0]["value"][1]) != 0:
                pending.append(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"these counters did not increase between scrapes within {timeout} s: {pending}")
        time.sleep(0.5)


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
@pytest.mark.parametrize(
    ("title", "target"),
    dashboard_targets(),
    ids=[f"{title}-{target.get('refId')}" for title, target in dashboard_targets()],
)
def test_dashboard_query_returns_series(prometheus: PrometheusServer, title: str, target: dict, selection: str) -> None:
    chosen = SELECTIONS[selection]
    expr = fill_variables(target["expr"], chosen)

    response = prometheus.query(expr)

    assert response["status"] == "success", f"{expr!r} was rejected: {response.get('error')}"
    result = response["data"]["result"]
    assert result, f"{expr!r} returned no series"
    for series in result:
        value = float(series["value"][1])
        assert math.isfinite(value), f"{expr!r} returned {value} for {series['metric']}"
        for label in _LEGEND_LABEL.findall(target.get("legendFormat", "")):
            assert label in series["metric"], f"{expr!r} returned {series['metric']} without the legend label {label!r}"
        for label, selected in chosen.items():
            if selected != ".*" and label in series["metric"]:
                assert series["metric"][label] == selected, f"{expr!r} returned {series['metric']} for {label}={selected}"


@pytest.mark.parametrize(("name", "query"), variable_queries(), ids=[name for name, _ in variable_queries()])
def test_variable_query_returns_values(prometheus: PrometheusServer, name: str, query: str) -> None:
    match = re.fullmatch(r"label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)", query)
    assert match, f"variable {name} uses {query!r}; expected label_values(<series selector>, <label>)"
    selector, label = match.groups()

    response = prometheus.label_values(label, selector)

    assert response["status"] == "success", f"{query!r} was rejected: {response.get('error')}"
    shard_labels = [{"partition": partition, "model": model} for partition, model in SHARDS]
    assert label in shard_labels[0], f"variable {name} lists label {label!r}, which the shards do not have"
    assert sorted(response["data"]) == sorted({labels[label] for labels in shard_labels})


@pytest.mark.parametrize("config", [COMPOSE_CONFIG, LOCAL_CONFIG], ids=lambda path: path.name)
def test_prometheus_config_passes_promtool(config: Path) -> None:
    promtool = find_binary("promtool")
    if promtool is None:
        pytest.skip("the promtool binary is not on the PATH; install it with `apt-get install prometheus`")

    result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stdout + result.stderr
