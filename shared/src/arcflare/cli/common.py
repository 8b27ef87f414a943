"""What every CLI command shares: settings from --data-dir, the client, output, --wait.

Exit codes: 0 success, 1 failure or rejection (reason printed), 2 usage.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from arcflare.client import Client
from arcflare.contracts.base import Command
from arcflare.contracts.envelope import Envelope, describe_errors, field_errors
from arcflare.contracts.outcomes import is_failure
from arcflare.observability import tracing
from arcflare.runtime.settings import Settings
from pydantic import ValidationError
from rich.console import Console

console = Console(stderr=True)
out = Console()

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="ARCFLARE_DATA_DIR",
                 help="ArcFlare data directory (default ./.arcflare)."),
]
AsPrincipal = Annotated[
    str | None, typer.Option("--as", help="Issue the command as this admin (email).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the command's outcome event.")]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait with --wait.")]


def settings_for(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()


def client_for(data_dir: Path | None, as_: str | None = None) -> Client:
    return Client(settings_for(data_dir), issued_by=as_)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def envelope_json(envelope: Envelope) -> dict[str, Any]:
    return {
        "message_id": envelope.message_id, "type": envelope.type,
        "correlation_id": envelope.correlation_id, "causation_id": envelope.causation_id,
        "federation": envelope.federation, "site": envelope.site,
        "occurred_at": envelope.occurred_at.isoformat(), "payload": envelope.payload,
    }


def describe_failure(outcome: Envelope) -> str:
    p = outcome.payload
    parts = [p.get("reason", ""), p.get("detail", ""), describe_errors(p.get("errors", []))]
    return f"{outcome.type}: " + "; ".join(x for x in parts if x)


M = TypeVar("M")


def build(make: Callable[[], M], what: str = "") -> M:
    """The command (or spec) `make` builds, or exit 2 with every field problem in one line —
    the one way the CLI reports arguments its messages refuse."""
    try:
        return make()
    except ValidationError as exc:
        prefix = f"{what} is not valid: " if what else ""
        given = [repr(e.get("input"))[:60] for e in exc.errors(include_url=False)]
        errors = [{**e, "problem": f"{e['problem']} (got {g})"}
                  for e, g in zip(field_errors(exc), given, strict=True)]
        fail(prefix + describe_errors(errors), code=2)


def _command_path(command: Command) -> str:
    """The span name of a CLI command: what was typed, e.g. `arcflare job submit` (else the
    command's type: `arcflare SubmitJob`)."""
    try:  # typer carries its own click since 0.2x
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context
    ctx = get_current_context(silent=True)
    return ctx.command_path if ctx is not None else f"arcflare {command.type_name()}"


def send_command(
    command: Command, *, data_dir: Path | None, as_: str | None, wait: bool, json_out: bool,
    timeout: float = 300.0, what: str = "",
) -> Envelope | None:
    """Send; with --wait block for the outcome and exit 1 on a failure or rejection. Traced,
    the command is one trace from here through every service it reaches."""
    with client_for(data_dir, as_) as client, tracing.span(
            _command_path(command), root=True,
            attributes={"arcflare.command.type": command.type_name()}):
        command_id = client.send(command)
        trace_id = tracing.current_trace_id()
        if not wait:
            if json_out:
                print_json({"command_id": command_id, "type": command.type_name(),
                            "trace_id": trace_id})
            else:
                console.print(f"sent {command.type_name()} [dim]{command_id}[/dim]")
            return None
        with console.status(f"waiting for {what or command.type_name()} …"):
            try:
                outcome = client.wait(command_id, timeout=timeout)
            except TimeoutError as exc:
                fail(f"{exc} — is the service running? (arcflare local ps)")
    if json_out:
        print_json({"command_id": command_id, "trace_id": trace_id,
                    "outcome": envelope_json(outcome)})
    if is_failure(outcome.type):
        if not json_out:
            fail(describe_failure(outcome))
        raise typer.Exit(1)
    if not json_out:
        console.print(f"[green]✓[/green] {outcome.type}", highlight=False)
    return outcome
