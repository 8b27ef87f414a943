"""Local mode: the server's port is a free one, chosen once when the federation is created."""
from __future__ import annotations

import socket
import sqlite3


def free_port(taken: set[int], attempts: int = 50) -> int:
    """A port nothing listens on now and no other federation here was given."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("", 0))
            port = sock.getsockname()[1]
        if port not in taken and port >= 1024:
            return port
    raise RuntimeError("no free TCP port found for the federation's server")


def ports_in_use(db: sqlite3.Connection) -> set[int]:
    return {port for (port,) in db.execute("SELECT server_port FROM federations")}
