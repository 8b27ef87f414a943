"""Startup kits through the artifact store: put by the provisioner, fetched by whoever runs
or uses one (the deployer, the job-controller's FLARE admin), never read from another
service's folder.

A kit is packed deterministically (the same kit is one blob, however often it is
announced) into the store's `kits` area, apart from packages and results. A reader
accepts only a reference of its own store's kits area with the kit media type, fetches
it within small caps, verifies it and unpacks it into a private cache of its own:
<root>/<sha256>/<participant>, folders 0700 and keys 0600, unpacked once per kit.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

from arcflare.artifacts import ArtifactStore
from arcflare.artifacts.folders import fetch_folder
from arcflare.artifacts.packing import pack_folder_bytes
from arcflare.artifacts.unpacking import Caps, InvalidArchive
from arcflare.contracts.artifacts import STARTUP_KIT, ArtifactRef
from arcflare.flare.kits import lock_down
from arcflare.trust.files import private_dir

#: an NVFlare startup kit is a few dozen small files
KIT_CAPS = Caps(max_bytes=64 * 1024 * 1024, max_files=2000)


def put_kit(store: ArtifactStore, folder: Path) -> ArtifactRef:
    return store.put(pack_folder_bytes(folder), STARTUP_KIT, area="kits")


def check_kit(store: ArtifactStore, ref: ArtifactRef) -> None:
    """ArtifactRefused / ArtifactTooLarge unless ref can be a kit of this store."""
    store.check(ref, area="kits", max_bytes=KIT_CAPS.max_bytes, media_types={STARTUP_KIT})


def _startup_kit(folder: Path) -> Path:
    if not (folder / "startup").is_dir():
        raise InvalidArchive("it holds no startup/ folder: it is not an NVFlare startup kit")
    return folder


class KitCache:
    """Kits fetched from the store into a folder of this service's own."""

    def __init__(self, store: ArtifactStore, root: Path) -> None:
        self.store = store
        self.root = Path(root)
        self._lock = threading.Lock()

    def folder(self, ref: ArtifactRef, participant: str) -> Path:
        """The kit unpacked as <root>/<sha256>/<participant> (fetched on first use).
        Raises ArtifactError or InvalidArchive (both name the kit's reference)."""
        if not participant or "/" in participant or participant in (".", ".."):
            raise ValueError(f"kit cache names must be plain names, got {participant!r}")
        target = self.root / ref.sha256 / participant
        with self._lock:
            if not (target / "startup").is_dir():
                shutil.rmtree(target, ignore_errors=True)  # an earlier, interrupted attempt
                private_dir(target.parent)
                fetch_folder(self.store, ref, target, area="kits", caps=KIT_CAPS,
                             media_types={STARTUP_KIT}, what=f"kit {ref.locator}",
                             locate=_startup_kit)
                lock_down(target)
        return target

    def forget(self, ref: ArtifactRef) -> None:
        """Drop the unpacked copy (a removed site's keys do not linger here)."""
        shutil.rmtree(self.root / ref.sha256, ignore_errors=True)
