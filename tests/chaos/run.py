"""One chaos run: a demo-sized federation while every service (and one site agent) is
SIGKILLed once, at a moment drawn from a seed. The supervisor restarts each.

It survives when the run still ends with exactly one NVFlare job, one registered model
version with every round's metrics, every command answered by an outcome event, no
dead-lettered message, every victim restarted and nothing left running after the stack is
stopped. MLflow and the dead letters are judged once the metrics-relay has caught up: a
relay killed while it held a batch gives it back only when the batch's lock expires, which
can be after the model is registered (metrics and job events travel on different topics, in
no set order). What broke is returned, not asserted, so a test can fail on it and a
benchmark can count survivals over several seeds (`make bench BENCH=chaos`).

Everything random derives from the seed: which agent dies and when each victim dies.
ARCFLARE_CHAOS_SEED fixes it, so a failed schedule replays.
"""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from arcflare.bus.port import Bus, SubQueue
from arcflare.cli.local import start_stack
from arcflare.client import Client
from arcflare.contracts.outcomes import outcome_types
from arcflare.contracts.topology import TOPOLOGY, site_subscription_name
from arcflare.localstack.demo import ADMIN, HOSPITALS, DemoRun
from arcflare.localstack.supervisor import SERVICES
from arcflare.runtime.settings import Settings

from tests.e2e.stack import admin_kit, local_down, running_under, stack_pids

log = logging.getLogger("chaos")

SEED_VARIABLE = "ARCFLARE_CHAOS_SEED"
SITES = 3
ROUNDS = 3
#: kills fall in the first KILL_WINDOW_S of the run: provisioning, deployment and training
KILL_WINDOW_S = 30.0
#: how long late outcomes are waited for once the demo is done
ANSWER_GRACE_S = 90.0
COMMAND_QUEUES = {q.name for q in TOPOLOGY.queues} | {"site-commands"}
#: what the metrics-relay consumes: (topic, subscription, its lock duration in s)
RELAY_SUBSCRIPTIONS = [(t.name, s.name, s.options.lock_duration.total_seconds())
                       for t in TOPOLOGY.topics for s in t.subscriptions
                       if s.name == "metrics-relay"]
#: beyond the longest lock: the relay's restart and a handler's retries
RELAY_CATCH_UP_GRACE_S = 60.0
EXPECTED_COMMANDS = {"CreateFederation", "DeployServer", "DeploySite", "SubmitJob",
                     "RefreshFederationStatus"}


def chosen_seed() -> int:
    """ARCFLARE_CHAOS_SEED, or a fresh one (printed by whoever runs it, to replay)."""
    value = os.environ.get(SEED_VARIABLE)
    return int(value) if value else random.SystemRandom().randrange(10**6)


def kill_schedule(seed: int) -> list[tuple[float, str]]:
    """(offset s, process name) for every service and one site agent, drawn from the seed."""
    rng = random.Random(seed)
    agent = f"site-agent-hospitals-{SITES}-{rng.choice(HOSPITALS[:SITES])[0]}"
    victims = [spec.name for spec in SERVICES] + [agent]
    return sorted((round(rng.uniform(0, KILL_WINDOW_S), 1), name) for name in victims)


@dataclass
class Survival:
    """What one seed's run came to."""

    seed: int
    schedule: list[tuple[float, str]]
    killed: list[tuple[float, str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def survived(self) -> bool:
        return not self.problems

    def report(self) -> str:
        head = (f"chaos seed {self.seed} (replay with {SEED_VARIABLE}={self.seed}): "
                f"{'survived' if self.survived else 'BROKE'}; schedule {self.schedule}; "
                f"killed (offset s, process, pid) {self.killed}")
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class Killer(threading.Thread):
    """SIGKILLs each named process once, at its scheduled offset from start()."""

    def __init__(self, data_dir: Path, schedule: list[tuple[float, str]]) -> None:
        super().__init__(daemon=True, name="chaos-killer")
        self.data_dir = data_dir
        self.schedule = sorted(schedule)
        self.killed: list[tuple[float, str, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        for at, name in self.schedule:
            while not self.stop.is_set():
                if time.monotonic() - started >= at and self._kill(name, started):
                    break
                self.stop.wait(0.1)

    def _kill(self, name: str, started: float) -> bool:
        pid = stack_pids(self.data_dir).get(name)
        if not pid or not psutil.pid_exists(pid):
            return False  # not started yet (a site agent) or being restarted: try again
        os.kill(pid, signal.SIGKILL)
        offset = round(time.monotonic() - started, 1)
        self.killed.append((offset, name, pid))
        log.warning("SIGKILL %s (pid %s) at %.1f s", name, pid, offset)
        return True


def run_chaos(data_dir: Path, seed: int) -> Survival:
    """Runs the demo under the seed's kill schedule in a fresh data dir; stops the stack."""
    survival = Survival(seed, kill_schedule(seed))
    log.warning("chaos seed %s (replay with %s=%s): schedule %s", seed, SEED_VARIABLE, seed,
                survival.schedule)
    demo = DemoRun(data_dir, sites=SITES, rounds=ROUNDS, progress=log.info)
    killer = Killer(data_dir, survival.schedule)
    summary = None
    try:
        start_stack(data_dir)
        with Client(Settings(data_dir=data_dir), issued_by=ADMIN) as client:
            sent = _recording(client)
            killer.start()
            try:
                summary = demo.run(client)
                survival.timings = summary.get("timings", {})
            except Exception as exc:  # noqa: BLE001 - what broke is the finding
                survival.problems.append(f"the demo did not finish: {type(exc).__name__}: {exc}")
            killer.join(timeout=KILL_WINDOW_S + 60)
            survival.killed = list(killer.killed)
            survival.problems += _after_the_run(client, data_dir, demo, sent, survival)
        if summary is not None:
            survival.problems += _restarted(data_dir, survival.schedule)
            survival.problems += _one_completed_flare_job(data_dir, demo.federation,
                                                          summary["job_id"])
            survival.problems += _one_model_version_with_every_round(data_dir, summary)
    except Exception as exc:  # noqa: BLE001 - a stack that would not start broke too
        survival.problems.append(f"the run failed: {type(exc).__name__}: {exc}")
    finally:
        killer.stop.set()
        local_down(data_dir)
    if left := running_under(data_dir):
        survival.problems.append(f"still running after the stack stopped: {left}")
    return survival


def _recording(client: Client) -> dict[str, str]:
    """Every command the client sends from now on: id -> type."""
    sent: dict[str, str] = {}
    original_send = client.send

    def recording_send(command, **kw):
        command_id = original_send(command, **kw)
        sent[command_id] = type(command).__name__
        return command_id

    client.send = recording_send  # type: ignore[method-assign]
    return sent


def _after_the_run(client: Client, data_dir: Path, demo: DemoRun, sent: dict[str, str],
                   survival: Survival) -> list[str]:
    problems = []
    victims = sorted(name for _, name in survival.schedule)
    if sorted(name for _, name, _ in survival.killed) != victims:
        problems.append(f"not every victim was killed: {survival.killed}, wanted {victims}")
    # everything the run sent is answered, late answers included
    deadline = time.monotonic() + ANSWER_GRACE_S
    while (missing := unanswered(client, commands_sent(data_dir, sent))) and \
            time.monotonic() < deadline:
        time.sleep(1)
    if missing:
        problems.append(f"commands without an outcome: {missing}")
    # before dead letters and MLflow are judged: whatever the relay still holds may yet
    # end in either
    problems += relay_caught_up(client.bus)
    kinds = set(commands_sent(data_dir, sent).values())
    if not kinds >= EXPECTED_COMMANDS:
        problems.append(f"commands never sent: {sorted(EXPECTED_COMMANDS - kinds)}")
    if letters := dead_letters(client, demo.federation):
        problems.append(f"dead letters: {letters}")
    return problems


def commands_sent(data_dir: Path, by_demo: dict[str, str]) -> dict[str, str]:
    """Every command of the run: the demo's own, and those the services sent (found in each
    service's transactional outbox, which keeps sent rows)."""
    commands = dict(by_demo)
    for db_file in data_dir.glob("*.db"):
        if db_file.name in ("bus.db", "mlflow.db"):
            continue
        with sqlite3.connect(db_file) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = '_outbox'").fetchone():
                continue
            for entity, envelope in db.execute("SELECT entity, envelope FROM _outbox"):
                if entity in COMMAND_QUEUES:
                    env = json.loads(envelope)
                    commands[env["message_id"]] = env["type"]
    return commands


def unanswered(client: Client, commands: dict[str, str]) -> dict[str, str]:
    answered = set()
    for env in client.follow(topics=("events", "telemetry"), from_start=True, until_idle=True):
        kind = commands.get(env.causation_id or "")
        if kind and env.type in outcome_types(kind):
            answered.add(env.causation_id)
    return {cid: kind for cid, kind in commands.items() if cid not in answered}


def relay_backlog(bus: Bus) -> dict[str, int]:
    """Messages still waiting for the metrics-relay, per subscription: peek sees those
    locked by a consumer too, so a batch a killed relay held counts until it is settled."""
    backlog = {}
    for topic, subscription, _ in RELAY_SUBSCRIPTIONS:
        if waiting := bus.peek(topic, subscription, max_messages=256):
            backlog[f"{topic}/{subscription}"] = len(waiting)
    return backlog


def relay_caught_up(bus: Bus, timeout: float | None = None) -> list[str]:
    """Waits until the metrics-relay has settled everything sent to it; by default for its
    longest lock plus a grace, since a batch held by a killed relay only comes back once its
    lock expires. A backlog still there then is a problem: the relay is stuck."""
    if timeout is None:
        timeout = max(lock for *_, lock in RELAY_SUBSCRIPTIONS) + RELAY_CATCH_UP_GRACE_S
    started = time.monotonic()
    if first := relay_backlog(bus):
        log.warning("waiting for the metrics-relay to settle %s", first)
    while (backlog := relay_backlog(bus)) and time.monotonic() < started + timeout:
        time.sleep(0.5)
    if first:
        log.warning("the metrics-relay left %s after %.1f s", backlog or "nothing",
                    time.monotonic() - started)
    if backlog:
        return [(f"the metrics-relay had not settled its messages {timeout:.0f} s after "
                 f"the run: {backlog}")]
    return []


def dead_letters(client: Client, federation: str) -> list[str]:
    entities = [(q.name, None) for q in TOPOLOGY.queues]
    entities += [(t.name, s.name) for t in TOPOLOGY.topics for s in t.subscriptions]
    entities += [("site-commands", site_subscription_name(federation, site))
                 for site, _ in HOSPITALS[:SITES]]
    found = []
    for entity, subscription in entities:
        for msg in client.bus.peek(entity, subscription, max_messages=256,
                                   sub_queue=SubQueue.DEAD_LETTER):
            found.append(f"{entity}/{subscription}: {msg.subject} {msg.message_id} "
                         f"{msg.dead_letter_reason}: {msg.dead_letter_error_description}")
    return found


#: the supervisor restarts a process that died for the first time after 0.5 s (its tick is
#: 0.25 s); a kill late in the window can come moments before the run's checks
RESTART_GRACE_S = 15.0


def _restarted(data_dir: Path, schedule: list[tuple[float, str]]) -> list[str]:
    """Every killed process running again under the supervisor, waiting a little for one
    killed at the end of the window: seed 937880 killed the provisioner 27.4 s in, when
    the demo (faster since its processes start from bytecode) had all but ended, and the
    supervisor had not yet seen it die when stack.json was read (a replay survived)."""
    victims = {name for _, name in schedule}
    deadline = time.monotonic() + RESTART_GRACE_S
    while True:
        rows = json.loads((data_dir / "run" / "stack.json").read_text())["processes"]
        down = [row["name"] for row in rows
                if row["name"] in victims and (row["restarts"] < 1 or not row["alive"])]
        if not down or time.monotonic() > deadline:
            return [f"{name} was killed but never restarted (waited {RESTART_GRACE_S:.0f} s)"
                    for name in down]
        time.sleep(0.25)


def _one_completed_flare_job(data_dir: Path, federation: str, job_id: str) -> list[str]:
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    session = new_secure_session(ADMIN, str(admin_kit(data_dir, federation, ADMIN)), timeout=30)
    try:
        jobs = [(j["job_id"], j["status"]) for j in session.list_jobs()]
    finally:
        session.close()
    if jobs != [(job_id, "FINISHED:COMPLETED")]:
        return [f"NVFlare jobs {jobs}, wanted only {job_id} FINISHED:COMPLETED"]
    return []


def _one_model_version_with_every_round(data_dir: Path, summary: dict) -> list[str]:
    from mlflow import MlflowClient

    mlflow = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    versions = mlflow.search_model_versions(f"name = '{summary['mlflow']['model_name']}'")
    jobs = [v.tags.get("job_id") for v in versions]
    if jobs != [summary["job_id"]]:
        return [f"model versions for jobs {jobs}, wanted one for {summary['job_id']}"]
    experiment = mlflow.get_experiment_by_name(summary["federation"])
    children = [r for r in mlflow.search_runs([experiment.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == versions[0].run_id]
    problems = []
    if len(children) != SITES:
        problems.append(f"{len(children)} site runs under the model's run, wanted {SITES}")
    for child in children:
        steps = sorted(m.step for m in mlflow.get_metric_history(child.info.run_id, "accuracy"))
        if steps != list(range(ROUNDS)):
            problems.append(f"site {child.data.tags.get('site')} has accuracy steps {steps}, "
                            f"wanted {list(range(ROUNDS))}")
    return problems
