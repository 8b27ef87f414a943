"""The whole local stack, observed as an operator would: traces exported over OTLP/HTTP to a
receiver on loopback, and the real Prometheus server scraping every process.

One stack runs for the module: `arcflare local up` with OTEL_EXPORTER_OTLP_ENDPOINT set for
every process, a federation of two sites with real NVFlare, then one `arcflare job submit`
from the CLI, followed until the model is registered in MLflow.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from arcflare.client import Client
from arcflare.contracts.commands import RefreshFederationStatus
from arcflare.runtime.settings import Settings

from tests.e2e.stack import ARCFLARE, ROOT, running_under
from tests.support.flare_project import free_port
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.e2e, pytest.mark.nvflare, pytest.mark.slow, pytest.mark.timeout(720)]

FEDERATION = "observed"
SITES = ["site-1", "site-2"]
ROUNDS = 2
ALERTS = ROOT / "deploy" / "observability" / "alerts.yml"


@dataclass
class Stack:
    data: Path
    receiver: OtlpReceiver
    submitted: dict
    job_id: str


def cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run([ARCFLARE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=ROOT, check=False)
    assert done.returncode == 0, f"arcflare {' '.join(args)}:\n{done.stderr[-4000:]}"
    return done


def federation_spec(data: Path) -> Path:
    spec = data.parent / f"{FEDERATION}.yaml"
    spec.write_text(yaml.safe_dump({
        "name": FEDERATION, "server": {"host": "localhost"},
        "sites": [{"name": site, "org": f"org_{n}"} for n, site in enumerate(SITES)],
        "admins": [{"email": "admin@arcflare.local", "org": "consortium",
                    "role": "project_admin"}],
        "auto_deploy": True, "heart_beat_timeout_s": 30,
    }))
    return spec


def wait_connected(client: Client, timeout: float = 240) -> None:
    """Until the server sees every site (what `arcflare demo` waits for before training)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command_id = client.send(RefreshFederationStatus(federation=FEDERATION))
        try:
            outcome = client.wait(command_id, timeout=30)
        except TimeoutError:
            continue
        if {c["name"] for c in outcome.payload.get("clients", [])} >= set(SITES):
            return
        time.sleep(1)
    raise AssertionError(f"sites not connected within {timeout} s")


def nvflare_job(client: Client, command_id: str, timeout: float = 240) -> str:
    """NVFlare's id of the job a SubmitJob started (submitted once the clients are there)."""
    for env in client.follow(types=["JobSubmitted", "JobFailed", "CommandRejected"],
                             federation=FEDERATION, timeout=timeout, from_start=True):
        if env.causation_id == command_id or env.payload.get("command_id") == command_id:
            assert env.type == "JobSubmitted", env.payload
            return env.payload["job_id"]
    raise AssertionError(f"SubmitJob {command_id} not submitted within {timeout} s")


def model_registered(client: Client, job_id: str, timeout: float = 360) -> None:
    for env in client.follow(types=["ModelRegistered", "JobCompleted"], federation=FEDERATION,
                             timeout=timeout, from_start=True):
        if env.payload["job_id"] != job_id:
            continue
        if env.type == "JobCompleted":
            assert env.payload["status"] == "FINISHED:COMPLETED", env.payload
        else:
            return
    raise AssertionError(f"no model registered for job {job_id} within {timeout} s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("observed") / "data"
    receiver = OtlpReceiver()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    # every process the CLI starts inherits these: the services export to the receiver
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
    try:
        cli(env, "local", "up", "--data-dir", str(data), "--json")
        cli(env, "federation", "create", str(federation_spec(data)), "--wait", "--json",
            "--data-dir", str(data))
        with Client(Settings(data_dir=data)) as client:  # this test process does not trace
            wait_connected(client)
            # the one traced command: sent by the CLI, which prints its trace id
            submitted = json.loads(cli(
                env, "job", "submit", FEDERATION, "--recipe", "fedavg-logreg", "--param",
                f"rounds={ROUNDS}", "--min-clients", str(len(SITES)), "--json",
                "--data-dir", str(data)).stdout)
            job_id = nvflare_job(client, submitted["command_id"])
            model_registered(client, job_id)
        yield Stack(data, receiver, submitted, job_id)
    finally:
        subprocess.run([ARCFLARE, "local", "down", "--data-dir", str(data)], env=env,
                       capture_output=True, timeout=120, check=False)
        receiver.close()
    assert running_under(data) == [], "processes left after local down"


# --- traces ------------------------------------------------------------------------------------
def one(spans: list[ReceivedSpan], **wanted: object) -> ReceivedSpan:
    found = [s for s in spans if all(_field(s, k) == v for k, v in wanted.items())]
    assert len(found) == 1, (wanted, [(s.service, s.name, s.attributes.get(
        "arcflare.message.type")) for s in spans])
    return found[0]


def _field(span: ReceivedSpan, key: str) -> object:
    return getattr(span, key) if hasattr(span, key) else span.attributes.get(key)


def consumed(trace: list[ReceivedSpan], producer: ReceivedSpan, service: str,
             type_name: str) -> ReceivedSpan:
    """The consumer span of a service for a message `producer` published (a handler's span
    is its events' creation context): the producer's child, and linked to it."""
    span = one([s for s in trace if s.parent_span_id == producer.span_id], service=service,
               kind="CONSUMER", **{"arcflare.message.type": type_name})
    assert (producer.trace_id, producer.span_id) in span.links
    return span


def complete(trace_id: str):
    def done(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        return any(s.attributes.get("arcflare.message.type") == "ModelRegistered"
                   and s.service == "ledger" for s in mine) \
            and any(s.name == "arcflare job submit" for s in mine)
    return done


def test_one_submit_job_from_the_cli_is_one_trace_across_every_process(stack: Stack) -> None:
    trace_id = stack.submitted["trace_id"]
    assert trace_id and len(trace_id) == 32
    stack.receiver.wait_for(complete(trace_id), timeout=60)
    time.sleep(1.0)  # the last batches of the slower exporters
    trace = stack.receiver.trace(trace_id)

    # the CLI: the command's root span, and the send of SubmitJob under it
    root = one(trace, service="arcflare-cli", name="arcflare job submit")
    assert root.parent_span_id is None
    send = one(trace, service="arcflare-cli", name="send job-controller")
    assert send.parent_span_id == root.span_id and send.kind == "PRODUCER"
    assert send.attributes["messaging.message.id"] == stack.submitted["command_id"]

    # the job-controller: consumer span, child of the CLI's send and linked to it
    handled = consumed(trace, send, "job-controller", "SubmitJob")
    assert handled.attributes["messaging.destination.name"] == "job-controller"
    assert handled.attributes["arcflare.outcome"] == "handled"
    # the NVFlare submission, through the FLARE API, once the watcher saw the clients there
    submission = one(trace, service="job-controller", name="job submission")
    assert submission.parent_span_id == handled.span_id
    submit = one(trace, service="job-controller", name="flare_api submit_job")
    assert submit.parent_span_id == submission.span_id and submit.kind == "CLIENT"

    # the job events the watcher found later, still in the SubmitJob's trace
    finished = one(trace, service="job-controller", name="job finished")
    assert finished.parent_span_id == handled.span_id
    assert finished.attributes["arcflare.job.id"] == stack.job_id
    download = one(trace, service="job-controller", name="flare_api download_job")
    assert download.parent_span_id == finished.span_id
    changes = [s for s in trace if s.service == "metrics-relay"
               and s.attributes.get("arcflare.message.type") == "JobStatusChanged"]
    assert changes, "no JobStatusChanged handled in the trace"

    # metrics-relay: its run for the job, then the model registered when the job completed
    consumed(trace, submission, "metrics-relay", "JobSubmitted")
    relay = consumed(trace, finished, "metrics-relay", "JobCompleted")
    assert relay.attributes["messaging.destination.subscription.name"] == "metrics-relay"
    register = one(trace, service="metrics-relay", name="mlflow register_model")
    assert register.parent_span_id == relay.span_id and register.kind == "CLIENT"
    consumed(trace, relay, "ledger", "ModelRegistered")

    # and the ledger recorded the outcome within the same trace
    consumed(trace, handled, "ledger", "JobWaitingForClients")
    consumed(trace, submission, "ledger", "JobSubmitted")
    assert {"arcflare-cli", "job-controller", "metrics-relay", "ledger"} <= {
        s.service for s in trace}
    ids = [s.span_id for s in trace]
    assert len(ids) == len(set(ids))
    assert all(s.parent_span_id in ids for s in trace if s is not root), "a dangling parent"


def test_the_ledgers_audit_keeps_the_commands_trace_id(stack: Stack) -> None:
    port = int((stack.data / "run" / "ledger.port").read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/audit?federation={FEDERATION}",
                                timeout=10) as answer:
        trail = json.load(answer)
    (command,) = [c for c in trail if c["command_id"] == stack.submitted["command_id"]]
    assert command["trace_id"] == stack.submitted["trace_id"]
    assert command["command_type"] == "SubmitJob"


# --- Prometheus --------------------------------------------------------------------------------
def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    return body["data"]["result"]


def eventually(base: str, promql: str, check, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        result = query(base, promql)
        if check(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql} answered {result}")
        time.sleep(0.5)


@pytest.fixture
def prometheus(stack: Stack, tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """The real Prometheus server, scraping every process of the stack on loopback each second,
    with the shipped alert rules."""
    if shutil.which("prometheus") is None:
        pytest.skip("Prometheus is not installed: `make prometheus` (Debian's package)")
    targets = {p.stem: int(p.read_text()) for p in (stack.data / "run").glob("*.port")}
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                                   "labels": {"system": "arcflare"}}]}
            for name, port in sorted(targets.items())],
    }))
    port = free_port()
    server = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
                assert time.monotonic() < deadline, "Prometheus not ready within 30 s"
                time.sleep(0.2)
        yield base, targets
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_prometheus_scrapes_every_process_and_answers_for_messages_and_sites(prometheus):
    base, targets = prometheus
    assert {"ledger", "job-controller", "metrics-relay", "provisioner", "deployer",
            "alerter"} <= set(targets)

    up = eventually(base, 'up{system="arcflare"}', lambda r: len(r) == len(targets)
                    and all(s["value"][1] == "1" for s in r))
    assert {s["metric"]["job"] for s in up} == set(targets)
    handled = eventually(
        base, 'sum by (service) (arcflare_messages_handled_total{type="SubmitJob"})',
        lambda r: bool(r))
    assert [(s["metric"]["service"], float(s["value"][1])) for s in handled] == [
        ("job-controller", 1.0)]
    sites = eventually(base, f'arcflare_fleet_sites{{federation="{FEDERATION}"}} > 0',
                       lambda r: bool(r))
    assert {s["metric"]["health"]: float(s["value"][1]) for s in sites} == {
        "connected": float(len(SITES))}
    rounds = query(base, f'arcflare_fleet_rounds_completed_total{{federation="{FEDERATION}"}}')
    assert [float(s["value"][1]) for s in rounds] == [float(ROUNDS)]


def test_prometheus_evaluates_the_shipped_alert_rules_against_the_stack(prometheus):
    base, _ = prometheus
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as answer:
            groups = json.load(answer)["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    assert len(rules) == 8 and all(r["health"] == "ok" for r in rules), rules
    # a healthy stack: nothing firing that says a service or a site is down
    firing = {r["name"] for r in rules if r["state"] == "firing"}
    assert not firing & {"ArcFlareServiceDown", "ArcFlareServiceNotReady", "ArcFlareSiteDown"}
