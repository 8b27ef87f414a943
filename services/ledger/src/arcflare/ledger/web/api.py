"""The read-only JSON API over the read model (what `arcflare status` and the console read).

Every route answers JSON; errors are {"error": "<one sentence>"}. Off loopback each read is
limited to the federations the reader is an admin or member of (arcflare.ledger.access).
"""
from __future__ import annotations

from typing import Annotated, Any

from arcflare.ledger import console_queries, queries
from arcflare.ledger.access import Reader
from arcflare.ledger.web.context import Db, ReaderDep, context
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

MAX_LIMIT = 10_000
router = APIRouter()
Federation = Annotated[str | None, Query(description="only this federation")]


def limit_of(default: int) -> Any:
    return Query(default, ge=1, le=MAX_LIMIT, description="at most this many rows, the newest")


def _json(value: Any) -> JSONResponse:
    return JSONResponse(value)


def _found(value: Any, what: str) -> JSONResponse:
    if value is None:
        raise HTTPException(404, f"no such {what}")
    return _json(value)


@router.get("/federations", tags=["federations"], summary="Every federation the reader may read")
def list_federations(db: Db, reader: ReaderDep) -> JSONResponse:
    return _json(reader.only_readable(queries.federations(db), key="name"))


@router.get("/overview", tags=["federations"],
            summary="Per federation: sites up/degraded/down, running jobs, recent alerts, "
                    "nearest certificate expiry")
def overview(db: Db, reader: ReaderDep) -> JSONResponse:
    return _json(console_queries.overview(db, reader.federations))


@router.get("/federations/{federation}", tags=["federations"],
            summary="One federation with its sites (state, health, diagnosis, server view, "
                    "NVFlare version), jobs and certificates")
def federation(federation: str, db: Db, reader: ReaderDep) -> JSONResponse:
    reader.check(federation)
    return _found(console_queries.federation_view(db, federation), f"federation {federation}")


@router.get("/federations/{federation}/jobs/{job_id}", tags=["jobs"],
            summary="A job with its status history and final metrics")
def job(federation: str, job_id: str, db: Db, reader: ReaderDep) -> JSONResponse:
    reader.check(federation)
    return _found(queries.job(db, federation, job_id), f"job {job_id}")


@router.get("/federations/{federation}/jobs/{job_id}/metrics", tags=["jobs"],
            summary="Every metric of a job round by round: a line per site and a global one")
def job_metrics(federation: str, job_id: str, db: Db, reader: ReaderDep) -> JSONResponse:
    reader.check(federation)
    return _json(console_queries.job_series(db, federation, job_id))


@router.get("/federations/{federation}/sites/{site}", tags=["sites"],
            summary="A site with its health history and the jobs it takes part in")
def site(federation: str, site: str, db: Db, reader: ReaderDep) -> JSONResponse:
    reader.check(federation)
    return _found(console_queries.site_view(db, federation, site), f"site {site}")


@router.get("/federations/{federation}/sites/{site}/logs", tags=["sites"],
            summary="A site's recent log tails, redacted by its agent")
def logs(federation: str, site: str, db: Db, reader: ReaderDep,
         limit: int = limit_of(20)) -> JSONResponse:
    reader.check(federation)
    return _json(queries.log_tails(db, federation, site, limit))


@router.get("/federations/{federation}/flare-events", tags=["federations"],
            summary="Recent NVFlare events of a federation")
def flare_events(federation: str, db: Db, reader: ReaderDep,
                 limit: int = limit_of(50)) -> JSONResponse:
    reader.check(federation)
    return _json(queries.flare_events(db, federation, limit))


@router.get("/audit", tags=["audit"], summary="Command outcomes, oldest first")
def audit(db: Db, reader: ReaderDep, federation: Federation = None,
          limit: int = limit_of(200)) -> JSONResponse:
    return _json(_per_federation(queries.audit, db, reader, federation, limit))


@router.get("/alerts", tags=["audit"], summary="Alerts raised, oldest first")
def alerts(db: Db, reader: ReaderDep, federation: Federation = None,
           limit: int = limit_of(200)) -> JSONResponse:
    return _json(_per_federation(queries.alerts, db, reader, federation, limit))


@router.get("/whoami", tags=["console"],
            summary="Who the ledger takes the reader for, what they may read, console settings")
def whoami(request: Request, db: Db, reader: ReaderDep) -> JSONResponse:
    federations = None if reader.federations is None else sorted(reader.federations)
    return _json({"reader": reader.name,
                  "principal": reader.principal.id if reader.principal else None,
                  "federations": federations,
                  "mlflow_ui_url": context(request).mlflow_ui_url})


def _per_federation(query: Any, db: Any, reader: Reader, federation: str | None,
                    limit: int) -> list[dict[str, Any]]:
    """A query of rows over all federations, or one, for what this reader may see; rows of
    several federations merge by time and keep the newest `limit`."""
    if federation is not None:
        reader.check(federation)
        return query(db, federation, limit)
    if reader.federations is None:
        return query(db, None, limit)
    rows = [r for name in sorted(reader.federations) for r in query(db, name, limit)]
    return sorted(rows, key=lambda r: r.get("occurred_at") or "")[-limit:]
