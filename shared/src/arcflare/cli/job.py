"""`arcflare job submit | abort | list`: NVFlare jobs as commands, with their outcome.

`job list` folds the job events on the bus (JobWaitingForClients, JobSubmitted,
JobStatusChanged, JobCompleted, JobFailed) into one row per job, so it needs no
service's database. Until NVFlare gives a job its id, the job is known by the id of
the SubmitJob that asked for it (which `job abort` accepts too).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from arcflare.artifacts import open_artifact_store
from arcflare.cli.common import (
    AsPrincipal,
    DataDir,
    Json,
    Timeout,
    Wait,
    build,
    client_for,
    console,
    describe_failure,
    envelope_json,
    fail,
    out,
    print_json,
    send_command,
    settings_for,
)
from arcflare.cli.job_result import result
from arcflare.client.job_packages import job_name as default_job_name
from arcflare.client.job_packages import upload_job
from arcflare.contracts.commands import AbortJob, RecipePackage, SubmitJob
from arcflare.contracts.envelope import Envelope
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Submit, abort and list NVFlare jobs.", no_args_is_help=True)
Federation = Annotated[str, typer.Argument(help="The federation (NVFlare project) name.")]
JOB_EVENTS = ["JobWaitingForClients", "JobSubmitted", "JobStatusChanged", "JobCompleted", "JobFailed"]
#: `job list` states of a job NVFlare has not got (yet); NVFlare's own states are shown verbatim
WAITING, NOT_SUBMITTED = "WAITING_FOR_CLIENTS", "FAILED_TO_SUBMIT"


def parse_param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        fail(f"--param: expected key=value, got {text!r}", code=2)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw  # a bare word is a string


def package_for(path: Path | None, recipe: str | None, params: list[str], data_dir: Path | None):
    """A recipe, or the job at PATH uploaded to the artifact store: only its reference goes
    on the bus, so the job-controller may run anywhere."""
    if (path is None) == (recipe is None):
        fail("give either a job PATH or --recipe NAME", code=2)
    if recipe:
        return RecipePackage(recipe=recipe, parameters=dict(parse_param(p) for p in params))
    if params:
        fail("--param only applies to --recipe", code=2)
    try:
        return upload_job(open_artifact_store(settings_for(data_dir)), path)
    except ValueError as exc:
        fail(f"PATH: {exc}", code=2)


def submit(
    federation: Federation,
    path: Annotated[Path | None, typer.Argument(
        help="A job folder or .zip/.tar(.gz): uploaded to the artifact store.")] = None,
    recipe: Annotated[str | None, typer.Option("--recipe", help="A built-in recipe, e.g. fedavg-logreg.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Recipe parameter k=v (repeatable).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Job name (default: folder or recipe).")] = None,
    min_clients: Annotated[int, typer.Option("--min-clients")] = 1,
    site: Annotated[list[str] | None, typer.Option("--site", help="Run on these sites only.")] = None,
    job_timeout: Annotated[int, typer.Option("--job-timeout", help="Seconds the job may run once submitted.")] = 3600,
    clients_timeout: Annotated[int, typer.Option(
        "--clients-timeout", help="Seconds to wait for --min-clients sites to connect.")] = 600,
    wait: Wait = False, timeout: Timeout = 3600.0, data_dir: DataDir = None,
    as_: AsPrincipal = None, json_out: Json = False,
) -> None:
    """Submit a job; with --wait follow it to its end with a progress bar of rounds."""
    package = package_for(path, recipe, param or [], data_dir)
    job_name = name or (recipe if recipe else default_job_name(path))
    command = build(lambda: SubmitJob(
        federation=federation, name=job_name, package=package, min_clients=min_clients,
        sites=site or None, timeout_s=job_timeout, clients_timeout_s=clients_timeout))
    accepted = send_command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out and not wait,
                            timeout=timeout, what=f"submission of {job_name}")
    if accepted is None:
        return
    submitted, ended = follow_job(accepted, data_dir, timeout, quiet=json_out)
    if json_out:
        print_json({"accepted": envelope_json(accepted),
                    "submitted": submitted and envelope_json(submitted), "completed": envelope_json(ended)})
    if ended.type == "JobFailed":
        if not json_out:
            fail(describe_failure(ended))
        raise typer.Exit(1)
    if ended.payload.get("status") != "FINISHED:COMPLETED":
        if not json_out:
            fail(f"job {ended.payload['job_id']} ended {ended.payload.get('status')}"
                 + (f": {ended.payload['reason']}" if ended.payload.get("reason") else ""))
        raise typer.Exit(1)


def _waiting(name: str, waiting: dict) -> str:
    return f"{name} {WAITING} {len(waiting['connected'])}/{waiting['min_clients']}"


def follow_job(accepted: Envelope, data_dir: Path | None, timeout: float, *,
               quiet: bool) -> tuple[Envelope | None, Envelope]:
    """From the SubmitJob's acceptance to the job's end: (JobSubmitted, JobCompleted), or
    (None, JobFailed or JobCompleted) for a job that never reached NVFlare."""
    submit_id, name = accepted.causation_id, accepted.payload["name"]
    job_id, rounds, submitted = submit_id, accepted.payload.get("rounds"), None
    if accepted.type == "JobSubmitted":
        job_id, submitted = accepted.payload["job_id"], accepted
    with client_for(data_dir) as client, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet,
    ) as progress:
        bar = progress.add_task(name, total=rounds)
        done_rounds = 0
        for env in client.follow(types=[*JOB_EVENTS, "MetricsReported"], timeout=timeout,
                                 topics=("events", "telemetry"), from_start=True):
            p = env.payload
            if env.causation_id == submit_id and submitted is None:
                if env.type == "JobWaitingForClients":
                    progress.update(bar, description=_waiting(name, p))
                elif env.type == "JobSubmitted":
                    job_id, rounds, submitted = p["job_id"], p.get("rounds"), env
                    progress.update(bar, description=f"{name} SUBMITTED", total=rounds)
                elif env.type == "JobFailed":
                    return None, env
            if p.get("job_id") != job_id:
                continue
            if env.type == "MetricsReported":
                done_rounds = max([done_rounds, *(pt["step"] + 1 for pt in p["points"])])
                progress.update(bar, completed=min(done_rounds, rounds or done_rounds))
            elif env.type == "JobStatusChanged":
                progress.update(bar, description=f"{name} {p['status']}")
            elif env.type == "JobCompleted":
                if p["status"] == "FINISHED:COMPLETED" and rounds:
                    progress.update(bar, completed=rounds)
                progress.update(bar, description=f"{name} {p['status']}")
                return submitted, env
    fail(f"job {job_id} did not end within {timeout:.0f} s (it keeps running; see `arcflare job list`)")


def abort(
    federation: Federation,
    job_id: Annotated[str, typer.Argument(
        help="The NVFlare job id, or the SubmitJob's id (a job still waiting for clients).")],
    wait: Wait = False, timeout: Timeout = 300.0, data_dir: DataDir = None,
    as_: AsPrincipal = None, json_out: Json = False,
) -> None:
    """Abort a job; with --wait until NVFlare reports it ended."""
    send_command(AbortJob(federation=federation, job_id=job_id), data_dir=data_dir, as_=as_,
                 wait=wait, json_out=json_out, timeout=timeout, what=f"abort of {job_id}")


def _row(rows: dict[str, dict], job_id: str, status: str = "SUBMITTED") -> dict:
    return rows.setdefault(job_id, {"job_id": job_id, "name": None, "status": status,
                                    "submitted_at": None, "duration_s": None, "result_ref": None})


def _before_nvflare(rows: dict[str, dict], env) -> None:
    """A job by its SubmitJob's id: waiting for clients, or failed before NVFlare had it."""
    p, submit_id = env.payload, env.causation_id or env.message_id
    row = _row(rows, submit_id, WAITING)
    row.update(name=p["name"], submit_id=submit_id)
    if env.type == "JobFailed":
        row.update(status=NOT_SUBMITTED, reason=p["reason"], detail=p.get("detail"))
    elif row["status"] == WAITING:
        row.update(min_clients=p["min_clients"], connected=p["connected"],
                   clients_deadline=p["clients_deadline"])


def job_rows(events, federation: str) -> list[dict]:
    rows: dict[str, dict] = {}
    for env in events:
        p = env.payload
        if p.get("federation") != federation:
            continue
        if env.type in ("JobWaitingForClients", "JobFailed") and not p.get("job_id"):
            _before_nvflare(rows, env)
            continue
        if not p.get("job_id"):
            continue
        if env.type == "JobSubmitted":
            rows.pop(env.causation_id or "", None)  # its wait is over: listed by NVFlare's id now
        row = _row(rows, p["job_id"])
        row["name"] = row["name"] or p.get("name")
        if env.type == "JobSubmitted":
            row.update(name=p["name"], submitted_at=env.occurred_at.isoformat(), rounds=p.get("rounds"),
                       submit_id=env.causation_id)
        elif env.type == "JobStatusChanged":
            if not row["status"].startswith("FINISHED"):
                row["status"] = p["status"]
        elif env.type == "JobCompleted":
            row.update(status=p["status"], duration_s=p["duration_s"], result_ref=p.get("result_ref"),
                       reason=p.get("reason"))
    return list(rows.values())


def list_jobs(federation: Federation, data_dir: DataDir = None, json_out: Json = False) -> None:
    """The federation's jobs as the job events on the bus tell them."""
    with client_for(data_dir) as client:
        rows = job_rows(client.follow(types=JOB_EVENTS, federation=federation, from_start=True,
                                      until_idle=True), federation)
    if json_out:
        print_json(rows)
        return
    table = Table("job id", "name", "status", "duration s", "submitted")
    for r in rows:
        table.add_row(r["job_id"], r["name"] or "", _status_text(r),
                      "" if r["duration_s"] is None else f"{r['duration_s']:.1f}", r["submitted_at"] or "")
    out.print(table)


def _status_text(row: dict) -> str:
    if row["status"] == WAITING:
        return f"{WAITING} ({len(row['connected'])}/{row['min_clients']} connected)"
    if row["status"] == NOT_SUBMITTED:
        return f"{NOT_SUBMITTED}: {row['reason']}"
    return row["status"]


def register(root: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("abort")(abort)
    app.command("list")(list_jobs)
    app.command("result")(result)
    root.add_typer(app, name="job")
