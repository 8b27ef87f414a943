"""`arcflare status | audit | alerts | logs --json` against a running ledger fed through the bus."""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.bus import connect
from arcflare.bus.codec import from_received
from arcflare.cli import status as status_command
from arcflare.cli.main import app
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.topology import site_subscription
from arcflare.ledger.settings import LedgerSettings
from typer.testing import CliRunner

from tests.support.signing import send_as_authors
from tests.support.snapshots import recording_console

from .ledger_service import publish, serving

FED = "hospitals"
runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, events: list[Envelope]) -> Iterator[Path]:
    settings = LedgerSettings(data_dir=tmp_path / "data")
    publish(settings, events)
    with serving(settings):
        yield settings.data_dir


def arcflare(*args: str):
    return runner.invoke(app, list(args), env={"ARCFLARE_LEDGER_URL": ""})


def test_status_json_shows_the_sites_of_a_federation(data_dir: Path) -> None:
    result = arcflare("status", FED, "--json", "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    sites = {s["site"]: s for s in answer["sites"]}
    assert sites["north-1"]["health"] == "connected"
    assert sites["north-1"]["server_view"] == "registered"
    assert sites["north-1"]["last_heartbeat"] == "2026-11-29T08:00:45.000000Z"
    assert sites["south-1"]["lifecycle"] == "deploy_failed"


def test_status_json_without_a_name_lists_every_federation(data_dir: Path) -> None:
    result = arcflare("status", "--json", "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    assert [f["name"] for f in json.loads(result.stdout)] == [FED]


def printed(monkeypatch, width: int, *args: str) -> tuple[str, str]:
    """What `arcflare ARGS` prints on a terminal `width` columns wide: the text, and the
    text with its colours as ANSI codes."""
    terminal = recording_console(width)
    monkeypatch.setattr(status_command, "out", terminal)
    result = arcflare(*args)
    assert result.exit_code == 0, result.output
    return terminal.export_text(clear=False), terminal.export_text(styles=True)


def test_status_is_one_line_per_participant_at_100_columns(data_dir: Path, monkeypatch) -> None:
    text, coloured = printed(monkeypatch, 100, "status", FED, "--data-dir", str(data_dir))

    rows = {line.split()[0]: line for line in text.splitlines()[2:5]}
    assert set(rows) == {"server", "north-1", "south-1"}
    assert "\x1b[32mconnected" in coloured  # health, in green
    assert "registered" in rows["north-1"] and "deploy_failed" in rows["south-1"]
    assert re.search(r" ago +\d+ (s|min|h|d) ago +\d+ d$", rows["north-1"])  # ages, cert
    assert "Registered with" not in text  # the sentence is for --wide


def test_status_wide_adds_each_diagnosis_in_a_sentence(data_dir: Path, monkeypatch) -> None:
    text, _ = printed(monkeypatch, 100, "status", FED, "--wide", "--data-dir", str(data_dir))
    text = " ".join(text.split())  # a sentence may wrap

    assert "Registered with the NVFlare server at localhost:8102 as north-1" in text
    assert "The deployer could not start the site's client: no python3" in text


def test_audit_json_lists_command_outcomes(data_dir: Path) -> None:
    result = arcflare("audit", FED, "--json", "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {(r["command_id"], r["outcome"]) for r in rows} >= {
        ("cmd-create", "succeeded"), ("cmd-stop", "rejected"), ("cmd-deploy-south", "failed")}


def test_alerts_json_lists_alerts(data_dir: Path) -> None:
    result = arcflare("alerts", "--json", "--data-dir", str(data_dir))

    assert result.exit_code == 0, result.output
    assert [a["rule"] for a in json.loads(result.stdout)] == ["deployment-failed"]


def test_an_unknown_federation_exits_1_with_the_reason(data_dir: Path) -> None:
    result = arcflare("status", "nowhere", "--json", "--data-dir", str(data_dir))

    assert result.exit_code == 1
    assert "no such federation nowhere" in result.stderr


def test_no_running_ledger_exits_1(tmp_path: Path) -> None:
    result = arcflare("audit", "--json", "--data-dir", str(tmp_path))

    assert result.exit_code == 1
    assert "the ledger is not running" in result.stderr


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert arcflare("audit", "--limit", "0", "--data-dir", str(tmp_path)).exit_code == 2
    assert arcflare("logs", FED, "--data-dir", str(tmp_path)).exit_code == 2


def answer_tail_requests(data_dir: Path, site: str, stop: threading.Event) -> None:
    """Stands in for the site agent: answers TailSiteLogs with one SiteLogTail."""
    settings = LedgerSettings(data_dir=data_dir)
    with connect(settings) as bus:
        subscription = site_subscription(FED, site)
        bus.ensure_subscription("site-commands", subscription.name, subscription.rules[0])
        while not stop.is_set():
            for received in bus.receive("site-commands", subscription.name, max_wait=0.2):
                request = from_received(received)
                tail = e.SiteLogTail(federation=FED, site=site, file="log.txt",
                                     lines=["Successfully registered client:north-1"],
                                     redacted_count=1, request_id=request.message_id)
                answer = Envelope.wrap(tail, causation_id=request.message_id,
                                       correlation_id=request.correlation_id)
                send_as_authors(bus, data_dir, [answer])
                bus.complete(received)


def test_logs_prints_the_tail_the_agent_answers_with(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = LedgerSettings(data_dir=data_dir)
    with connect(settings) as bus:  # the agent's subscription exists before the request
        subscription = site_subscription(FED, "north-1")
        bus.ensure_subscription("site-commands", subscription.name, subscription.rules[0])
    stop = threading.Event()
    agent = threading.Thread(target=answer_tail_requests, args=(data_dir, "north-1", stop))
    agent.start()
    try:
        result = arcflare("logs", FED, "north-1", "--lines", "5", "--json", "--timeout", "30",
                          "--data-dir", str(data_dir))
    finally:
        stop.set()
        agent.join(timeout=10)

    assert result.exit_code == 0, result.output
    tail = json.loads(result.stdout)
    assert tail["lines"] == ["Successfully registered client:north-1"]
    assert tail["redacted_count"] == 1


def test_logs_with_an_invalid_site_name_exits_2_naming_the_field(tmp_path: Path) -> None:
    result = arcflare("logs", FED, "bad site!", "--data-dir", str(tmp_path))

    assert result.exit_code == 2
    assert "site: String should match pattern" in result.stderr
