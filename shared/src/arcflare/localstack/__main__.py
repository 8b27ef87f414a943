"""`python -m arcflare.localstack DATA_DIR`: the supervisor behind `arcflare local up`."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from arcflare.localstack.supervisor import Supervisor
from arcflare.runtime.files import private_umask
from arcflare.runtime.logging import configure_logging

if __name__ == "__main__":
    private_umask()
    configure_logging("supervisor", fmt="json")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Supervisor(Path(sys.argv[1]).resolve()).run(stop)
