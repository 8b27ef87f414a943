"""What the e2e, chaos and benchmark code share: the `arcflare` CLI as a subprocess, and
the checks that nothing of a local stack is left running once it was stopped."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
ARCFLARE = str(Path(sys.executable).with_name("arcflare"))


def arcflare(*args: str, timeout: float = 120, env: dict[str, str] | None = None,
             cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run the CLI; stdout is JSON when --json is given, progress goes to stderr."""
    return subprocess.run([ARCFLARE, *args], check=False, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd, env=env)


def local_down(data_dir: Path, env: dict[str, str] | None = None) -> None:
    arcflare("local", "down", "--data-dir", str(data_dir), timeout=120, env=env)


def running_under(data_dir: Path) -> list[str]:
    """Processes whose cwd or ARCFLARE_DATA_DIR is inside the data dir, as readable lines."""
    root = str(data_dir)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "environ", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cwd = proc.info.get("cwd") or ""
            env = proc.info.get("environ") or {}
            inside = cwd == root or cwd.startswith(root + os.sep)
            if inside or env.get("ARCFLARE_DATA_DIR", "").startswith(root):
                found.append(f"{proc.pid} {' '.join(proc.info.get('cmdline') or [])[:160]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def stack_pids(data_dir: Path) -> dict[str, int]:
    state = json.loads((data_dir / "run" / "stack.json").read_text())
    return {p["name"]: p["pid"] for p in state["processes"] if p["pid"]}


def admin_kit(data_dir: Path, federation: str, admin: str) -> Path:
    return data_dir / "kits" / federation / admin
