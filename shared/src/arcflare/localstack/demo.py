"""The demo: a whole federation on this machine through ArcFlare's own commands and events.

Start the local stack, create a federation of hospitals with auto-deploy, wait
for every site to connect, train the built-in FedAvg recipe, and wait for the
model in MLflow. Everything goes through the bus, exactly as in production.
"""
from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcflare.client import Client, CommandFailed
from arcflare.contracts.commands import (
    CreateFederation,
    RecipePackage,
    RefreshFederationStatus,
    SubmitJob,
)
from arcflare.contracts.envelope import Envelope

HOSPITALS = [
    ("st-marys-london", "st_marys"), ("charite-berlin", "charite"),
    ("karolinska-stockholm", "karolinska"), ("hopital-necker-paris", "aphp"),
    ("erasmus-rotterdam", "erasmus_mc"), ("mayo-rochester", "mayo"),
    ("sickkids-toronto", "sickkids"), ("ucsf-san-francisco", "ucsf"),
]
#: the default principal (ARCFLARE_ISSUED_BY), so `arcflare status|logs|audit` work after --keep
ADMIN = "admin@arcflare.local"
#: what provisioning and deployment need; the demo starts with these ready and the
#: rest of the stack (MLflow, ledger, alerter) finishes starting meanwhile
FIRST_SERVICES = ("provisioner", "deployer", "job-controller")
Progress = Callable[[str], None]
#: between status polls; each poll is a round trip through the job-controller to NVFlare
POLL_S = 0.25


class DemoFailed(RuntimeError):
    pass


@dataclass
class DemoRun:
    data_dir: Path
    sites: int = 3
    rounds: int = 5
    progress: Progress = print
    timings: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, dict[int, float]]] = field(default_factory=dict)
    #: called before the summary: waits until the whole stack is ready (the ledger answers
    #: the sites' health). Not before the job: what the bookkeeping services are sent
    #: meanwhile waits for them on the bus, and their start-up (MLflow's above all) would
    #: otherwise stand between connected sites and training
    stack_ready: Callable[[], object] | None = None

    @property
    def federation(self) -> str:
        return f"hospitals-{self.sites}"

    def spec(self) -> CreateFederation:
        return CreateFederation(
            name=self.federation,
            sites=[{"name": n, "org": o} for n, o in HOSPITALS[: self.sites]],
            admins=[{"email": ADMIN, "org": "consortium", "role": "project_admin"}],
            auto_deploy=True,
            heart_beat_timeout_s=30,
        )

    def run(self, client: Client) -> dict[str, Any]:
        started = time.monotonic()
        self._provision(client)
        self._wait_connected(client)
        job_id, completed, registered = self._train(client)
        if self.stack_ready is not None:
            self.stack_ready()
        self.timings["total_s"] = round(time.monotonic() - started, 2)
        return self._summary(job_id, completed, registered)

    def _step(self, name: str, since: float) -> None:
        self.timings[name] = round(time.monotonic() - since, 2)

    def _provision(self, client: Client) -> None:
        t = time.monotonic()
        command_id = client.send(self.spec())
        try:
            outcome = client.wait(command_id, timeout=120, raise_on_failure=True)
        except CommandFailed as exc:
            raise DemoFailed(f"provisioning failed: {exc}") from None
        self._step("provision_s", t)
        self.progress(f"federation {self.federation} provisioned: server "
                      f"{outcome.payload['server_endpoint']}, {len(outcome.payload['sites'])} "
                      f"hospitals")

    def _wait_server(self, client: Client, timeout: float) -> None:
        """Until the deployer announces the server listening. Asking NVFlare earlier only
        sets the job-controller's FLARE connection retrying on its own, slower, schedule."""
        for env in client.follow(types=("ServerDeployed", "DeploymentFailed"),
                                 federation=self.federation, timeout=timeout):
            if env.type == "ServerDeployed":
                self.progress(f"server listening on {env.payload['endpoint']}")
                return
            raise DemoFailed(f"{env.payload['target']} could not be deployed: "
                             f"{env.payload['reason']}")
        raise DemoFailed(f"the server was not deployed within {timeout:.0f} s "
                         f"(see {self.data_dir / 'logs' / 'deployer.log'})")

    def _wait_connected(self, client: Client, timeout: float = 180) -> None:
        t = time.monotonic()
        self._wait_server(client, timeout)
        wanted = {n for n, _ in HOSPITALS[: self.sites]}
        connected: set[str] = set()
        deadline = t + timeout
        while time.monotonic() < deadline:
            command_id = client.send(RefreshFederationStatus(federation=self.federation))
            try:
                outcome = client.wait(command_id, timeout=30, raise_on_failure=True)
            except (TimeoutError, CommandFailed):
                time.sleep(POLL_S)
                continue
            now = {c["name"] for c in outcome.payload.get("clients", [])} & wanted
            # counted one by one: several hospitals often show up in the same poll
            count = len(now & connected)
            for name in sorted(now - connected):
                count += 1
                self.progress(f"site {name} connected ({count}/{len(wanted)})")
            connected = now
            if connected == wanted:
                self._step("deploy_and_connect_s", t)
                return
            time.sleep(POLL_S)
        missing = ", ".join(sorted(wanted - connected))
        raise DemoFailed(f"sites not connected after {timeout:.0f} s: {missing} "
                         f"(see {self.data_dir / 'logs'} and arcflare status)")

    def _train(self, client: Client) -> tuple[str, Envelope, Envelope]:
        t = time.monotonic()
        command_id = client.send(SubmitJob(
            federation=self.federation, name="logreg",
            package=RecipePackage(recipe="fedavg-logreg", parameters={"rounds": self.rounds}),
            min_clients=self.sites, timeout_s=900))
        try:
            submitted = client.wait(command_id, timeout=300, raise_on_failure=True, settled=True)
        except CommandFailed as exc:
            raise DemoFailed(f"job not submitted: {exc}") from None
        job_id = submitted.payload["job_id"]
        self.progress(f"job {job_id} submitted: FedAvg logistic regression, "
                      f"{self.rounds} rounds")
        completed = registered = None
        deadline = time.monotonic() + 900
        for env in client.follow(federation=self.federation, topics=("events", "telemetry"),
                                 timeout=max(1.0, deadline - time.monotonic())):
            if env.payload.get("job_id") not in (None, job_id):
                continue
            if env.type == "MetricsReported":
                self._record_metrics(env)
            elif env.type == "JobStatusChanged":
                self.progress(f"job status {env.payload['status']}")
            elif env.type == "JobCompleted":
                completed = env
                self._step("training_s", t)
                self.progress(f"job finished: {env.payload['status']} in "
                              f"{env.payload['duration_s']:.1f} s")
                if env.payload["status"] != "FINISHED:COMPLETED":
                    raise DemoFailed(f"the job ended {env.payload['status']}: "
                                     f"{env.payload.get('reason') or 'see arcflare logs'}")
            elif env.type == "ModelRegistered":
                registered = env
                self.progress(f"model {env.payload['name']} version "
                              f"{env.payload['version']} registered in MLflow")
            if completed and registered:
                self._step("train_to_model_s", t)
                return job_id, completed, registered
        raise DemoFailed("the job did not complete with a registered model within 15 min")

    def _record_metrics(self, env: Envelope) -> None:
        site = env.payload["site"]
        per_site = self.metrics.setdefault(site, {})
        rounds_seen = set()
        for point in env.payload["points"]:
            per_site.setdefault(point["key"], {})[point["step"]] = point["value"]
            if point["key"] == "accuracy":
                rounds_seen.add(point["step"])
        for step in sorted(rounds_seen):
            acc = per_site["accuracy"][step]
            self.progress(f"round {step + 1}/{self.rounds} {site}: accuracy {acc:.3f}")

    def final(self, site: str, key: str) -> float | None:
        series = self.metrics.get(site, {}).get(key)
        return series[max(series)] if series else None

    def ledger_view(self) -> dict:
        """The ledger's read model of the federation (health from the site agents)."""
        try:
            port = int((self.data_dir / "run" / "ledger.port").read_text())
            url = f"http://127.0.0.1:{port}/federations/{self.federation}"
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.load(answer)
        except (OSError, ValueError):
            return {}

    def _summary(self, job_id: str, completed: Envelope, registered: Envelope) -> dict:
        sites = []
        view_of_federation = self.ledger_view()
        seen = {s["site"]: s for s in view_of_federation.get("sites", [])}
        server = view_of_federation.get("server") or {}
        for name, _ in HOSPITALS[: self.sites]:
            view = seen.get(name, {})
            sites.append({"name": name,
                          "health": view.get("condition") or view.get("health") or "unknown",
                          "diagnosis": view.get("diagnosis") or "",
                          "server_view": view.get("server_view", "unknown"),
                          "final_metrics": {k: self.final(name, k)
                                            for k in sorted(self.metrics.get(name, {}))}})
        accs = [s["final_metrics"].get("accuracy") for s in sites]
        accs = [a for a in accs if a is not None]
        return {
            "federation": self.federation,
            "job_id": job_id,
            "status": completed.payload["status"],
            "result_ref": completed.payload.get("result_ref"),
            "global_accuracy": sum(accs) / len(accs) if accs else None,
            "sites": sites,
            "server": {"lifecycle": server.get("lifecycle"), "engine": server.get("engine")},
            "mlflow": {
                "tracking_uri": f"sqlite:///{self.data_dir / 'mlflow.db'}",
                "experiment": self.federation,
                "run_id": registered.payload["run_id"],
                "model_name": registered.payload["name"],
                "model_version": registered.payload["version"],
            },
            "timings": self.timings,
            "logs": str(self.data_dir / "logs"),
        }
