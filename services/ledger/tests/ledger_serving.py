"""A running ledger for tests: events in through the embedded bus, reads over real HTTP."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from arcflare.bus import connect
from arcflare.contracts.envelope import Envelope
from arcflare.ledger.bootstrap import PORT_FILE, bootstrap
from arcflare.ledger.settings import LedgerSettings
from arcflare.runtime import Service

from tests.support.signing import send_as_authors


def publish(settings: LedgerSettings, envelopes: list[Envelope]) -> None:
    """Each envelope signed by the principal entitled to say it, as the real senders would."""
    with connect(settings) as bus:
        send_as_authors(bus, settings.data_dir, envelopes)


@contextmanager
def serving(settings: LedgerSettings, envelopes: list[Envelope] = ()) -> Iterator[
        tuple[Service, int]]:
    """The ledger service with `envelopes` projected, its consumers and HTTP side running."""
    publish(settings, list(envelopes))
    service = bootstrap(settings)
    service.drain(timeout=30)
    service.start()
    try:
        port_file = settings.data_dir / "run" / PORT_FILE
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            service.stopping.wait(0.05)
        yield service, int(port_file.read_text())
    finally:
        service.stop()


def get(port: int, path: str, headers: dict[str, str] | None = None,
        ) -> tuple[int, dict, object]:
    """(status, headers, JSON body) of a GET on 127.0.0.1."""
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
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer to look at
        return None
