"""The container and the compose stack, checked without a Docker engine: hadolint on the
Dockerfile, the compose-spec schema on docker-compose.yml, and that the Dockerfile, the
compose services, Prometheus' scrape config and the Grafana dashboard fit each other and
the metrics the service really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import hold
from tests.conftest import seed
from tests.ops.dockerfile import Stage, parse

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "omnistock.json"


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is missing: it comes with the dev extra (pip install -e '.[dev]')")
        return found
    return str(path)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


# -- Dockerfile ---------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_dockerfile_that_breaks_its_rules(tmp_path: Path) -> None:
    """The lint is not a no-op: the same configuration rejects a careless Dockerfile."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    shutil.copy(ROOT / ".hadolint.yaml", tmp_path / ".hadolint.yaml")
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # `latest` tag


def test_image_is_multi_stage_from_pinned_slim_bases(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        assert "slim" in stage.base and not stage.base.endswith(":latest"), stage.base


def test_runtime_stage_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    user = stages[-1].last("USER")
    assert user is not None
    assert user.split(":")[0] not in ("root", "0")


def test_image_packages_the_lua_scripts_through_the_wheel(stages: list[Stage]) -> None:
    build = stages[0]
    assert any(args.split()[0] == "lua" for args in build.all("COPY"))
    assert any("pip wheel" in args for args in build.all("RUN"))
    assert any("/wheels/omnistock-*.whl" in args for args in stages[-1].all("RUN"))


def test_image_is_configured_only_by_environment(stages: list[Stage]) -> None:
    runtime = stages[-1]
    env = runtime.env()
    assert env["OMNISTOCK_HOST"] == "0.0.0.0"
    assert env["OMNISTOCK_LOG_FORMAT"] == "json"
    assert runtime.exec_form("ENTRYPOINT") == ["omnistock"]
    assert runtime.exec_form("CMD") == ["serve"]  # no flags: everything from OMNISTOCK_*
    assert not [k for k in env if re.search("PASSWORD|SECRET|TOKEN|_KEY$", k)]


def test_image_exposes_its_port_and_checks_readiness(stages: list[Stage]) -> None:
    runtime = stages[-1]
    assert runtime.last("EXPOSE") == runtime.env()["OMNISTOCK_PORT"]
    options, command = runtime.healthcheck()
    assert set(options) >= {"interval", "timeout", "start-period", "retries"}
    assert "/readyz" in " ".join(command)


# -- docker-compose.yml -------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: nginx\n    ports: 8080\n    restart: often\n")
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_store_keeps_an_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    store = compose["services"]["valkey"]
    command = store["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    volume, target = store["volumes"][0].split(":")[:2]
    assert target == "/data" and volume in compose["volumes"]
    assert "healthcheck" in store


def test_omnistock_runs_several_workers_on_the_compose_store(compose: dict[str, Any]) -> None:
    service = compose["services"]["omnistock"]
    env = service["environment"]
    url = re.fullmatch(r"redis://([a-z0-9-]+):(\d+)/\d+", env["OMNISTOCK_REDIS_URL"])
    assert url and url.group(1) in compose["services"]
    workers = re.fullmatch(r"\$\{OMNISTOCK_WORKERS:-(\d+)\}", env["OMNISTOCK_WORKERS"])
    assert workers and int(workers.group(1)) > 1
    assert service["depends_on"][url.group(1)]["condition"] == "service_healthy"
    assert service["build"] == "."


def test_omnistock_gets_its_keys_file_from_a_mounted_volume(compose: dict[str, Any]) -> None:
    service = compose["services"]["omnistock"]
    keys_file = service["environment"]["OMNISTOCK_API_KEYS_FILE"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
    directory = str(Path(keys_file).parent)
    assert directory in mounts
    writer = compose["services"]["keys"]
    assert f"{mounts[directory]}:{directory}" in writer["volumes"]
    assert keys_file in writer["command"][0]
    assert service["depends_on"]["keys"]["condition"] == "service_completed_successfully"


def test_published_ports_are_on_loopback_and_match_the_image(
    compose: dict[str, Any], stages: list[Stage]
) -> None:
    port = stages[-1].env()["OMNISTOCK_PORT"]
    assert f"127.0.0.1:8080:{port}" in compose["services"]["omnistock"]["ports"]
    for name, service in compose["services"].items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), (name, mapping)


def test_every_file_mounted_from_the_repository_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), (name, source)


# -- Prometheus ---------------------------------------------------------------------------


def test_prometheus_scrapes_omnistock_metrics_with_the_read_key(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert re.fullmatch(r"\d+[smh]", config["global"]["scrape_interval"])
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    ((host_port,),) = [c["targets"] for c in job["static_configs"]]
    host, port = host_port.split(":")
    assert host in compose["services"]
    assert port == "8080"
    credentials = job["authorization"]["credentials_file"]
    prometheus = compose["services"]["prometheus"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prometheus["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./deploy/prometheus.yml"
    assert mounts[str(Path(credentials).parent)] == "secrets"
    # ... and the `keys` job writes that file, readable by Prometheus' user
    script = compose["services"]["keys"]["command"][0]
    assert f"> /secrets/{Path(credentials).name}\n" in script
    assert f"chmod 644 /secrets/{Path(credentials).name}" in script


# -- Grafana ------------------------------------------------------------------------------


def provisioned(kind: str) -> dict[str, Any]:
    (path,) = (GRAFANA / "provisioning" / kind).glob("*.yml")
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def test_grafana_datasource_points_at_the_compose_prometheus(compose: dict[str, Any]) -> None:
    (source,) = provisioned("datasources")["datasources"]
    assert source["type"] == "prometheus"
    host = re.fullmatch(r"http://([a-z0-9-]+):9090", source["url"])
    assert host and host.group(1) in compose["services"]


def test_grafana_loads_the_dashboard_from_its_mounted_folder(compose: dict[str, Any]) -> None:
    (provider,) = provisioned("dashboards")["providers"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in compose["services"]["grafana"]["volumes"]}
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def test_dashboard_panels_are_well_formed_and_use_the_provisioned_datasource() -> None:
    (source,) = provisioned("datasources")["datasources"]
    doc = dashboard()
    assert doc["uid"] and doc["title"] and isinstance(doc["schemaVersion"], int)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["type"] in {"timeseries", "stat", "gauge", "table", "bargauge"}
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == source["uid"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])


def test_dashboard_covers_what_operators_need() -> None:
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p["targets"])
    for needle in (
        "omnistock_http_requests_total",  # request rate per route
        "omnistock_http_request_duration_seconds_bucket",  # latency per route
        "omnistock_hold_outcomes_total",  # hold outcomes
        'outcome="insufficient_stock"',  # oversell prevented
        "omnistock_hold_expiries_total",  # expiries
        "omnistock_sse_clients",  # SSE clients
        "omnistock_event_delivery_lag_seconds_bucket",  # event lag
        "omnistock_store_script_duration_seconds_bucket",  # Redis script time
    ):
        assert needle in exprs, needle


async def test_every_metric_the_dashboard_queries_is_exported_with_its_labels(
    client: httpx.AsyncClient,
) -> None:
    """Parse the service's /metrics and check each series and label a panel names."""
    await seed(client, {("sku-1", "dc"): 1})
    await hold(client, [{"sku": "sku-1", "quantity": 1}])
    text = (await client.get("/metrics")).text
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        for suffix in suffixes.get(family.type, [""]):
            labels = series.setdefault(family.name + suffix, set())
            for sample in family.samples:
                labels.update(sample.labels)
    for name in ("omnistock_hold_outcomes_total",):  # labelled, may have no sample yet
        series.setdefault(name, set()).add("outcome")
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, matchers in re.findall(r"(omnistock_[a-z0-9_]+)(\{[^}]*\})?", expr):
                assert name in series, (panel["title"], name)
                for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", matchers):
                    assert label in series[name] | {"le"}, (panel["title"], name, label)
            for group in re.findall(r"by \(([^)]*)\)", expr):
                used = [m for m in re.findall(r"omnistock_[a-z0-9_]+", expr)]
                known = set().union(*(series[m] for m in used)) | {"le"}
                for label in (g.strip() for g in group.split(",")):
                    assert label in known, (panel["title"], label)
