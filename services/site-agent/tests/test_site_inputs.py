"""The agent's view of the site's data inputs: present, readable, a size class; and how a
vanished input turns the site's health to degraded."""
from __future__ import annotations

import json
from pathlib import Path

from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.flare.site_inputs import write_inputs
from arcflare.site_agent.bootstrap import bootstrap
from arcflare.site_agent.health import HealthModel
from arcflare.site_agent.inputs import GB, MB, InputState, SiteInputs, size_class
from arcflare.site_agent.observer import Observation

REGISTERED = ("2026-11-29 08:13:06,168 - FederatedClient - INFO - Successfully registered "
              "client:site-1 for project fedx.")


def sparse(path: Path, size: int) -> None:
    """A file of this size that takes no disk (its length is all a size class looks at)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


def test_size_classes_from_empty_to_a_gigabyte(tmp_path: Path):
    folders = {name: tmp_path / name for name in ("empty", "small", "medium", "large")}
    for folder in folders.values():
        folder.mkdir()
    (folders["empty"] / "nothing.csv").touch()
    sparse(folders["small"] / "a.csv", 10_000)
    sparse(folders["medium"] / "deep" / "er" / "b.csv", 2 * MB)
    sparse(folders["large"] / "c.bin", GB - 1)
    sparse(folders["large"] / "sub" / "d.bin", 1)

    assert {n: size_class(f) for n, f in folders.items()} == {
        "empty": "empty", "small": "<1MB", "medium": "<1GB", "large": ">=1GB"}


def test_inputs_named_in_settings_come_first_else_those_the_deployer_bound(tmp_path: Path):
    workspace, records = tmp_path / "workspace", tmp_path / "records"
    workspace.mkdir()
    records.mkdir()
    write_inputs(workspace, {"records": str(records), "gone": str(tmp_path / "gone")})

    from_marker = SiteInputs({}, workspace).check()
    from_settings = SiteInputs({"imaging": records}, workspace).check()
    nothing = SiteInputs({}, tmp_path / "not-deployed").check()

    assert from_marker == [InputState("gone", False, False, None),
                           InputState("records", True, True, "empty")]
    assert from_settings == [InputState("imaging", True, True, "empty")]
    assert nothing == []


def test_the_size_is_measured_again_only_after_its_interval(tmp_path: Path):
    now = [0.0]
    records = tmp_path / "records"
    records.mkdir()
    inputs = SiteInputs({"records": records}, size_every_s=600, clock=lambda: now[0])

    first = inputs.check()[0].size
    sparse(records / "big.csv", 5 * MB)
    cached = inputs.check()[0].size
    now[0] = 601.0
    measured = inputs.check()[0].size

    assert (first, cached, measured) == ("empty", "empty", "<1GB")


def running(*lines: str) -> Observation:
    return Observation("running", identity="100@1.0", pid=100, started_at=0.0,
                       new_log_lines=list(lines), server_address="fl.example.org:8002")


def test_a_connected_client_whose_input_vanished_is_degraded_naming_the_input():
    model = HealthModel(registration_grace_s=60, clock=lambda: 10.0)
    model.update(running(REGISTERED))

    degraded = model.update(running(), [InputState("records", False, False)])[-1]
    unreadable = model.update(running(), [InputState("records", True, False)])[-1]
    back = model.update(running(), [InputState("records", True, True, "<1MB")])[-1]

    assert degraded.status == "degraded"
    assert degraded.diagnosis.startswith("Data input records is missing: this site's jobs "
                                         "cannot read it.")
    assert "Registered with the NVFlare server" in degraded.diagnosis
    assert unreadable.status == "degraded" and "records is not readable" in unreadable.diagnosis
    assert (degraded.code, unreadable.code) == ("data_missing", "data_unreadable")
    assert (back.status, back.code) == ("connected", "registered")


def test_a_worse_problem_keeps_its_status_and_mentions_the_data_too():
    model = HealthModel(registration_grace_s=0, clock=lambda: 500.0)

    health = model.update(running(), [InputState("records", False, False)])[-1]

    assert (health.status, health.code) == ("disconnected", "never_registered")
    assert health.diagnosis.endswith("Also: data input records is missing.")


def test_heartbeats_carry_presence_and_size_and_nothing_else(agent_settings, tmp_path):
    records = tmp_path / "records"
    sparse(records / "admissions-2024.csv", 2 * MB)
    svc = bootstrap(agent_settings(inputs={"records": str(records)}))
    try:
        svc.background[0].tick()
        svc.drain()
        [beat] = [m for m in svc.bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=10)
                  if m.subject == "SiteHeartbeat"]
    finally:
        svc.stop(timeout=5)
        svc.bus.close()

    body = json.loads(beat.body)
    assert body["inputs"] == [{"name": "records", "present": True, "readable": True,
                               "size": "<1GB"}]
    assert "admissions" not in beat.body.decode() and str(records) not in beat.body.decode()
