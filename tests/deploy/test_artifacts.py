"""Deployment artifacts, checked as far as honesty allows without a Docker engine:
the compose file, the images' Dockerfiles, the site-agent manifests and the lock."""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.kustomize_lite import render

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["provisioner", "deployer", "job-controller", "metrics-relay", "site-agent",
            "alerter", "ledger"]
K8S = ROOT / "deploy" / "k8s" / "site-agent"
#: written by the one-shot `identities` service before any other starts (git-ignored)
IDENTITIES = "./deploy/compose"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def settings_fields(service: str) -> set[str]:
    """Every ARCFLARE_* name the service's settings class reads."""
    module = importlib.import_module(f"arcflare.{service.replace('-', '_')}.settings")
    classes = [v for k, v in vars(module).items() if k.endswith("Settings") and
               isinstance(v, type) and v.__module__ == module.__name__]
    assert classes, f"no settings class in {module.__name__}"
    return {f"ARCFLARE_{name.upper()}" for name in classes[0].model_fields}


def env_file(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return dict(pairs)


def dockerfile(service: str) -> str:
    return (ROOT / "deploy" / "docker" / f"{service}.Dockerfile").read_text()


def workspace_members() -> set[str]:
    names = set()
    for path in [ROOT / "shared" / "pyproject.toml", *ROOT.glob("services/*/pyproject.toml")]:
        names.add(tomllib.loads(path.read_text())["project"]["name"])
    return names


# --- docker-compose ------------------------------------------------------------------
def test_compose_runs_every_service_the_emulator_and_mlflow():
    services = compose()["services"]
    for name in ["provisioner", "deployer", "job-controller", "metrics-relay", "alerter",
                 "ledger", "servicebus-emulator", "sqledge", "mlflow"]:
        assert name in services, name
    assert any(n.startswith("site-agent") for n in services)
    assert services["servicebus-emulator"]["image"].startswith(
        "mcr.microsoft.com/azure-messaging/servicebus-emulator")
    assert services["sqledge"]["image"].startswith("mcr.microsoft.com/azure-sql-edge")


def test_every_build_context_dockerfile_env_file_and_mount_exists():
    for name, svc in compose()["services"].items():
        if "build" in svc:
            assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file(), name
        for env in [svc["env_file"]] if isinstance(svc.get("env_file"), str) else svc.get(
                "env_file", []):
            assert (ROOT / env).is_file(), f"{name}: env file {env}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(".") and not source.startswith(IDENTITIES):
                assert (ROOT / source).exists(), f"{name}: mounts missing {source}"


def test_no_volume_is_shared_and_each_service_keeps_its_state_in_its_own():
    services = compose()["services"]
    users: dict[str, list[str]] = {}
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("/", ".")):
                users.setdefault(source, []).append(name)
    assert {v: u for v, u in users.items() if len(u) > 1} == {}
    assert set(users) == set(compose()["volumes"])
    for name, svc in services.items():
        if "build" in svc and name != "identities":
            assert f"{name}-data:/data" in svc["volumes"], name


def test_each_service_mounts_only_its_own_identity_as_the_operator_hands_them_out(tmp_path):
    """What `identities` runs (arcflare local parties) makes exactly the folders mounted."""
    from arcflare.cli.main import app
    from typer.testing import CliRunner

    made = CliRunner().invoke(app, ["local", "parties", "--data-dir", str(tmp_path), "--site",
                                    "compose/site-1", "--site", "compose/site-2", "--json"])
    assert made.exit_code == 0, made.output
    parties = json.loads(made.stdout)
    for name, svc in compose()["services"].items():
        mounts = [v for v in svc.get("volumes", []) if v.startswith(IDENTITIES)]
        if "build" not in svc or name == "identities":
            continue
        party = svc.get("environment", {}).get("ARCFLARE_SITE")
        party = f"site-agent-compose-{party}" if party else name
        assert mounts == [f"{IDENTITIES}/parties/{party}/identity:/data/identity:ro"], name
        assert (Path(parties[party]) / "identity" / "trust" / "anchors.pem").is_file()
        assert not list(Path(parties[party]).rglob("root-key.pem"))


def test_the_artifact_store_is_azurite_for_every_service():
    services, shared = compose()["services"], env_file(ROOT / "deploy" / "compose.env")
    assert services["azurite"]["image"].startswith("mcr.microsoft.com/azure-storage/azurite")
    assert shared["ARCFLARE_ARTIFACT_STORE"] == "azureblob"
    assert "BlobEndpoint=http://azurite:10000/" in shared["ARCFLARE_ARTIFACT_BLOB_CONNECTION_STRING"]
    from arcflare.runtime.settings import Settings

    assert {"ARCFLARE_ARTIFACT_STORE", "ARCFLARE_ARTIFACT_BLOB_CONNECTION_STRING"} <= {
        f"ARCFLARE_{n.upper()}" for n in Settings.model_fields}


def test_mounted_emulator_config_is_the_generated_one():
    from arcflare.bus.emulator import render_emulator_config
    from arcflare.contracts.topology import TOPOLOGY

    mount = next(v for v in compose()["services"]["servicebus-emulator"]["volumes"]
                 if v.endswith("/ServiceBus_Emulator/ConfigFiles/Config.json:ro"))
    mounted = json.loads((ROOT / mount.split(":")[0]).read_text())
    assert mounted == render_emulator_config(TOPOLOGY)


def test_compose_env_names_settings_the_services_really_read():
    """A misspelt ARCFLARE_ name is silently ignored by pydantic-settings: catch it here."""
    shared = set(env_file(ROOT / "deploy" / "compose.env"))
    read_by_any = set().union(*(settings_fields(s) for s in SERVICES))
    assert shared <= read_by_any, f"no service reads {sorted(shared - read_by_any)}"
    for name, svc in compose()["services"].items():
        service = "site-agent" if name.startswith("site-agent") else name
        own = set(svc.get("environment") or {})
        if service in SERVICES:
            assert own <= settings_fields(service), f"{name}: {sorted(own - settings_fields(service))}"


def test_the_shared_tracking_uri_is_the_metrics_relays_setting():
    assert "ARCFLARE_TRACKING_URI" in settings_fields("metrics-relay")


def test_compose_example_spec_is_a_valid_command():
    from arcflare.contracts.commands import CreateFederation

    spec = yaml.safe_load((ROOT / "deploy/examples/federation-compose.yaml").read_text())
    assert CreateFederation.model_validate(spec).server.host == "deployer"


# --- Dockerfiles -----------------------------------------------------------------------
@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_is_multi_stage_non_root_and_probed(service):
    text = dockerfile(service)
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2, "multi-stage"
    final = stages[-1]
    assert re.search(r"^USER (?!root)\w+", final, re.MULTILINE), "the final stage runs as non-root"
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert not re.search(r"apt-get install|gcc|build-essential|/uv ", final), \
        "no build tools in the final stage"
    package = re.search(r"uv sync --frozen .*--package (\S+)", text).group(1)
    assert package == f"arcflare-{service}" and package in workspace_members()
    module = re.search(r'ENTRYPOINT \["python", "-m", "([\w.]+)"\]', text).group(1)
    assert importlib.util.find_spec(f"{module}.__main__") is not None, module


def _closure(package: str) -> set[str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    by_name = {p["name"]: p for p in lock["package"]}
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [d["name"] for d in by_name[name].get("dependencies", [])]
    return seen


def test_site_agent_image_has_no_mlflow_azure_ai_ml_or_nvflare():
    closure = _closure("arcflare-site-agent")
    assert "kubernetes" in closure and "azure-servicebus" in closure
    assert not closure & {"mlflow", "mlflow-skinny", "azure-ai-ml", "nvflare"}


# --- site-agent manifests ----------------------------------------------------------------
def overlays() -> list[Path]:
    return sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())


@pytest.mark.parametrize("directory", [K8S / "base", *overlays()], ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schemas(directory):
    docs = render(directory)
    assert {d["kind"] for d in docs} == {"Deployment", "ServiceAccount", "Role", "RoleBinding",
                                          "NetworkPolicy", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


@pytest.mark.parametrize("directory", overlays(), ids=lambda p: p.name)
def test_overlay_wires_selectors_identity_and_settings(directory):
    docs = {d["kind"]: d for d in render(directory)}
    deployment, policy = docs["Deployment"], docs["NetworkPolicy"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert pod_labels.get("azure.workload.identity/use") == "true"
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert "azure.workload.identity/client-id" in docs["ServiceAccount"]["metadata"]["annotations"]
    binding = docs["RoleBinding"]
    assert binding["roleRef"]["name"] == docs["Role"]["metadata"]["name"]
    assert binding["subjects"][0]["name"] == docs["ServiceAccount"]["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert set(env) <= settings_fields("site-agent"), set(env) - settings_fields("site-agent")
    assert "CHANGE-ME" not in json.dumps(env)
    for name in ("ARCFLARE_REDACTION_PATTERNS", "ARCFLARE_ADMINS"):
        config_ref = next(e for e in spec["containers"][0]["env"] if e["name"] == name)
        assert config_ref["valueFrom"]["configMapKeyRef"]["name"] == \
            docs["ConfigMap"]["metadata"]["name"]
    from arcflare.site_agent.settings import SiteAgentSettings

    admins = json.loads(docs["ConfigMap"]["data"]["admins"])
    assert "CHANGE-ME" not in json.dumps(admins)
    assert SiteAgentSettings(admins=admins).admins  # what the agent will obey
    identity = next(v for v in spec["volumes"] if v["name"] == "identity")
    mounted = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert identity["secret"]["secretName"] and mounted["identity"]["readOnly"]
    assert env["ARCFLARE_IDENTITY_KEY"].startswith(mounted["identity"]["mountPath"])


def test_role_only_reads_pods_and_their_logs():
    role = next(d for d in render(K8S / "base") if d["kind"] == "Role")
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        assert set(rule["resources"]) <= {"pods", "pods/log"}
        assert set(rule["verbs"]) <= {"get", "list", "watch"}


def test_redaction_patterns_in_the_configmap_are_valid_for_the_agent():
    from arcflare.site_agent.settings import SiteAgentSettings

    config = next(d for d in render(K8S / "base") if d["kind"] == "ConfigMap")
    patterns = json.loads(config["data"]["redaction_patterns"])
    assert SiteAgentSettings(redaction_patterns=patterns).redaction_patterns == patterns


def test_network_policy_allows_egress_only_to_dns_service_bus_and_the_api_server():
    policy = next(d for d in render(K8S / "base") if d["kind"] == "NetworkPolicy")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert policy["spec"]["ingress"] == []
    ports = [sorted(p["port"] for p in rule["ports"]) for rule in policy["spec"]["egress"]]
    assert ports == [[53, 53], [443, 5671], [443, 6443]]
