"""Snapshot tests of what people read: rendered text compared with a checked-in file.

A change that makes a table wrap, lose a column or say something else shows up as a
diff in review. When the change is intended, rewrite the expected files and commit them:

    ARCFLARE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest <the test file> -q

and read `git diff` of the snapshot folder before committing.
"""
from __future__ import annotations

import difflib
import os
from pathlib import Path

from rich.console import Console

UPDATE = "ARCFLARE_UPDATE_SNAPSHOTS"


def recording_console(width: int) -> Console:
    """A console that keeps what is printed, at a fixed width, as a terminal would wrap it."""
    return Console(record=True, width=width, force_terminal=True, color_system="truecolor",
                   legacy_windows=False, soft_wrap=False, _environ={})


def assert_snapshot(expected: Path, console: Console) -> None:
    """The console's text (no colours) equals the file, line by line; no line is wider
    than the console."""
    # trailing blanks are padding, and editors strip them from checked-in files
    lines = console.export_text(styles=False).splitlines()
    text = "".join(line.rstrip() + "\n" for line in lines)
    too_wide = [line for line in text.splitlines() if len(line) > console.width]
    assert not too_wide, f"lines wider than {console.width}: {too_wide}"
    if os.environ.get(UPDATE) or not expected.exists():
        expected.parent.mkdir(parents=True, exist_ok=True)
        expected.write_text(text)
        if not os.environ.get(UPDATE):
            raise AssertionError(f"{expected} did not exist; written now: review and commit it")
        return
    wanted = expected.read_text()
    if text != wanted:
        diff = "".join(difflib.unified_diff(wanted.splitlines(keepends=True),
                                            text.splitlines(keepends=True),
                                            str(expected), "rendered now"))
        raise AssertionError(f"{expected.name} differs (intended? set {UPDATE}=1):\n{diff}")
