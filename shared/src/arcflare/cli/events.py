"""`arcflare events`: the event stream as JSON lines (or a readable line each)."""
from __future__ import annotations

from typing import Annotated

import typer
from arcflare.cli.common import DataDir, Json, client_for, envelope_json, out, print_json


def events(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only this type (repeatable).")] = None,
    federation: Annotated[str | None, typer.Option("--federation")] = None,
    telemetry: Annotated[bool, typer.Option("--telemetry", help="Include telemetry.")] = False,
    data_dir: DataDir = None,
    json_out: Json = False,
) -> None:
    """Print recent events (those still in the follow subscription); --follow for new ones."""
    topics = ("events", "telemetry") if telemetry else ("events",)
    with client_for(data_dir) as client:
        stream = client.follow(types=type_, federation=federation, topics=topics,
                               from_start=True, until_idle=not follow)
        try:
            for env in stream:
                if json_out:
                    print_json(envelope_json(env))
                else:
                    where = "/".join(x for x in (env.federation, env.site) if x)
                    out.print(f"{env.occurred_at:%H:%M:%S} [bold]{env.type}[/bold] {where} "
                              f"[dim]{env.message_id}[/dim]", highlight=False)
        except KeyboardInterrupt:
            pass


def register(app: typer.Typer) -> None:
    app.command("events")(events)
