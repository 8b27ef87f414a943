"""`arcflare status | logs | audit | alerts`: what the ledger knows, and live site logs.

status/audit/alerts read the ledger's read-only HTTP API (arcflare.client.ledger: its port
is in <data_dir>/run/ledger.port, or set ARCFLARE_LEDGER_URL); logs asks the site's
agent with TailSiteLogs and prints the SiteLogTail that answers it.
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from arcflare.cli.audit_view import audit_table
from arcflare.cli.common import (
    AsPrincipal,
    DataDir,
    Json,
    build,
    client_for,
    console,
    describe_failure,
    fail,
    out,
    print_json,
    settings_for,
)
from arcflare.cli.status_view import federation_view
from arcflare.client.ledger import LedgerError, LedgerReader
from arcflare.contracts.commands import TailSiteLogs
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.outcomes import is_failure
from rich.markup import escape
from rich.table import Table

Federation = Annotated[str | None, typer.Argument(help="Federation name (default: all).")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many rows.")]


def ledger_get(data_dir: Path | None, path: str, **query: Any) -> Any:
    """A JSON route of the ledger, signed as this person when the ledger is not on loopback."""
    try:
        return LedgerReader(settings_for(data_dir)).get(path, **query)
    except LedgerError as exc:
        fail(str(exc))


def _short(timestamp: str | None) -> str:
    return (timestamp or "-").replace("T", " ")[:19]


def status(
    federation: Federation = None,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Also the organisation, job and the diagnosis in a sentence.")] = False,
    data_dir: DataDir = None,
    json_out: Json = False,
) -> None:
    """Each participant of a federation (or of all): process, health, diagnosis, heartbeat."""
    if federation:
        found = ledger_get(data_dir, f"/federations/{urllib.parse.quote(federation)}")
        if json_out:
            print_json(found)
            return
        out.print(federation_view(found, wide))
        return
    everything = [ledger_get(data_dir, f"/federations/{urllib.parse.quote(f['name'])}")
                  for f in ledger_get(data_dir, "/federations")]
    if json_out:
        print_json(everything)
        return
    if not everything:
        out.print("no federations yet")
    for n, fed in enumerate(everything):
        if n:
            out.print()
        out.print(federation_view(fed, wide))


def audit(
    federation: Federation = None,
    limit: Limit = 200,
    events: Annotated[bool, typer.Option(
        "--events", help="Unfold the events each command caused.")] = False,
    data_dir: DataDir = None,
    json_out: Json = False,
) -> None:
    """Who did what: one line per command, its outcome and the events it caused."""
    entries = ledger_get(data_dir, "/audit", federation=federation, limit=limit)
    if json_out:
        print_json(entries)
        return
    if not entries:
        out.print("no commands yet")
        return
    out.print(audit_table(entries, events=events))


def alerts(federation: Annotated[str | None, typer.Option("--federation")] = None,
           limit: Limit = 200, data_dir: DataDir = None, json_out: Json = False) -> None:
    """Alerts raised, oldest first."""
    rows = ledger_get(data_dir, "/alerts", federation=federation, limit=limit)
    if json_out:
        print_json(rows)
        return
    table = Table(title="alerts")
    for column in ("time", "severity", "rule", "federation", "site", "summary"):
        table.add_column(column)
    for row in rows:
        colour = {"critical": "red", "warning": "yellow"}.get(row["severity"], "blue")
        # alert text comes from messages: shown as text, never read as rich markup
        table.add_row(_short(row["occurred_at"]), f"[{colour}]{escape(row['severity'])}[/{colour}]",
                      escape(row["rule"]), escape(row.get("federation") or ""),
                      escape(row.get("site") or ""), escape(row["summary"]))
    out.print(table)


def _print_tail(tail: Envelope, json_out: bool) -> None:
    if json_out:
        print_json({"federation": tail.federation, "site": tail.site,
                    "occurred_at": tail.occurred_at.isoformat(), **tail.payload})
        return
    for line in tail.payload.get("lines", []):
        out.print(line, highlight=False, markup=False)
    notes = []
    if tail.payload.get("truncated"):
        notes.append("truncated")
    if tail.payload.get("redacted_count"):
        notes.append(f"{tail.payload['redacted_count']} redacted")
    if notes:
        console.print(f"[dim]({', '.join(notes)})[/dim]")


def logs(
    federation: Annotated[str, typer.Argument(help="Federation name.")],
    site: Annotated[str, typer.Argument(help="Site name.")],
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=200)] = 100,
    file: Annotated[str, typer.Option("--file", help="NVFlare log file.")] = "log.txt",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new tails.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the site.")] = 60,
    data_dir: DataDir = None,
    as_: AsPrincipal = None,
    json_out: Json = False,
) -> None:
    """The last lines of a site's NVFlare log, fetched by its agent (redacted, capped)."""
    command = build(lambda: TailSiteLogs(federation=federation, site=site, lines=lines,
                                         file=file))
    with client_for(data_dir, as_) as client:
        command_id = client.send(command)
        try:
            answer = client.wait(command_id, timeout=timeout)
        except TimeoutError:
            fail(f"no answer from {site}'s agent within {timeout:.0f} s — is it running?")
        if is_failure(answer.type):
            fail(describe_failure(answer))
        _print_tail(answer, json_out)
        if not follow:
            return
        try:
            for tail in client.follow(types=["SiteLogTail"], federation=federation,
                                      topics=("telemetry",)):
                if tail.site == site and tail.message_id != answer.message_id:
                    _print_tail(tail, json_out)
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("logs")(logs)
    app.command("audit")(audit)
    app.command("alerts")(alerts)
