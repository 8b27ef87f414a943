"""deploy/observability/kubernetes/prometheusrule.yaml is alerts.yml as a PrometheusRule (the
Prometheus Operator's form): one source of alert rules, rendered here and checked for drift
by tests/deploy/test_observability.py.

    .venv/bin/python -m tests.deploy.render_observability
"""
from __future__ import annotations

from pathlib import Path

import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
HEADER = ("# Generated from ../alerts.yml by `python -m tests.deploy.render_observability`:\n"
          "# edit alerts.yml, then render again (a test fails while the two differ).\n")


def prometheus_rule() -> dict:
    alerts = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "arcflare", "labels": {"app.kubernetes.io/part-of": "arcflare"}},
        "spec": {"groups": alerts["groups"]},
    }


def render() -> str:
    return HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100,
                                   allow_unicode=True)


if __name__ == "__main__":
    (OBSERVABILITY / "kubernetes" / "prometheusrule.yaml").write_text(render())
