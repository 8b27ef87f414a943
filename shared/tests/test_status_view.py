"""`arcflare status`'s hand-laid table shows exactly what rich's Table would: every character
in its style — the shortcut is for speed only."""
from __future__ import annotations

import pytest
from arcflare.cli.status_view import FlatTable, participants_table
from rich.console import Console

HEALTHS = ["connected", "disconnected", "crashed", "starting", "not deployed", "stopped"]


def federation(sites: int) -> dict:
    """A ledger answer: a server and `sites` sites in every kind of health."""
    return {
        "name": "fleet", "as_of": "2026-12-02T01:00:00Z", "jobs": [],
        "server": {"participant": "server", "lifecycle": "running", "health": "connected",
                   "diagnosis_code": "registered", "registered": sites, "expected": sites,
                   "observed_at": "2026-12-02T00:59:58Z", "cert_days_left": 12},
        "sites": [{"site": f"site-{n:03d}", "org": f"org-{n % 7}",
                   "lifecycle": ["running", "failed", None, "stopped"][n % 4],
                   "health": HEALTHS[n % len(HEALTHS)], "diagnosis_code": "x" * (n % 13),
                   "last_heartbeat": f"2026-12-02T00:{n % 60:02d}:00Z",
                   "last_connect_time": "2026-12-01T23:00:00Z" if n % 3 else None,
                   "cert_days_left": [400, 20, -1, None][n % 4],
                   "current_job": "abc123" if n % 5 == 0 else None}
                  for n in range(sites)],
    }


def styled_characters(renderable, width: int) -> list[tuple[str, str]]:
    console = Console(width=width, force_terminal=True, color_system="truecolor")
    return [(char, str(segment.style or "none"))
            for segment in console.render(renderable, console.options)
            for char in segment.text]


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("width", [100, 160])
def test_the_flat_table_shows_what_richs_table_shows(wide, width):
    # Prepare
    table = participants_table(federation(40), wide)

    # Execute
    flat = styled_characters(FlatTable(table), width)

    # Assert
    assert FlatTable(table).layout(width) is not None  # laid out by hand, not handed back
    assert flat == styled_characters(table, width)
    assert ("s", "bold") in flat and any(style == "red" for _, style in flat)


def test_a_table_too_wide_for_the_terminal_is_left_to_rich():
    # Prepare
    table = participants_table(federation(5), wide=True)

    # Execute / Assert
    assert FlatTable(table).layout(40) is None
    assert styled_characters(FlatTable(table), 40) == styled_characters(table, 40)
