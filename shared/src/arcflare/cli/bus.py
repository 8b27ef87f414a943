"""`arcflare bus ...`: the topology, stats, raw sends, peeks and the dead-letter queues."""
from __future__ import annotations

import json
import sys
import uuid
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from arcflare.bus import connect
from arcflare.bus.port import BusError, OutgoingMessage, ReceivedMessage, SubQueue
from arcflare.cli.common import DataDir, Json, fail, out, print_json, settings_for
from arcflare.contracts.topology import TOPOLOGY, Topology
from rich.table import Table

app = typer.Typer(help="Inspect and operate the message bus.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queues: what was rejected, and why.",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

Entity = Annotated[str, typer.Argument(
    help="A queue ('provisioner') or a subscription ('events/subscriptions/ledger').")]


def parse_entity(path: str) -> tuple[str, str | None]:
    parts = path.strip("/").split("/")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "subscriptions":
        return parts[0], parts[2]
    fail(f"entity {path!r}: use QUEUE or TOPIC/subscriptions/NAME", code=2)


def topology_json(topology: Topology = TOPOLOGY) -> dict:
    def convert(value):
        if isinstance(value, timedelta):
            return value.total_seconds()
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value

    return convert(asdict(topology))


@app.command()
def topology(
    format: Annotated[str, typer.Option("--format", help="json | emulator")] = "json",
) -> None:
    """Print every queue, topic, subscription and filter (emulator: its Config.json)."""
    if format == "json":
        print_json(topology_json())
    elif format == "emulator":
        from arcflare.bus.emulator import render_emulator_config

        sys.stdout.write(json.dumps(render_emulator_config(TOPOLOGY), indent=2) + "\n")
    else:
        fail(f"--format {format!r}: use json or emulator", code=2)


@app.command()
def stats(data_dir: DataDir = None, json_out: Json = False) -> None:
    """Per entity: active, scheduled, dead-lettered and locked messages."""
    with connect(settings_for(data_dir)) as bus:
        rows = bus.stats()
    if json_out:
        print_json([asdict(r) for r in rows])
        return
    table = Table("entity", "kind", "active", "scheduled", "dead-lettered", "locked")
    for r in rows:
        table.add_row(r.entity_path, r.kind, str(r.active), str(r.scheduled),
                      str(r.dead_lettered), str(r.locked))
    out.print(table)


@app.command("send-raw")
def send_raw(
    entity: Annotated[str, typer.Argument(help="Queue or topic to send to.")],
    body: Annotated[str, typer.Option("--body", help="A file with the body, or - for stdin.")],
    subject: Annotated[str | None, typer.Option("--subject")] = None,
    session: Annotated[str | None, typer.Option("--session")] = None,
    message_id: Annotated[str | None, typer.Option("--message-id")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", help="k=v (repeatable)")] = None,
    data_dir: DataDir = None,
    json_out: Json = False,
) -> None:
    """Put any bytes on an entity (for operators and tests): no validation at all."""
    data = sys.stdin.buffer.read() if body == "-" else Path(body).read_bytes()
    props = {}
    for item in prop or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--property {item!r}: use key=value", code=2)
        props[key] = value
    message = OutgoingMessage(body=data, message_id=message_id or str(uuid.uuid4()),
                              subject=subject, session_id=session, application_properties=props)
    try:
        with connect(settings_for(data_dir)) as bus:
            bus.send(entity, [message])
    except (BusError, ValueError) as exc:
        fail(str(exc))
    if json_out:
        print_json({"message_id": message.message_id, "entity": entity, "bytes": len(data)})
    else:
        out.print(f"sent {len(data)} bytes to {entity} as {message.message_id}")


def _row(m: ReceivedMessage, dead: bool) -> dict:
    row = {"message_id": m.message_id, "subject": m.subject, "sequence_number": m.sequence_number,
           "delivery_count": m.delivery_count, "enqueued_at": m.enqueued_time.isoformat(),
           "session_id": m.session_id}
    if dead:
        row |= {"reason": m.dead_letter_reason, "description": m.dead_letter_error_description}
    else:
        row["body"] = m.body.decode("utf-8", "replace")[:2000]
    return row


def _show(rows: list[dict], json_out: bool, columns: list[str]) -> None:
    if json_out:
        print_json(rows)
        return
    table = Table(*columns)
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in columns))
    out.print(table)


@app.command()
def peek(entity: Entity, max_messages: Annotated[int, typer.Option("--max")] = 32,
         data_dir: DataDir = None, json_out: Json = False) -> None:
    """Show messages waiting on a queue or subscription without taking them."""
    name, sub = parse_entity(entity)
    with connect(settings_for(data_dir)) as bus:
        rows = [_row(m, False) for m in bus.peek(name, sub, max_messages=max_messages)]
    _show(rows, json_out, ["sequence_number", "message_id", "subject", "delivery_count", "body"])


@dlq_app.command("list")
def dlq_list(entity: Entity, max_messages: Annotated[int, typer.Option("--max")] = 100,
             data_dir: DataDir = None, json_out: Json = False) -> None:
    """Dead-lettered messages: id, subject, reason, description, delivery count, time."""
    name, sub = parse_entity(entity)
    with connect(settings_for(data_dir)) as bus:
        rows = [_row(m, True) for m in bus.peek(name, sub, max_messages=max_messages,
                                                 sub_queue=SubQueue.DEAD_LETTER)]
    _show(rows, json_out, ["message_id", "subject", "reason", "description", "delivery_count",
                           "enqueued_at"])


@dlq_app.command("resubmit")
def dlq_resubmit(entity: Entity, message_id: str, data_dir: DataDir = None,
                 json_out: Json = False) -> None:
    """Send a dead-lettered message back for another try, as a copy under a new id (printed).

    The copy carries the original id in `original_message_id`, so consumers handle it once."""
    name, sub = parse_entity(entity)
    try:
        with connect(settings_for(data_dir)) as bus:
            copy_id = bus.resubmit_dead_letter(name, message_id, sub)
    except BusError as exc:
        fail(str(exc))
    if json_out:
        print_json({"entity": entity, "message_id": message_id, "copy_message_id": copy_id})
    else:
        out.print(f"resubmitted {message_id} to {entity} as {copy_id}")
