"""What every route shares: the read model (read-only), the access gate, the live feed."""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from arcflare.ledger.access import Gate, Reader, RequestFacts
from arcflare.ledger.live import LiveFeed
from arcflare.ledger.sessions import COOKIE, Sessions
from fastapi import Depends, Request


@dataclass
class ApiContext:
    db_path: Path
    gate: Gate
    sessions: Sessions
    live: LiveFeed
    readiness: Callable[[], dict]
    login_max_age_s: float = 300.0
    live_interval_s: float = 0.25
    mlflow_ui_url: str | None = None
    #: the session cookie is sent over HTTPS only
    secure_cookie: bool = False

    def read_only(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10,
                               check_same_thread=False)


def context(request: Request) -> ApiContext:
    return request.app.state.context


def facts(request: Request) -> RequestFacts:
    """Method, the target exactly as sent (what a request proof signs), Host and credentials."""
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if request.url.query:
        target += "?" + request.scope["query_string"].decode("latin-1")
    return RequestFacts(method=request.method, target=target,
                        host=request.headers.get("host", ""),
                        authorization=request.headers.get("authorization"),
                        session=request.cookies.get(COOKIE))


def read_db(request: Request) -> Iterator[sqlite3.Connection]:
    db = context(request).read_only()
    try:
        yield db
    finally:
        db.close()


Db = Annotated[sqlite3.Connection, Depends(read_db)]


def reader(request: Request, db: Db) -> Reader:
    return context(request).gate.reader(facts(request), db)


ReaderDep = Annotated[Reader, Depends(reader)]
