"""Chaos: a demo-sized run while every service is SIGKILLed once at a random moment.

The supervisor restarts each; the run must still end with exactly one NVFlare job,
one registered model version with every round's metrics, every command answered by
an outcome event, and no dead-lettered message. The seed is logged (and can be fixed
with ARCFLARE_CHAOS_SEED) so a failing schedule can be replayed.
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
from pathlib import Path

import psutil
import pytest
from arcflare.bus.port import SubQueue
from arcflare.cli.local import start_stack
from arcflare.client import Client
from arcflare.contracts.outcomes import outcome_types
from arcflare.contracts.topology import TOPOLOGY, site_subscription_name
from arcflare.localstack.demo import ADMIN, HOSPITALS, DemoRun
from arcflare.localstack.supervisor import SERVICES
from arcflare.runtime.settings import Settings

from tests.e2e.stack import admin_kit, local_down, running_under, stack_pids

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]
log = logging.getLogger("chaos")

SITES = 3
ROUNDS = 3
#: kills fall in the first KILL_WINDOW_S of the run: provisioning, deployment and training
KILL_WINDOW_S = 30.0
COMMAND_QUEUES = {q.name for q in TOPOLOGY.queues} | {"site-commands"}


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


def test_every_service_killed_once_and_the_run_still_completes(tmp_path: Path) -> None:
    seed = int(os.environ.get("ARCFLARE_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    rng = random.Random(seed)
    agent = f"site-agent-hospitals-{SITES}-{rng.choice(HOSPITALS[:SITES])[0]}"
    victims = [spec.name for spec in SERVICES] + [agent]
    schedule = [(round(rng.uniform(0, KILL_WINDOW_S), 1), name) for name in victims]
    log.warning("chaos seed %s (replay with ARCFLARE_CHAOS_SEED=%s): %s", seed, seed, schedule)
    print(f"chaos seed {seed}: {sorted(schedule)}")

    demo = DemoRun(tmp_path, sites=SITES, rounds=ROUNDS, progress=log.info)
    sent: dict[str, str] = {}
    killer = Killer(tmp_path, schedule)
    try:
        start_stack(tmp_path)
        with Client(Settings(data_dir=tmp_path), issued_by=ADMIN) as client:
            original_send = client.send

            def recording_send(command, **kw):
                command_id = original_send(command, **kw)
                sent[command_id] = type(command).__name__
                return command_id

            client.send = recording_send
            killer.start()
            summary = demo.run(client)
            killer.join(timeout=KILL_WINDOW_S + 60)
            assert sorted(n for _, n, _ in killer.killed) == sorted(victims), killer.killed

            # everything the run sent is answered, late answers included
            deadline = time.monotonic() + 90
            while (missing := unanswered(client, commands_sent(tmp_path, sent))) and \
                    time.monotonic() < deadline:
                time.sleep(1)
            assert missing == {}, f"commands without an outcome (seed {seed}): {missing}"
            kinds = set(commands_sent(tmp_path, sent).values())
            assert kinds >= {"CreateFederation", "DeployServer", "DeploySite", "SubmitJob",
                             "RefreshFederationStatus"}, kinds
            assert dead_letters(client, demo.federation) == [], f"seed {seed}"

        restarted = json.loads((tmp_path / "run" / "stack.json").read_text())["processes"]
        for row in restarted:
            if row["name"] in victims:
                assert row["restarts"] >= 1, row

        print(f"killed (offset s, process, pid): {killer.killed}; timings {summary['timings']}")
        _assert_one_completed_flare_job(tmp_path, demo.federation, summary["job_id"])
        _assert_one_model_version_with_every_round(tmp_path, summary)
    finally:
        killer.stop.set()
        local_down(tmp_path)
    assert running_under(tmp_path) == []


def _assert_one_completed_flare_job(data_dir: Path, federation: str, job_id: str) -> None:
    from nvflare.fuel.flare_api.flare_api import new_secure_session

    session = new_secure_session(ADMIN, str(admin_kit(data_dir, federation, ADMIN)), timeout=30)
    try:
        jobs = [(j["job_id"], j["status"]) for j in session.list_jobs()]
    finally:
        session.close()
    assert jobs == [(job_id, "FINISHED:COMPLETED")]


def _assert_one_model_version_with_every_round(data_dir: Path, summary: dict) -> None:
    from mlflow import MlflowClient

    mlflow = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}")
    versions = mlflow.search_model_versions(f"name = '{summary['mlflow']['model_name']}'")
    assert [v.tags["job_id"] for v in versions] == [summary["job_id"]]
    experiment = mlflow.get_experiment_by_name(summary["federation"])
    children = [r for r in mlflow.search_runs([experiment.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == versions[0].run_id]
    assert len(children) == SITES
    for child in children:
        steps = sorted(m.step for m in mlflow.get_metric_history(child.info.run_id, "accuracy"))
        assert steps == list(range(ROUNDS)), child.data.tags["site"]
