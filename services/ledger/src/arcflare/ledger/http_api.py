"""The ledger's HTTP side: the read-only JSON API, the console, the probes — one ASGI app
(FastAPI) served by uvicorn on a thread of the ledger.

    GET /federations, /overview                     federations (readable ones off loopback)
    GET /federations/{fed}                          one, with sites, jobs, certificates
    GET /federations/{fed}/jobs/{job_id}[/metrics]  a job's status history; its metric series
    GET /federations/{fed}/sites/{site}[/logs]      a site's health history; its log tails
    GET /federations/{fed}/flare-events             recent NVFlare events (?limit=)
    GET /audit, /alerts ?federation=&limit=         command outcomes; alerts raised
    GET /live                                       Server-Sent Events of what changed
    GET /console/...                                the operator console
    GET /openapi.json                               this API, described
    GET /healthz, /readyz                           probes (this port is the ledger's health port)
    GET /metrics                                    Prometheus: the runtime's and the fleet's
"""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from arcflare.ledger.access import PROBES, Gate, NotReadable
from arcflare.ledger.live import LiveFeed
from arcflare.ledger.sessions import Sessions
from arcflare.ledger.settings import LedgerSettings
from arcflare.ledger.web import api, console
from arcflare.ledger.web.context import ApiContext
from arcflare.observability.metrics import exposition
from arcflare.runtime import get_logger, identity
from arcflare.runtime.addresses import host_name, is_loopback, is_wildcard
from arcflare.trust import Unauthenticated
from arcflare.trust.requests import SCHEME, RequestVerifier
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

log = get_logger("arcflare.ledger")
#: what a browser may load and from where: this origin only, no inline code
SECURITY_HEADERS = [
    (b"content-security-policy", (b"default-src 'self'; img-src 'self' data:; "
                                  b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def create_app(ctx: ApiContext, allowed_hosts: set[str]) -> FastAPI:
    app = FastAPI(title="ArcFlare ledger", version="1",
                  description="The read model of ArcFlare federations: sites, jobs, metrics, "
                              "audit and alerts. Read-only.",
                  docs_url=None, redoc_url=None)  # their pages load scripts from a CDN
    app.state.context = ctx

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        report = ctx.readiness()
        return JSONResponse(report, status_code=200 if report.get("ready") else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """For Prometheus, which signs nothing: counts and ages by federation and site, no
        person's data; off loopback, who can reach this port is the network's to decide."""
        data, content_type = exposition()
        return Response(data, media_type=content_type)

    app.include_router(api.router)
    app.include_router(console.router)
    _answer_errors_in_one_sentence(app)
    app.add_middleware(_Guard, allowed_hosts=allowed_hosts)
    return app


def _answer_errors_in_one_sentence(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        problem = str(exc.detail)
        if exc.status_code == 404 and problem == "Not Found":
            problem = f"no such path {request.url.path}"
        elif exc.status_code == 405:
            problem = "the ledger API is read-only"
        return JSONResponse({"error": problem}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems)}, status_code=400)

    @app.exception_handler(Unauthenticated)
    def unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        return JSONResponse({"error": exc.description}, status_code=401,
                            headers={"WWW-Authenticate": SCHEME})

    @app.exception_handler(NotReadable)
    def forbidden(request: Request, exc: NotReadable) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    @app.exception_handler(Exception)
    def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("ledger API request failed", path=request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error; see the ledger's log"}, status_code=500)


class _Guard:
    """Every answer but a probe's needs a Host this ledger answers to; every answer carries
    the security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: set[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if scope["path"] not in PROBES and not self._allows(host):
            answer = JSONResponse({"error": f"Host {host!r} is not a name this ledger answers "
                                   "to (ARCFLARE_LEDGER_ALLOWED_HOSTS)"}, status_code=421)
            await answer(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _allows(self, host: str) -> bool:
        host = host.strip().lower()
        return bool(host) and (host in self.allowed or is_loopback(host_name(host))
                               or host_name(host) in self.allowed)


class LedgerApi:
    """The HTTP server on its own thread; each request reads with its own connection."""

    def __init__(self, db_path: Path, host: str, port: int, port_file: Path,
                 readiness: Callable[[], dict] | None = None, *,
                 settings: LedgerSettings | None = None, live: LiveFeed | None = None) -> None:
        s = settings or LedgerSettings(ledger_host=host, ledger_port=port)
        self.live = live or LiveFeed()
        open_to_all = is_loopback(host)
        gate = Gate(open_to_all=open_to_all, sessions=Sessions(s.ledger_session_hours * 3600),
                    requests=None if open_to_all else RequestVerifier(
                        identity.verifier(s), max_age_s=s.ledger_request_max_age_s,
                        clock_skew_s=s.clock_skew_s))
        ctx = ApiContext(db_path=db_path, gate=gate, sessions=gate.sessions, live=self.live,
                         readiness=readiness or (lambda: {"ready": True}),
                         login_max_age_s=s.ledger_login_max_age_s,
                         live_interval_s=s.ledger_live_interval_s,
                         mlflow_ui_url=s.ledger_mlflow_ui_url,
                         secure_cookie=s.ledger_tls_cert is not None)
        allowed = {*s.ledger_allowed_hosts, *([] if is_wildcard(host) else [host])}
        config = uvicorn.Config(
            create_app(ctx, allowed), log_config=None, access_log=False, lifespan="off",
            server_header=False, timeout_graceful_shutdown=2,
            ssl_certfile=s.ledger_tls_cert, ssl_keyfile=s.ledger_tls_key)
        self._server = uvicorn.Server(config)
        self._socket = _listen(host, port)
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="ledger-api", daemon=True)
        self._thread.start()
        _wait_started(self._server, self._thread)
        self.port_file = port_file
        port_file.parent.mkdir(parents=True, exist_ok=True)
        port_file.write_text(str(self.port))
        scheme = "https" if s.ledger_tls_cert else "http"
        log.info("ledger API listening", url=f"{scheme}://{host}:{self.port}",
                 authenticated=not open_to_all)

    def close(self) -> None:
        self.live.close()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        if self.port_file.exists() and self.port_file.read_text() == str(self.port):
            self.port_file.unlink()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the ledger's HTTP server did not start; see the log above")
        time.sleep(0.01)
