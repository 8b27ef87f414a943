"""`python -m arcflare.localstack DATA_DIR [--isolated]`: the supervisor behind `arcflare local
up` (--isolated: each process on a data dir of its own, arcflare.localstack.layout)."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from arcflare.localstack.layout import IsolatedLayout
from arcflare.localstack.supervisor import Supervisor
from arcflare.runtime.files import private_umask
from arcflare.runtime.logging import configure_logging

if __name__ == "__main__":
    private_umask()
    configure_logging("supervisor", fmt="json")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    root = Path(sys.argv[1]).resolve()
    layout = IsolatedLayout(root) if "--isolated" in sys.argv[2:] else None
    Supervisor(root, layout=layout).run(stop)
