"""deploy/servicebus/Config.json is the emulator rendering of TOPOLOGY, within its limits."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from arcflare.bus.emulator import iso_duration, render_emulator_config
from arcflare.cli.main import app
from arcflare.contracts.topology import TOPOLOGY, EntityOptions, Queue, Topology
from typer.testing import CliRunner

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "servicebus" / "Config.json"


def seconds(iso: str) -> int:
    h, m, s = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", iso).groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + int(s or 0)


def test_the_checked_in_config_is_the_rendering_of_the_topology():
    assert json.loads(CONFIG.read_text()) == render_emulator_config(TOPOLOGY), (
        "regenerate it: arcflare bus topology --format emulator > deploy/servicebus/Config.json")


def test_the_cli_prints_exactly_the_checked_in_file():
    result = CliRunner().invoke(app, ["bus", "topology", "--format", "emulator"])

    assert result.exit_code == 0
    assert result.stdout == CONFIG.read_text()


def test_every_entity_is_within_the_emulator_limits():
    namespace = render_emulator_config(TOPOLOGY)["UserConfig"]["Namespaces"][0]
    receiving = [q["Properties"] for q in namespace["Queues"]] + [
        s["Properties"] for t in namespace["Topics"] for s in t["Subscriptions"]]
    entities = len(namespace["Queues"]) + sum(1 + len(t["Subscriptions"])
                                              for t in namespace["Topics"])

    assert namespace["Name"] == "sbemulatorns"
    assert entities <= 50
    for props in receiving:
        assert 300 <= seconds(props["DefaultMessageTimeToLive"]) <= 3600
        assert seconds(props["LockDuration"]) <= 300
        assert 1 <= props["MaxDeliveryCount"] <= 10


def test_values_outside_the_limits_are_clamped():
    wild = EntityOptions(lock_duration=timedelta(minutes=30), max_delivery_count=50,
                         default_ttl=timedelta(days=14),
                         duplicate_detection_window=timedelta(hours=2))
    config = render_emulator_config(Topology(queues=(Queue("q", wild),), topics=()))

    props = config["UserConfig"]["Namespaces"][0]["Queues"][0]["Properties"]
    assert (props["LockDuration"], props["MaxDeliveryCount"], props["DefaultMessageTimeToLive"],
            props["DuplicateDetectionHistoryTimeWindow"]) == ("PT5M", 10, "PT1H", "PT5M")


def test_filters_are_sql_filters_that_admit_resubmitted_copies_only_for_their_own():
    namespace = render_emulator_config(TOPOLOGY)["UserConfig"]["Namespaces"][0]
    events = next(t for t in namespace["Topics"] if t["Name"] == "events")
    rules = {s["Name"]: s["Rules"] for s in events["Subscriptions"]}

    assert {"Name": "SiteRemoved", "Properties": {"FilterType": "Sql", "SqlFilter": {
        "SqlExpression": "sys.Label = 'SiteRemoved' AND (user.resubmitted_to IS NULL OR "
                         "user.resubmitted_to = 'deployer')"}}} in rules["deployer"]
    # a subscription without rules gets one that matches everything but others' copies
    assert rules["ledger"] == [{"Name": "all", "Properties": {"FilterType": "Sql", "SqlFilter": {
        "SqlExpression": "(user.resubmitted_to IS NULL OR user.resubmitted_to = 'ledger')"}}}]


def test_iso_durations():
    assert [iso_duration(timedelta(seconds=s)) for s in (0, 30, 60, 90, 3600, 3661)] == [
        "PT0S", "PT30S", "PT1M", "PT1M30S", "PT1H", "PT1H1M1S"]
