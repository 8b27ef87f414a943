"""`arcflare audit` as a table: one line per command — when, what, who, how it ended, how
long its events took, why — with the events it caused folded (`events` unfolds them).

Every cell is Text: what messages say (a claimed identity, a reason) is never read as markup."""
from __future__ import annotations

from typing import Any

from arcflare.cli.durations import parse, span
from rich.table import Table
from rich.text import Text

OUTCOME_STYLE = {"succeeded": "green", "failed": "red", "rejected": "yellow",
                 "in progress": "cyan", "progress": "dim"}


def who(entry: dict[str, Any]) -> str:
    """The person, or for an automatic command the service and whom it acted for; for a
    refused command the identity its signature proved, and the one it claimed if other."""
    claimed, proven = entry.get("claimed_by"), entry.get("proven_by")
    if claimed or proven:
        if not proven:
            return f"unproven, claimed {claimed}"
        return proven if claimed in (None, proven) else f"{proven}, claimed {claimed}"
    actor = entry.get("actor") or "?"
    name = actor.removeprefix("service:")
    person = entry.get("on_behalf_of")
    if entry.get("automatic"):
        return f"{name} for {person}" if person else f"{name} (auto)"
    return name




def _cut(text: str | None) -> Text:
    """A cell that is cut short with an ellipsis instead of wrapping onto more lines."""
    return Text(text or "", no_wrap=True, overflow="ellipsis")


def _after(start: str | None, moment: str | None) -> str:
    begin, end = parse(start), parse(moment)
    return f"+{span((end - begin).total_seconds())}" if begin and end else ""


def audit_table(entries: list[dict[str, Any]], *, events: bool = False) -> Table:
    # the federation gets a column only when the commands are of more than one
    federation_column = len({e.get("federation") for e in entries}) > 1
    table = Table(box=None, padding=(0, 0, 0, 1), pad_edge=False, header_style="bold",
                  show_edge=False)
    table.add_column("UTC", no_wrap=True)
    if federation_column:
        table.add_column("federation", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("command", no_wrap=True, overflow="ellipsis")
    # "by" and "reason" give way when the terminal is narrow (cut short, never wrapped)
    table.add_column("by", max_width=32)
    table.add_column("outcome", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("events", no_wrap=True, justify="right")
    table.add_column("reason")
    day = None
    for entry in entries:
        moment = parse(entry.get("occurred_at"))
        if moment is not None and moment.date() != day:
            day = moment.date()  # the date once, above the first command of each day
            table.add_row("", *([""] if federation_column else []), Text(day.isoformat()),
                          style="bold")
        took = entry.get("took_s")
        shown = moment.strftime("%H:%M:%S") if moment else "-"
        row = [Text(shown), Text(entry.get("command_type") or "?"), _cut(who(entry)),
               Text(entry["outcome"], style=OUTCOME_STYLE.get(entry["outcome"], "")),
               Text(span(took) if took is not None else "-"),
               Text(str(len(entry.get("events") or []))), _cut(entry.get("reason"))]
        if federation_column:
            row.insert(1, Text(entry.get("federation") or ""))
        table.add_row(*row)
        if events:
            for event in entry.get("events") or []:
                table.add_row(*_event_row(entry, event, federation_column), style="dim")
    return table


def _event_row(entry: dict[str, Any], event: dict[str, Any],
               federation_column: bool) -> list[Text]:
    outcome = event.get("outcome") or ""
    row = [Text(""), Text(f"└ {event['type']}"), _cut(event.get("note")),
           Text(outcome, style=OUTCOME_STYLE.get(outcome, "")),
           Text(_after(entry.get("occurred_at"), event.get("occurred_at"))), Text(""),
           _cut(event.get("reason"))]
    if federation_column:
        row.insert(1, Text(""))
    return row
