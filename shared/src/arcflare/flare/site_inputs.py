"""Which data inputs a local site's client was started with: a small file in its workspace.

The deployer writes it into the participant folder it starts the client from; a site agent
on the same machine reads it there when it was not told its inputs (ARCFLARE_INPUTS). An
agent on a hospital's cluster shares no disk with the deployer, so it is configured instead.
"""
from __future__ import annotations

import json
from pathlib import Path

MARKER = "arcflare-inputs.json"


def write_inputs(workspace: Path, folders: dict[str, str]) -> None:
    """Input name -> folder, replacing what an earlier start wrote."""
    tmp = workspace / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"inputs": folders}, indent=2, sort_keys=True))
    tmp.replace(workspace / MARKER)


def read_inputs(workspace: Path) -> dict[str, str] | None:
    """Input name -> folder as the deployer bound them; None when nothing was written."""
    try:
        found = json.loads((workspace / MARKER).read_text())["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(found, dict):
        return None
    return {str(name): str(folder) for name, folder in found.items()}
