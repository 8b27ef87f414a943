"""deploy/observability: the real promtool checks the scrape configurations and the alert rules
(and runs the rules' unit tests); the Grafana dashboard and the alerts query only metrics the
services export."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.kustomize_lite import render
from tests.deploy.render_observability import prometheus_rule
from tests.deploy.render_observability import render as render_rule

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
KUBERNETES = OBSERVABILITY / "kubernetes"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed: "
                                    "`make prometheus` (Debian's prometheus package)")
#: Prometheus's own series, beside what the services export
BUILTIN = {"up"}
_METRIC = re.compile(r"\b(arcflare_[a-z0-9_]+|up)\b")


def promtool(*args: str, cwd: Path = OBSERVABILITY) -> str:
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def exported() -> set[str]:
    """Every series name the services' /metrics pages can show: the runtime's metrics (every
    service) and the ledger's fleet gauges, with the suffixes their types add."""
    from arcflare.ledger.fleet_metrics import FleetCollector
    from arcflare.observability import metrics
    from prometheus_client import REGISTRY

    suffixes = {"counter": ("_total",), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count")}
    families = [*REGISTRY.collect(), *FleetCollector(Path("/nonexistent.db")).collect()]
    assert metrics.SERVICE_GAUGES in REGISTRY._collector_to_names
    return {f.name + suffix for f in families for suffix in suffixes.get(f.type, ("",))}


def queried(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in _METRIC.findall(expr)}


def dashboard() -> dict:
    return json.loads((OBSERVABILITY / "grafana" / "arcflare.json").read_text())


def dashboard_queries() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"]]
    return exprs


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    return [r["expr"] for group in rules["groups"] for r in group["rules"]]


@needs_promtool
def test_promtool_accepts_the_compose_scrape_configuration() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


@needs_promtool
def test_promtool_accepts_the_alert_rules_and_they_fire_as_their_tests_say() -> None:
    assert "SUCCESS: 8 rules found" in promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


@needs_promtool
def test_the_kubernetes_rules_are_the_alert_rules(tmp_path: Path) -> None:
    shipped = (KUBERNETES / "prometheusrule.yaml").read_text()
    assert shipped == render_rule(), "run: python -m tests.deploy.render_observability"
    groups = tmp_path / "groups.yml"
    groups.write_text(yaml.safe_dump({"groups": prometheus_rule()["spec"]["groups"]}))
    assert "SUCCESS" in promtool("check", "rules", str(groups))


@needs_promtool
def test_the_pod_monitors_relabelling_is_valid_prometheus_configuration(tmp_path: Path) -> None:
    """The operator turns relabelings into relabel_configs: promtool checks them as such."""
    monitor = yaml.safe_load((KUBERNETES / "podmonitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    renames = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    relabel = [{renames.get(k, k): v for k, v in rule.items()} for rule in endpoint["relabelings"]]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [{
        "job_name": "arcflare-pods", "metrics_path": endpoint["path"],
        "static_configs": [{"targets": ["127.0.0.1:8080"]}], "relabel_configs": relabel}]}))
    assert "SUCCESS" in promtool("check", "config", str(config))


def test_the_pod_monitor_selects_the_site_agents_health_port() -> None:
    monitor = yaml.safe_load((KUBERNETES / "podmonitor.yaml").read_text())
    deployment = next(d for d in render(ROOT / "deploy" / "k8s" / "site-agent" / "base")
                      if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for c in pod["spec"]["containers"]
             for p in c.get("ports", [])}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert str(ports[endpoint["port"]]) == env["ARCFLARE_HEALTH_PORT"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "site-agent"


def test_the_metrics_scrape_component_opens_only_the_health_port_to_monitoring() -> None:
    (component,) = yaml.safe_load_all(
        (ROOT / "deploy/k8s/site-agent/components/allow-metrics-scrape/kustomization.yaml")
        .read_text())
    (patch,) = yaml.safe_load(component["patches"][0]["patch"])
    assert patch["path"] == "/spec/ingress/-"
    assert patch["value"]["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_the_dashboard_queries_only_metrics_the_services_export() -> None:
    names = queried(dashboard_queries())
    assert len(names) >= 12, names  # the dashboard covers the services and the fleet
    assert names <= exported() | BUILTIN, sorted(names - exported() - BUILTIN)


def test_the_alerts_query_only_metrics_the_services_export() -> None:
    names = queried(alert_exprs())
    assert names <= exported() | BUILTIN, sorted(names - exported() - BUILTIN)


def test_every_exported_metric_is_on_the_dashboard() -> None:
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in queried(dashboard_queries())}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported()
                if n.startswith("arcflare_")}
    assert families <= shown, sorted(families - shown)


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load(
        (OBSERVABILITY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    board = dashboard()
    used = {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])}
    assert used == {source["uid"]}
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_runs_prometheus_and_grafana_on_these_files() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = {v.split(":")[0] for name in ("prometheus", "grafana")
              for v in services[name]["volumes"]}
    assert {"./deploy/observability/prometheus.yml", "./deploy/observability/alerts.yml",
            "./deploy/observability/grafana/provisioning",
            "./deploy/observability/grafana/arcflare.json"} <= mounts
    scraped = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())["scrape_configs"]
    targets = {t.split(":")[0] for job in scraped for c in job["static_configs"]
               for t in c["targets"]}
    # every long-running ArcFlare process; not the one-shot identities hand-out nor the CLI
    arcflare = {name for name, svc in services.items()
                if "build" in svc and svc.get("restart") != "no" and not svc.get("profiles")}
    assert targets == arcflare, targets ^ arcflare
