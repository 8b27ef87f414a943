"""Facts about an NVFlare participant folder: pid files, the kit's server address,
log time stamps, and how its process was started."""
from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import psutil

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or "x")
    except (OSError, ValueError):
        return None


def server_address(workspace: Path) -> str | None:
    """The server target from the kit's fed_client.json, e.g. 'fl.example.org:8002'."""
    try:
        config = json.loads((workspace / "startup" / "fed_client.json").read_text())
        return config["servers"][0]["service"]["target"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def environment_of(proc: psutil.Process | None) -> dict[str, str]:
    try:
        return proc.environ() if proc is not None else dict(os.environ)
    except psutil.Error:
        return dict(os.environ)


def has_once_mode(script: Path) -> bool:
    try:
        return "--once" in script.read_text(errors="replace")
    except OSError:
        return False


def same_path(arg: str, target: str) -> bool:
    try:
        return str(Path(arg).resolve()) == target
    except OSError:
        return False


def log_time(line: str) -> float | None:
    match = _STAMP.match(line)
    if not match:
        return None
    try:  # NVFlare logs local time
        return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:
        return None
