"""The operator console: one page shell, static assets served from this package (nothing from
elsewhere), the sign-in link off loopback, and the live stream of changes.

Pages render in the browser from the JSON API, so a field the read model gains shows up
without a change here; the stream only says what changed, and each page re-reads its JSON.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
from contextlib import closing
from functools import cache
from importlib import resources
from typing import Annotated

from arcflare.ledger import live as live_feed
from arcflare.ledger.access import Reader
from arcflare.ledger.sessions import COOKIE
from arcflare.ledger.web.context import context, facts
from arcflare.trust import Unauthenticated
from arcflare.trust.requests import SIGN_IN_PATH
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

router = APIRouter()
STATIC = resources.files("arcflare.ledger.web") / "static"
ASSETS = {"app.js": "text/javascript", "dom.js": "text/javascript",
          "pages.js": "text/javascript", "job.js": "text/javascript",
          "records.js": "text/javascript", "charts.js": "text/javascript",
          "console.css": "text/css", "favicon.svg": "image/svg+xml"}
#: an asset URL names the release it belongs to, so what it serves never changes
ASSET_CACHE = "public, max-age=31536000, immutable"


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@cache
def version() -> str:
    """A digest of every asset: their URLs carry it, so browsers keep them for good and a
    new release is fetched anew (scripts import each other relatively, under the same one)."""
    return hashlib.sha256(b"".join(_asset(n) for n in sorted(ASSETS))).hexdigest()[:12]


@cache
def _shell() -> str:
    return (STATIC / "index.html").read_text().replace("{{v}}", version())


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/static/{release}/{name}", include_in_schema=False)
def asset(release: str, name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    cache_control = ASSET_CACHE if release == version() else "no-cache"
    return Response(_asset(name), media_type=ASSETS[name],
                    headers={"Cache-Control": cache_control})


@router.get(SIGN_IN_PATH, include_in_schema=False)
def login(request: Request, proof: Annotated[str | None, Query()] = None) -> Response:
    """Opens a session for the person who signed `proof` (arcflare console --open)."""
    ctx = context(request)
    if ctx.gate.open_to_all:
        return RedirectResponse("/console/", status_code=303)
    if not proof:
        return _signed_out("This sign-in link has no proof in it.")
    try:
        principal = ctx.gate.requests.verify(
            proof, method="GET", target=SIGN_IN_PATH, host=request.headers.get("host", ""),
            max_age_s=ctx.login_max_age_s)
        if principal.kind != "person":
            raise Unauthenticated(f"{principal.id} is not a person")
        token = ctx.sessions.open(principal, proof, ctx.login_max_age_s + 60)
    except Unauthenticated as exc:
        return _signed_out(f"Sign-in refused: {exc.description}")
    answer = RedirectResponse("/console/", status_code=303)
    answer.set_cookie(COOKIE, token, max_age=int(ctx.sessions.lifetime_s), httponly=True,
                      samesite="strict", secure=ctx.secure_cookie, path="/")
    return answer


@router.get("/console/{page:path}", include_in_schema=False)
def page(page: str) -> HTMLResponse:
    return HTMLResponse(_shell(), headers={"Cache-Control": "no-cache"})


@router.get("/live", tags=["console"], summary="Server-Sent Events: what the ledger just "
            "projected (federation, site, job, event type), in batches",
            response_class=StreamingResponse)
async def live(request: Request) -> StreamingResponse:
    ctx = context(request)
    asked = facts(request)

    def reader() -> Reader:
        with closing(ctx.read_only()) as db:
            return ctx.gate.reader(asked, db)

    await asyncio.to_thread(reader)  # refuse at once, before the stream starts
    body = live_feed.stream(ctx.live, lambda: asyncio.to_thread(reader), ctx.live_interval_s,
                            request.is_disconnected)
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _signed_out(message: str) -> HTMLResponse:
    body = (_shell().replace("<main id=\"page\">",
                             "<main id=\"page\"><p class=\"notice\" id=\"signed-out\">"
                             f"{html.escape(message)} Run <code>arcflare console --open</code> "
                             "for a new link.</p>", 1))
    return HTMLResponse(body, status_code=401)
