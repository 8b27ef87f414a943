"""`arcflare bus ...`, `events` and `schema export` as an operator uses them."""
from __future__ import annotations

import json

from arcflare.bus.port import OutgoingMessage
from arcflare.cli.main import app
from arcflare.client import Client
from arcflare.contracts.commands import AddSite
from arcflare.runtime import Consumer, Service, StateStore
from typer.testing import CliRunner

runner = CliRunner()


def cli(data_dir, *args, input=None):
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)] if data_dir else list(args),
                           input=input)
    return result


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def provisioner(settings, bus):
    return Service(name="provisioner", settings=settings, bus=bus,
                   state=StateStore(settings.data_dir / "provisioner.db"),
                   consumers=[Consumer("provisioner", handlers={AddSite: lambda c, **_: None})])


def test_topology_json_lists_every_entity():
    result = runner.invoke(app, ["bus", "topology", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [q["name"] for q in doc["queues"]] == ["provisioner", "deployer", "job-controller"]
    assert {t["name"] for t in doc["topics"]} == {"events", "telemetry", "site-commands"}
    assert all(q["options"]["requires_session"] for q in doc["queues"])


def test_unknown_topology_format_is_a_usage_error():
    result = runner.invoke(app, ["bus", "topology", "--format", "xml"])
    assert result.exit_code == 2
    assert "use json or emulator" in result.output


def test_garbage_sent_raw_ends_in_the_dlq_with_a_reason_and_can_be_resubmitted(settings, bus):
    data = settings.data_dir
    sent = cli(data, "bus", "send-raw", "provisioner", "--body", "-", "--subject", "AddSite",
               "--session", "fed", "--property", "type=AddSite", "--json", input="{not json")
    assert sent.exit_code == 0, sent.output
    message_id = json.loads(sent.stdout)["message_id"]
    peeked = json_lines(cli(data, "bus", "peek", "provisioner", "--json").stdout)[0]
    assert peeked[0]["message_id"] == message_id and peeked[0]["body"] == "{not json"

    provisioner(settings, bus).drain()

    dead = json_lines(cli(data, "bus", "dlq", "list", "provisioner", "--json").stdout)[0]
    # send-raw signs nothing: the consumer refuses it before even parsing the body
    assert [(d["message_id"], d["reason"]) for d in dead] == [(message_id, "Unauthenticated")]
    assert {"subject", "description", "delivery_count", "enqueued_at"} <= set(dead[0])
    stats = {s["entity_path"]: s for s in
             json_lines(cli(data, "bus", "stats", "--json").stdout)[0]}
    assert stats["provisioner"]["dead_lettered"] == 1

    resubmitted = cli(data, "bus", "dlq", "resubmit", "provisioner", message_id)
    assert resubmitted.exit_code == 0, resubmitted.output
    stats = {s["entity_path"]: s for s in
             json_lines(cli(data, "bus", "stats", "--json").stdout)[0]}
    assert (stats["provisioner"]["active"], stats["provisioner"]["dead_lettered"]) == (1, 0)


def test_send_raw_refuses_an_over_long_message_id_with_a_clear_error(settings, bus):
    result = cli(settings.data_dir, "bus", "send-raw", "provisioner", "--body", "-",
                 "--session", "fed", "--message-id", "x" * 129, input="{}")
    assert result.exit_code == 1
    assert "128" in result.output


def test_send_raw_without_a_session_to_a_session_queue_is_refused(settings, bus):
    result = cli(settings.data_dir, "bus", "send-raw", "provisioner", "--body", "-", input="{}")
    assert result.exit_code == 1
    assert "session" in result.output.lower()


def test_events_json_prints_one_line_per_event_with_the_envelope(settings, bus):
    client = Client(settings, bus=bus)
    command_id = client.send(AddSite(federation="fed", site="a", org="o"))
    # a command type this consumer does not handle is rejected: one CommandRejected event
    svc = Service(name="provisioner", settings=settings, bus=bus,
                  state=StateStore(settings.data_dir / "p.db"),
                  consumers=[Consumer("provisioner", handlers={})])
    svc.drain()
    result = cli(settings.data_dir, "events", "--json")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [line["type"] for line in lines] == ["CommandRejected"]
    assert {"message_id", "type", "correlation_id", "causation_id", "federation", "site",
            "occurred_at", "payload"} <= set(lines[0])
    assert lines[0]["causation_id"] == command_id
    only = json_lines(cli(settings.data_dir, "events", "--json", "--type", "SiteRemoved").stdout)
    assert only == []


def test_schema_export_writes_schemas_and_asyncapi(tmp_path):
    result = runner.invoke(app, ["schema", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "out" / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert (tmp_path / "out" / "SubmitJob.schema.json").exists()


def test_dlq_resubmit_prints_the_copy_id_that_names_the_original(settings, bus):
    bus.send("provisioner", [OutgoingMessage(b"{}", "dead-1", session_id="fed")])
    with bus.accept_session("provisioner", max_wait=5) as session:
        [got] = session.receive(max_wait=5)
        bus.dead_letter(got, "Broken", None)

    result = cli(settings.data_dir, "bus", "dlq", "resubmit", "provisioner", "dead-1", "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    with bus.accept_session("provisioner", max_wait=5) as session:
        [again] = session.receive(max_wait=5)
    assert shown["message_id"] == "dead-1" and again.message_id == shown["copy_message_id"]
    assert again.application_properties["original_message_id"] == "dead-1"
    missing = cli(settings.data_dir, "bus", "dlq", "resubmit", "provisioner", "dead-1")
    assert missing.exit_code == 1 and "no dead-lettered message" in missing.output
