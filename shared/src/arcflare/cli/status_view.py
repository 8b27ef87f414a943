"""`arcflare status` as a table: one line per participant (the server first), fit for a
100-column terminal; `wide` adds the organisation, the job and each diagnosis in a sentence.

Built from the ledger's answer alone; ages are counted to the ledger's `as_of`.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arcflare.cli.durations import age, parse, span
from rich.console import Group, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

GOOD, WAITING, BAD, OFF = "green", "yellow", "red", "dim"
HEALTH_STYLE = {
    "connected": GOOD, "idle": GOOD, "running job": GOOD,
    "starting": WAITING, "not deployed": WAITING, "unknown": WAITING, "degraded": WAITING,
    "disconnected": BAD, "crashed": BAD, "misconfigured": BAD, "failed": BAD,
    "stopped": OFF, "removed": OFF,
}
LIFECYCLE_STYLE = {"running": GOOD, "started": GOOD, "failed": BAD, "crashed": BAD,
                   "stopped": OFF, "removed": OFF}
#: the deployer's words, shortened where the diagnosis code already says the rest
SHORT_LIFECYCLE = {"deploy_failed": "failed"}
#: a certificate this close to its end is worth a colour
CERT_WARNING_DAYS = 30


def as_of(federation: dict[str, Any]) -> datetime:
    return parse(federation.get("as_of")) or datetime.now(UTC)


def _styled(word: str | None, styles: dict[str, str]) -> Text:
    word = SHORT_LIFECYCLE.get(word or "-", word or "-")
    return Text(word, style=styles.get(word, WAITING if word != "-" else OFF))


def _cert(days: int | None) -> Text:
    if days is None:
        return Text("-", style=OFF)
    if days < 0:
        return Text("expired", style=BAD)
    return Text(f"{days} d", style=WAITING if days < CERT_WARNING_DAYS else "")


def headline(federation: dict[str, Any]) -> Text:
    """hospitals-3 · server running · idle · 3/3 sites registered · CA 359 d"""
    server = federation.get("server") or {}
    line = Text(federation["name"], style="bold")
    line.append(" · server ")
    line.append_text(_styled(server.get("lifecycle") or "not deployed", LIFECYCLE_STYLE))
    if server.get("engine"):
        line.append(" · ")
        line.append_text(_styled(server["engine"], HEALTH_STYLE))
    if server.get("expected") and server.get("registered") is not None:
        line.append(f" · {server['registered']}/{server['expected']} sites registered")
    ca_days = (federation.get("ca") or {}).get("days_left")
    if ca_days is not None:
        line.append(" · CA ")
        line.append_text(_cert(ca_days))
    return line


def _cut(text: str | None, style: str = "") -> Text:
    """A cell cut short with an ellipsis when its column must give way, never wrapped."""
    return Text(text or "", style=style, no_wrap=True, overflow="ellipsis")


def _server_row(server: dict[str, Any], now: datetime, wide: bool,
                jobs: bool) -> list[RenderableType]:
    row = [_cut("server", "bold"), _styled(server.get("lifecycle"), LIFECYCLE_STYLE),
           _styled(server.get("health"), HEALTH_STYLE), Text(server.get("diagnosis_code") or ""),
           Text(age(server.get("observed_at"), now)), Text("-", style=OFF),
           _cert(server.get("cert_days_left"))]
    if wide:
        row[1:1] = [Text("")]
    if jobs:
        row.append(Text(", ".join(j[:8] for j in server.get("running_jobs") or [])))
    return row


def _site_row(site: dict[str, Any], now: datetime, wide: bool,
              jobs: bool) -> list[RenderableType]:
    row = [_cut(site["site"]), _styled(site.get("lifecycle") or "provisioned", LIFECYCLE_STYLE),
           _styled(site.get("condition"), HEALTH_STYLE), Text(site.get("diagnosis_code") or ""),
           Text(age(site.get("last_heartbeat"), now)),
           Text(age(site.get("last_connect_time"), now)), _cert(site.get("cert_days_left"))]
    if wide:
        row[1:1] = [_cut(site.get("org"))]
    if jobs:
        row.append(Text((site.get("current_job") or "")[:8]))
    return row


def _table() -> Table:
    # one space between columns, none at the edges: every column counts at 80 or 100
    return Table(box=None, padding=(0, 0, 0, 1), pad_edge=False, header_style="bold",
                 show_edge=False)


def participants_table(federation: dict[str, Any], wide: bool = False) -> Table:
    table = _table()
    # names give way first when the terminal is narrow (cut short, never wrapped)
    table.add_column("participant")
    if wide:
        table.add_column("org")
    for name in ("process", "health", "diagnosis"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for name in ("heartbeat", "connect", "cert"):
        table.add_column(name, no_wrap=True, justify="right")
    server, sites = federation.get("server"), federation.get("sites", [])
    jobs = wide and bool((server or {}).get("running_jobs")
                         or any(s.get("current_job") for s in sites))
    if jobs:
        table.add_column("job", no_wrap=True)
    now = as_of(federation)
    if server:
        table.add_row(*_server_row(server, now, wide, jobs))
    for site in sites:
        table.add_row(*_site_row(site, now, wide, jobs))
    return table


def diagnoses_table(federation: dict[str, Any]) -> Table:
    """Each participant's diagnosis in a sentence, wrapped under its name (--wide)."""
    table = _table()
    table.add_column("participant", no_wrap=True, style="dim")
    table.add_column("diagnosis", ratio=1, overflow="fold")
    server = federation.get("server")
    if server and server.get("diagnosis"):
        table.add_row("server", server["diagnosis"])
    for site in federation.get("sites", []):
        if site.get("diagnosis"):
            table.add_row(site["site"], site["diagnosis"])
    return table


def _is_finished(status: str | None) -> bool:
    return str(status).startswith(("FINISHED", "FAILED"))


def job_lines(federation: dict[str, Any]) -> list[Text]:
    """Jobs still going, else the last one; NVFlare's status verbatim, whatever it is."""
    jobs = federation.get("jobs") or []
    shown = [j for j in jobs if not _is_finished(j.get("status"))] or jobs[-1:]
    now = as_of(federation)
    lines = []
    for job in shown:
        status = job.get("status") or "unknown"
        style = GOOD if status == "FINISHED:COMPLETED" else BAD if _is_finished(status) else ""
        line = Text(f"job {job['job_id'][:8]} {job.get('name') or ''}: ")
        line.append(status, style=style)
        if job.get("duration_s") is not None:
            line.append(f" in {span(job['duration_s'])}")
        line.append(f", submitted {age(job.get('submitted_at'), now)}")
        if job.get("model_version"):
            line.append(f" · model v{job['model_version']}")
        lines.append(line)
    return lines


class FlatTable:
    """A table laid out by hand when every cell fits as it is: the same text and styles rich's
    Table gives, as segments, in a fraction of the time (a 200-site federation: a few ms
    instead of ~60), so `arcflare status` of a big federation stays quick. When something
    must be cut short to fit, rich's Table does it (its column shrinking is not worth
    repeating here)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console, options):
        laid_out = self.layout(options.max_width)
        if laid_out is None:
            yield self.table
            return
        rows, widths = laid_out
        gap = Segment(" ", console.get_style(self.table.header_style or ""))
        header = [Text(col.header, style=self.table.header_style) for col in self.table.columns]
        yield from self._line(console, header, widths, gap)
        plain_gap = Segment(" ")
        for row in rows:
            yield from self._line(console, row, widths, plain_gap)

    def layout(self, width: int) -> tuple[list[tuple[Text, ...]], list[int]] | None:
        """Each row's cells and each column's width; None when the table is wider than
        `width`."""
        table = self.table
        cells = [[c if isinstance(c, Text) else Text(str(c)) for c in col.cells]
                 for col in table.columns]
        widths = [max([len(col.header)] + [c.cell_len for c in column])
                  for col, column in zip(table.columns, cells, strict=True)]
        if sum(widths) + len(widths) - 1 > width:
            return None
        return list(zip(*cells, strict=True)), widths

    def _line(self, console, row, widths: list[int], gap: Segment):
        for n, (col, width, cell) in enumerate(zip(self.table.columns, widths, row,
                                                     strict=True)):
            if n:
                yield gap
            style = console.get_style(cell.style or "")
            pad = Segment(" " * (width - cell.cell_len), style)
            if col.justify == "right":
                yield pad
            # a Text's own style lies under its spans (rich's Text.render leaves it out)
            yield from Segment.apply_style(cell.render(console), style)
            if col.justify != "right":
                yield pad
        yield Segment.line()


def federation_view(federation: dict[str, Any], wide: bool = False) -> Group:
    parts: list[RenderableType] = [headline(federation),
                                   FlatTable(participants_table(federation, wide)),
                                   *job_lines(federation)]
    if wide:
        parts.append(diagnoses_table(federation))
    return Group(*parts)
