"""Waking waiting receivers the moment a message becomes available.

Polling alone trades latency for idle CPU. So a receiver about to wait binds a
Unix datagram socket in the abstract namespace and registers it as an empty
file under `<bus file>.doorbell/<entity>/`; whoever makes a message available
in that entity sends one byte to every registered socket. A registration
whose socket is gone (its process was killed) is removed by the next ringer.
Receivers still poll slowly (see waiting.py), so a lost ring — or a platform
without abstract sockets — only costs latency, never a message.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

#: abstract socket names (no file, no path-length limit, nothing left behind) are Linux-only
_ABSTRACT = os.uname().sysname == "Linux"


def _network_namespace() -> str:
    # abstract names are per network namespace: containers sharing the bus file through a
    # volume must neither ring nor remove each other's registrations
    try:
        return str(os.stat("/proc/self/ns/net").st_ino)
    except OSError:
        return "0"


_PREFIX = _network_namespace() + "-"


def _folder(root: Path, entity: str) -> Path:
    return root / hashlib.blake2s(entity.encode(), digest_size=6).hexdigest()


class Doorbell:
    def __init__(self, db_path: Path) -> None:
        self.root = Path(f"{db_path}.doorbell")
        self.enabled = _ABSTRACT
        self._local = threading.local()
        self._listeners: list[tuple[threading.Thread, Listener]] = []
        self._guard = threading.Lock()
        if self.enabled:
            self.root.mkdir(exist_ok=True)
            self._ringer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._ringer.setblocking(False)

    def ring(self, entities: Iterable[str]) -> None:
        if not self.enabled:
            return
        for entity in set(entities):
            folder = _folder(self.root, entity)
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if not name.startswith(_PREFIX):
                    continue
                try:
                    self._ringer.sendto(b"!", b"\0arcflare-" + name.encode())
                except ConnectionRefusedError:  # nobody listens any more: a killed process
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(folder / name)
                except OSError:  # its buffer is full: it has been woken already
                    pass

    def listener(self, entity: str) -> Listener | None:
        """This thread's listener, registered for `entity`; None where unsupported."""
        if not self.enabled:
            return None
        listener = getattr(self._local, "listener", None)
        if listener is None:
            try:
                listener = self._local.listener = Listener(self.root)
            except OSError:
                self.enabled = False
                return None
            with self._guard:
                # a thread that ended took its thread-local with it, not its socket: a
                # process that starts threads for as long as it runs must not gather them
                for thread, old in self._listeners:
                    if not thread.is_alive():
                        old.close()
                self._listeners = [(t, x) for t, x in self._listeners if not x.closed]
                self._listeners.append((threading.current_thread(), listener))
        listener.register(entity)
        return listener

    def close(self) -> None:
        if self.enabled:
            self._ringer.close()
            with self._guard:
                for _, listener in self._listeners:
                    listener.close()
                self._listeners.clear()


class Listener:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = _PREFIX + uuid.uuid4().hex
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(b"\0arcflare-" + self.name.encode())
        self.socket.setblocking(False)
        self.registrations: set[Path] = set()
        self.closed = False

    def register(self, entity: str) -> None:
        folder = _folder(self.root, entity)
        if folder not in self.registrations:
            folder.mkdir(exist_ok=True)
            (folder / self.name).touch()
            self.registrations.add(folder)

    def wait(self, timeout: float) -> bool:
        """Block until rung or timeout; True when rung (every pending ring is consumed)."""
        # poll, not select: select() cannot watch a descriptor numbered 1024 or above,
        # and a busy process (a ledger with many streams) gets there
        poller = select.poll()
        poller.register(self.socket, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return False
        with contextlib.suppress(BlockingIOError):
            while True:
                self.socket.recv(64)
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for folder in self.registrations:
                with contextlib.suppress(OSError):
                    os.unlink(folder / self.name)
            self.socket.close()

    def __del__(self) -> None:
        # also at interpreter exit, when modules may already be torn down
        with contextlib.suppress(Exception):
            self.close()
