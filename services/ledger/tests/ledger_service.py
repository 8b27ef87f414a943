"""The real ledger for tests: events published on the embedded bus, the service draining
them, its HTTP API answering on a free loopback port."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from arcflare.bus import connect
from arcflare.bus.port import entity_path
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.bootstrap import bootstrap
from arcflare.ledger.settings import LedgerSettings
from arcflare.runtime import Service

from tests.support.signing import send_as_authors

LEDGER_ENTITIES = {entity_path(topic, "ledger") for topic in ("events", "telemetry")}


def publish(settings: LedgerSettings, envelopes: list[Envelope]) -> None:
    """Each envelope signed by the principal entitled to say it, as the real senders would."""
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, envelopes)


@contextmanager
def serving(settings: LedgerSettings) -> Iterator[tuple[Service, int]]:
    """The ledger with everything published so far handled, and its API's port."""
    service = bootstrap(settings)
    service.drain(timeout=120)  # a busy machine is slow
    service.start()
    try:
        port_file = settings.data_dir / "run" / "ledger.port"
        deadline = time.monotonic() + 30
        # drain() ends at the first quiet moment; a message abandoned on a busy machine
        # (a locked database) comes back later, so wait until nothing is left for the ledger
        while time.monotonic() < deadline and not (
                port_file.exists() and port_file.read_text() and _all_handled(service)):
            service.stopping.wait(0.05)
        yield service, int(port_file.read_text())
    finally:
        service.stop()


def _all_handled(service: Service) -> bool:
    waiting = [s for s in service.bus.stats() if s.entity_path in LEDGER_ENTITIES
               and (s.active or s.locked)]
    return not waiting


def get(port: int, path: str, headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, str], object]:
    """(status, headers, body: JSON, else text) of a GET on 127.0.0.1; redirects not followed
    (a redirect is an answer to look at)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), _body(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), _body(exc.read())


def _body(data: bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
