"""Where NVFlare startup kits live, addressed by kit references (docs/architecture.md §4, §7).

A kit ref is `file:<absolute path>` for a kit in a folder on this machine, or
`azureml:<asset name>:<version>` for a kit uploaded as an Azure ML data asset.
The provisioner writes kits; the deployer and job-controller read them by ref.
Kits hold private keys: folders are 0700 and keys 0600, always.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
from abc import ABC, abstractmethod
from pathlib import Path

from arcflare.observability.tracing import traced
from arcflare.trust.files import private_dir

FILE_SCHEME = "file:"
AZUREML_SCHEME = "azureml:"
KEY_SUFFIXES = (".key",)
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


AZUREML_ASSET_PREFIX = "arcflare-kit"


def asset_name(federation: str, participant: str) -> str:
    """The Azure ML data asset a participant's kit is stored as: letters, digits, '-' and
    '_' only (admin emails do not fit as they are)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-",
                  f"{AZUREML_ASSET_PREFIX}-{federation}-{participant}")[:255]


class KitNotFound(LookupError):
    """No kit behind this ref (or this federation/participant)."""


class KitStore(ABC):
    """The kit store port: put a freshly built kit, find it again by ref."""

    @abstractmethod
    def put(self, federation: str, participant: str, built: Path) -> str:
        """Take ownership of the kit folder `built` (it may be moved) and return its kit ref.

        An existing kit for the same participant is replaced as a whole.
        """

    @abstractmethod
    def ref(self, federation: str, participant: str) -> str | None:
        """The kit ref of a stored kit, or None when there is none."""

    @abstractmethod
    def remove(self, federation: str, participant: str) -> None:
        """Delete a participant's kit (its keys with it); no error when absent."""

    @abstractmethod
    def participants(self, federation: str) -> list[str]:
        """Every participant with a stored kit in this federation."""

    # --- versions: a renewal puts a new kit in place and keeps the one it replaced ---------
    @abstractmethod
    def replace(self, federation: str, participant: str, built: Path) -> str:
        """Take the kit folder `built` as the participant's new version and return its ref.

        The kit it replaces is kept as the previous version (until drop_previous or
        restore_previous); an older previous version is deleted. The current kit is never
        seen half-written: the new one is whole beside it before it takes its place.
        """

    @abstractmethod
    def previous(self, federation: str, participant: str) -> Path | None:
        """The folder of the participant's previous version, if one is kept."""

    @abstractmethod
    def drop_previous(self, federation: str, participant: str) -> None:
        """Delete the previous version (its keys with it): the new one is in use."""

    @abstractmethod
    def restore_previous(self, federation: str, participant: str) -> bool:
        """Put the previous version back in place of the current one (a renewal that was
        never recorded); False when there is none. A new version still on its way in goes."""

    @abstractmethod
    def discard_incoming(self, federation: str, participant: str) -> None:
        """Delete a new version that never took its place (a renewal cut short)."""

    @abstractmethod
    def unsettled(self, federation: str) -> list[str]:
        """Participants with a previous version kept or a new one on its way in."""

    def resolve(self, kit_ref: str) -> Path:
        """The local folder behind a kit ref (only `file:` refs are local)."""
        return resolve(kit_ref)


def local_path(ref: str, field: str = "ref") -> Path:
    """The path behind a `file:<absolute path>` ref (kits, job results); any other scheme
    is not on this machine. Errors name the field the ref came from."""
    if not ref.startswith(FILE_SCHEME):
        raise ValueError(f"{field} {ref!r} is not on this machine: only "
                         "'file:<absolute path>' refs resolve here")
    path = Path(ref[len(FILE_SCHEME):])
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{field} {ref!r} must name an absolute path without '..'")
    return path


def resolve(kit_ref: str) -> Path:
    """The folder behind a `file:` kit ref; any other scheme is not on this machine."""
    path = local_path(kit_ref, "kit_ref")
    if not (path / "startup").is_dir():
        raise KitNotFound(f"no startup kit at {path}")
    return path


def file_ref(path: Path) -> str:
    return f"{FILE_SCHEME}{path.resolve()}"




def lock_down(root: Path) -> None:
    """Folders 0700, private keys 0600, everything else at most 0700/0600 for the owner only."""
    os.chmod(root, PRIVATE_DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), PRIVATE_DIR_MODE)
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            # keep the owner's execute bit (start.sh), drop group and other
            owner = PRIVATE_FILE_MODE | (stat.S_IXUSR if mode & stat.S_IXUSR else 0)
            os.chmod(path, PRIVATE_FILE_MODE if name.endswith(KEY_SUFFIXES) else owner)


#: beside a federation's kits: versions a renewal replaced, and new ones on their way in
PREVIOUS, INCOMING = ".previous", ".incoming"


def _move(source: Path, target: Path) -> None:
    """Rename (same file system: O(1)), else copy then delete; the target must not exist."""
    try:
        os.replace(source, target)
    except OSError:
        shutil.copytree(source, target, symlinks=True)  # keeps the modes already set
        shutil.rmtree(source)


class FolderKitStore(KitStore):
    """Kits under `<root>/<federation>/<participant>/` (root is `<data_dir>/kits`); a renewed
    kit's previous version under `<root>/<federation>/.previous/<participant>/`."""

    def __init__(self, root: Path) -> None:
        self.root = private_dir(Path(root).resolve())

    def _folder(self, federation: str, participant: str) -> Path:
        for part in (federation, participant):
            if not part or "/" in part or part in (".", ".."):
                raise ValueError(f"kit store names must be plain names, got {part!r}")
        return self.root / federation / participant

    @traced("kit_store put", attributes={"arcflare.kit_store": "folder"})
    def put(self, federation: str, participant: str, built: Path) -> str:
        target = self._folder(federation, participant)
        private_dir(target.parent)
        lock_down(built)  # private before it appears under its final name
        if target.exists():
            shutil.rmtree(target)
        _move(built, target)
        return file_ref(target)

    def _aside(self, federation: str, where: str, participant: str) -> Path:
        return self._folder(federation, participant).parent / where / participant

    @traced("kit_store replace", attributes={"arcflare.kit_store": "folder"})
    def replace(self, federation: str, participant: str, built: Path) -> str:
        target = self._folder(federation, participant)
        incoming = self._aside(federation, INCOMING, participant)
        previous = self._aside(federation, PREVIOUS, participant)
        private_dir(incoming.parent)
        private_dir(previous.parent)
        lock_down(built)
        shutil.rmtree(incoming, ignore_errors=True)  # an attempt that never got in
        _move(built, incoming)  # whole, beside its place, before anything is swapped
        shutil.rmtree(previous, ignore_errors=True)
        # two renames: a crash between them leaves no current kit, which restore_previous mends
        if target.exists():
            os.replace(target, previous)
        os.replace(incoming, target)
        return file_ref(target)

    def previous(self, federation: str, participant: str) -> Path | None:
        folder = self._aside(federation, PREVIOUS, participant)
        return folder if (folder / "startup").is_dir() else None

    def drop_previous(self, federation: str, participant: str) -> None:
        shutil.rmtree(self._aside(federation, PREVIOUS, participant), ignore_errors=True)

    def restore_previous(self, federation: str, participant: str) -> bool:
        self.discard_incoming(federation, participant)
        previous = self.previous(federation, participant)
        if previous is None:
            return False
        target = self._folder(federation, participant)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(previous, target)
        return True

    def discard_incoming(self, federation: str, participant: str) -> None:
        shutil.rmtree(self._aside(federation, INCOMING, participant), ignore_errors=True)

    def unsettled(self, federation: str) -> list[str]:
        found = set()
        for where in (PREVIOUS, INCOMING):
            folder = self._folder(federation, where)
            if folder.is_dir():
                found.update(p.name for p in folder.iterdir())
        return sorted(found)

    def ref(self, federation: str, participant: str) -> str | None:
        target = self._folder(federation, participant)
        return file_ref(target) if (target / "startup").is_dir() else None

    @traced("kit_store remove", attributes={"arcflare.kit_store": "folder"})
    def remove(self, federation: str, participant: str) -> None:
        shutil.rmtree(self._folder(federation, participant), ignore_errors=True)
        for where in (PREVIOUS, INCOMING):
            shutil.rmtree(self._aside(federation, where, participant), ignore_errors=True)

    def participants(self, federation: str) -> list[str]:
        folder = self.root / federation
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "startup").is_dir())
