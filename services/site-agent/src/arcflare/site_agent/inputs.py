"""The site's data inputs as the agent sees them: present, readable, and a size class.

Only that leaves the site, never a file name or a byte of content. Presence is looked at on
every heartbeat; the size (a walk that stops at 1 GB) at most every `size_every_s`.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from arcflare.flare.site_inputs import read_inputs

MB, GB = 1 << 20, 1 << 30


@dataclass(frozen=True)
class InputState:
    name: str
    present: bool
    readable: bool
    size: str | None = None  # "empty", "<1MB", "<1GB", ">=1GB"; None when not readable

    @property
    def usable(self) -> bool:
        return self.present and self.readable


def size_class(folder: Path) -> str:
    total, pending = 0, [folder]
    while pending and total < GB:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file():
                        total += entry.stat().st_size
        except OSError:  # a subfolder it may not list: counted as nothing
            continue
    if total == 0:
        return "empty"
    return "<1MB" if total < MB else "<1GB" if total < GB else ">=1GB"


def _listable(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            next(entries, None)
        return True
    except OSError:
        return False


class SiteInputs:
    """The inputs named in the agent's settings or, when none are, those the deployer bound
    to the client it started from `workspace` (a local site: same machine, same disk)."""

    def __init__(self, declared: Mapping[str, Path], workspace: Path | None = None, *,
                 size_every_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.declared = {name: Path(folder) for name, folder in declared.items()}
        self.workspace = workspace
        self.size_every_s = size_every_s
        self.clock = clock
        self._sizes: dict[str, tuple[Path, float, str]] = {}

    def folders(self) -> dict[str, Path]:
        if self.declared or self.workspace is None:
            return dict(self.declared)
        return {name: Path(folder) for name, folder in (read_inputs(self.workspace) or {}).items()}

    def check(self) -> list[InputState]:
        states = []
        for name, folder in sorted(self.folders().items()):
            present = folder.is_dir()
            readable = present and _listable(folder)
            if not readable:
                self._sizes.pop(name, None)
            states.append(InputState(name, present, readable,
                                     self._size(name, folder) if readable else None))
        return states

    def _size(self, name: str, folder: Path) -> str:
        now = self.clock()
        cached = self._sizes.get(name)
        if cached is not None and cached[0] == folder and now - cached[1] < self.size_every_s:
            return cached[2]
        size = size_class(folder)
        self._sizes[name] = (folder, now, size)
        return size
