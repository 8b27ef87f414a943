"""A loopback webhook receiver, and envelopes at chosen times."""
from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from arcflare.alerter.tables import MIGRATIONS
from arcflare.contracts import events as e
from arcflare.contracts.base import Message
from arcflare.contracts.envelope import Envelope
from arcflare.runtime import StateStore

from tests.support.signing import identities_in

sys.path.insert(0, str(Path(__file__).parent))
from webhook_support import FED, Clock

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def envelope_at(message: Message, seconds: float, causation_id: str | None = None) -> Envelope:
    env = Envelope.wrap(message, causation_id=causation_id, issued_by="owner@consortium.org")
    return env.model_copy(update={"occurred_at": T0 + timedelta(seconds=seconds)})


class Receiver:
    """Answers POSTs with the scripted status codes (then 200); 'slow' sleeps first."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.script: list[int | str] = []
        self.release = threading.Event()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.headers.append(dict(self.headers))
                receiver.requests.append(body)
                step = receiver.script.pop(0) if receiver.script else 200
                if step == "slow":
                    receiver.release.wait(10)
                    step = 200
                try:
                    self.send_response(int(step))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the client gave up (timeout) and closed the socket
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.requests

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def at():
    return envelope_at


@pytest.fixture(autouse=True)
def _identities(tmp_path):
    """Every test's data dir holds the identities `arcflare local up` would create."""
    identities_in(tmp_path / "data")


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "alerter.db", migrations=MIGRATIONS)


@pytest.fixture
def clock(at) -> Clock:
    return Clock(at(e.SiteRemoved(federation=FED, site="x"), 0).occurred_at)
