"""The read-only JSON API over the read model, on loopback (what `arcflare status` reads).

    GET /federations                               every federation
    GET /federations/{fed}                         one, with sites, jobs, certificates
    GET /federations/{fed}/jobs/{job_id}           a job with its status history and metrics
    GET /federations/{fed}/sites/{site}/logs       recent log tails (?limit=)
    GET /federations/{fed}/flare-events            recent NVFlare events (?limit=)
    GET /audit?federation=&limit=                  command outcomes, oldest first
    GET /alerts?federation=&limit=                 alerts raised
    GET /healthz, /readyz                          probes (this port is the ledger's health port)
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from arcflare.ledger import queries
from arcflare.runtime import get_logger

log = get_logger("arcflare.ledger")
Answer = tuple[int, Any]
Route = Callable[[sqlite3.Connection, dict[str, str], dict[str, str]], Answer]
MAX_LIMIT = 10_000


def _limit(query: dict[str, str], default: int) -> int:
    raw = query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}")
    return int(raw)


def _found(value: Any, what: str) -> Answer:
    return (200, value) if value is not None else (404, {"error": f"no such {what}"})


ROUTES: list[tuple[re.Pattern[str], Route]] = [
    (re.compile(r"^/federations$"), lambda db, p, q: (200, queries.federations(db))),
    (re.compile(r"^/federations/(?P<fed>[^/]+)$"),
     lambda db, p, q: _found(queries.federation(db, p["fed"]), f"federation {p['fed']}")),
    (re.compile(r"^/federations/(?P<fed>[^/]+)/jobs/(?P<job>[^/]+)$"),
     lambda db, p, q: _found(queries.job(db, p["fed"], p["job"]), f"job {p['job']}")),
    (re.compile(r"^/federations/(?P<fed>[^/]+)/sites/(?P<site>[^/]+)/logs$"),
     lambda db, p, q: (200, queries.log_tails(db, p["fed"], p["site"], _limit(q, 20)))),
    (re.compile(r"^/federations/(?P<fed>[^/]+)/flare-events$"),
     lambda db, p, q: (200, queries.flare_events(db, p["fed"], _limit(q, 50)))),
    (re.compile(r"^/audit$"),
     lambda db, p, q: (200, queries.audit(db, q.get("federation"), _limit(q, 200)))),
    (re.compile(r"^/alerts$"),
     lambda db, p, q: (200, queries.alerts(db, q.get("federation"), _limit(q, 200)))),
]


class LedgerApi:
    """A ThreadingHTTPServer on its own thread; each request reads with its own connection."""

    def __init__(self, db_path: Path, host: str, port: int, port_file: Path,
                 readiness: Callable[[], dict] | None = None) -> None:
        self.db_path = db_path
        self.readiness = readiness or (lambda: {"ready": True})
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.port_file = port_file
        port_file.parent.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(self.port))
        self._thread = threading.Thread(target=self.server.serve_forever, name="ledger-api",
                                        daemon=True)
        self._thread.start()
        log.info("ledger API listening", url=f"http://{host}:{self.port}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.port_file.exists() and self.port_file.read_text() == str(self.port):
            self.port_file.unlink()

    def answer(self, target: str) -> Answer:
        parts = urlsplit(target)
        path = unquote(parts.path).rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/readyz":
            report = self.readiness()
            return (200 if report.get("ready") else 503), report
        for pattern, route in ROUTES:
            match = pattern.match(path)
            if match:
                try:
                    with self._read_only() as db:
                        return route(db, match.groupdict(), query)
                except ValueError as exc:
                    return 400, {"error": str(exc)}
        return 404, {"error": f"no such path {path}"}

    def _read_only(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10,
                             check_same_thread=False)
        return _Closing(db)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                try:
                    code, body = api.answer(self.path)
                except Exception:  # a bug: answer 500 and keep the traceback in the log
                    log.exception("ledger API request failed", path=self.path)
                    code, body = 500, {"error": "internal error; see the ledger's log"}
                data = json.dumps(body, default=str, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self.send_error(405, "the ledger API is read-only")

            do_PUT = do_DELETE = do_PATCH = do_POST

            def log_message(self, *args: object) -> None:
                pass

        return _Handler


class _Closing:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc: object) -> None:
        self.db.close()
