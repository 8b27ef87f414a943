"""`arcflare bus init`: create or update the Service Bus entities of the topology."""
from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer
from arcflare.cli.common import DataDir, Json, fail, out, print_json, settings_for
from rich.table import Table


def _plain(value: Any) -> Any:
    from arcflare.bus.emulator import iso_duration

    if isinstance(value, timedelta):
        return iso_duration(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _show(rows: list[dict], json_out: bool, columns: list[str]) -> None:
    if json_out:
        print_json(rows)
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*[_cell(row[c]) for c in columns])
    out.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, {}, ""))
    return str(value)


def _sites(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        federation, sep, site = value.partition("/")
        if not sep or not federation or not site:
            fail(f"--site {value!r}: use FEDERATION/SITE", code=2)
        pairs.append((federation, site))
    return pairs


def init(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; touch nothing.")] = False,
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="Also a site's site-commands subscription: FEDERATION/SITE (repeatable).",
    )] = None,
    json_out: Json = False,
    data_dir: DataDir = None,
) -> None:
    """Create or update every queue, topic, subscription and rule (idempotent)."""
    from arcflare.bus.admin import administration_client, plan
    from arcflare.bus.admin import init as apply
    from arcflare.bus.azure.config import AzureBusOptions, BusConfigurationError
    from arcflare.contracts.topology import TOPOLOGY, with_sites

    topology = with_sites(TOPOLOGY, _sites(site or []))
    if dry_run:
        rows = [_plain(step.as_dict()) for step in plan(topology)]
        _show(rows, json_out, ["kind", "path", "settings"])
        return
    try:
        options = AzureBusOptions.from_settings(settings_for(data_dir))
    except BusConfigurationError as exc:
        fail(str(exc), code=2)
    try:
        with administration_client(options) as client:
            rows = apply(client, topology)
    except Exception as exc:  # noqa: BLE001 - the namespace's refusal, said in one line
        fail(f"bus init failed on {options.namespace or 'the connection string namespace'}: "
             f"{type(exc).__name__}: {exc}")
    _show(rows, json_out, ["kind", "path", "outcome"])


def register(bus_app: typer.Typer) -> None:
    bus_app.command("init")(init)
