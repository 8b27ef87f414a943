"""The site-agent's opt-in site-data component: the claim mounted read-only, its inputs set."""
from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml
from arcflare.site_agent.settings import SiteAgentSettings

from tests.deploy.kustomize_lite import render

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "site-agent"


def test_the_agent_mounts_the_site_s_claim_read_only_and_knows_where_each_input_is(
        tmp_path, monkeypatch):
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(K8S / "base")], "components": [str(K8S / "components" / "site-data")]}))

    docs = render(tmp_path)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)

    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "site-data-records"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "site-data-records"]
    inputs = next(e["value"] for e in container["env"] if e["name"] == "ARCFLARE_INPUTS")
    assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["readOnly"] is True
    monkeypatch.setenv("ARCFLARE_INPUTS", inputs)  # as the pod's environment gives it
    assert SiteAgentSettings().inputs == {"records": Path(mount["mountPath"])}
