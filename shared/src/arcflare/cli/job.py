"""`arcflare job submit | abort | list`: NVFlare jobs as commands, with their outcome.

`job list` folds the job events on the bus (JobSubmitted, JobStatusChanged,
JobCompleted) into one row per job, so it needs no service's database.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from arcflare.cli.common import (
    AsPrincipal,
    DataDir,
    Json,
    Timeout,
    Wait,
    client_for,
    console,
    envelope_json,
    fail,
    out,
    print_json,
    send_command,
    settings_for,
)
from arcflare.contracts.commands import (
    AbortJob,
    ArchivePackage,
    FolderPackage,
    RecipePackage,
    SubmitJob,
)
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Submit, abort and list NVFlare jobs.", no_args_is_help=True)
Federation = Annotated[str, typer.Argument(help="The federation (NVFlare project) name.")]
JOB_EVENTS = ["JobSubmitted", "JobStatusChanged", "JobCompleted", "JobFailed"]
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def parse_param(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        fail(f"--param: expected key=value, got {text!r}", code=2)
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw  # a bare word is a string


def package_for(path: Path | None, recipe: str | None, params: list[str], data_dir: Path | None):
    if (path is None) == (recipe is None):
        fail("give either a job PATH or --recipe NAME", code=2)
    if recipe:
        return RecipePackage(recipe=recipe, parameters=dict(parse_param(p) for p in params))
    if params:
        fail("--param only applies to --recipe", code=2)
    if path.is_dir():
        return FolderPackage(path=str(path.resolve()))
    if path.is_file() and path.name.endswith(ARCHIVE_SUFFIXES):
        uploads = settings_for(data_dir).data_dir / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex[:12]}-{path.name}"
        shutil.copyfile(path, uploads / name)
        return ArchivePackage(path=name)
    fail(f"PATH: {path} is neither a job folder nor a .zip/.tar(.gz) archive", code=2)


def submit(
    federation: Federation,
    path: Annotated[Path | None, typer.Argument(help="A job folder or archive.")] = None,
    recipe: Annotated[str | None, typer.Option("--recipe", help="A built-in recipe, e.g. fedavg-logreg.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Recipe parameter k=v (repeatable).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Job name (default: folder or recipe).")] = None,
    min_clients: Annotated[int, typer.Option("--min-clients")] = 1,
    site: Annotated[list[str] | None, typer.Option("--site", help="Run on these sites only.")] = None,
    job_timeout: Annotated[int, typer.Option("--job-timeout", help="Seconds for the whole job.")] = 3600,
    wait: Wait = False, timeout: Timeout = 3600.0, data_dir: DataDir = None,
    as_: AsPrincipal = None, json_out: Json = False,
) -> None:
    """Submit a job; with --wait follow it to its end with a progress bar of rounds."""
    package = package_for(path, recipe, param or [], data_dir)
    job_name = name or (recipe if recipe else Path(str(path)).name.split(".")[0])
    try:
        command = SubmitJob(federation=federation, name=job_name, package=package,
                            min_clients=min_clients, sites=site or None, timeout_s=job_timeout)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        fail(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", code=2)
    submitted = send_command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out and not wait,
                             timeout=min(timeout, job_timeout + 60.0), what=f"submission of {job_name}")
    if submitted is None:
        return
    completed = follow_job(submitted.payload, data_dir, timeout, quiet=json_out)
    if json_out:
        print_json({"submitted": envelope_json(submitted), "completed": envelope_json(completed)})
    if completed.payload.get("status") != "FINISHED:COMPLETED":
        if not json_out:
            fail(f"job {completed.payload['job_id']} ended {completed.payload.get('status')}"
                 + (f": {completed.payload['reason']}" if completed.payload.get("reason") else ""))
        raise typer.Exit(1)


def follow_job(job: dict, data_dir: Path | None, timeout: float, *, quiet: bool):
    job_id, rounds = job["job_id"], job.get("rounds")
    with client_for(data_dir) as client, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet,
    ) as progress:
        bar = progress.add_task(f"{job['name']} SUBMITTED", total=rounds)
        done_rounds = 0
        for env in client.follow(types=[*JOB_EVENTS, "MetricsReported"], timeout=timeout,
                                 topics=("events", "telemetry"), from_start=True):
            if env.payload.get("job_id") != job_id:
                continue
            if env.type == "MetricsReported":
                done_rounds = max([done_rounds, *(p["step"] + 1 for p in env.payload["points"])])
                progress.update(bar, completed=min(done_rounds, rounds or done_rounds))
            elif env.type == "JobStatusChanged":
                progress.update(bar, description=f"{job['name']} {env.payload['status']}")
            elif env.type == "JobCompleted":
                if env.payload["status"] == "FINISHED:COMPLETED" and rounds:
                    progress.update(bar, completed=rounds)
                progress.update(bar, description=f"{job['name']} {env.payload['status']}")
                return env
    fail(f"job {job_id} did not end within {timeout:.0f} s (it keeps running; see `arcflare job list`)")


def abort(
    federation: Federation, job_id: Annotated[str, typer.Argument(help="The NVFlare job id.")],
    wait: Wait = False, timeout: Timeout = 300.0, data_dir: DataDir = None,
    as_: AsPrincipal = None, json_out: Json = False,
) -> None:
    """Abort a job; with --wait until NVFlare reports it ended."""
    send_command(AbortJob(federation=federation, job_id=job_id), data_dir=data_dir, as_=as_,
                 wait=wait, json_out=json_out, timeout=timeout, what=f"abort of {job_id}")


def job_rows(events, federation: str) -> list[dict]:
    rows: dict[str, dict] = {}
    for env in events:
        p = env.payload
        if p.get("federation") != federation or not p.get("job_id"):
            continue
        row = rows.setdefault(p["job_id"], {"job_id": p["job_id"], "name": p.get("name"),
                                            "status": "SUBMITTED", "submitted_at": None,
                                            "duration_s": None, "result_ref": None})
        if env.type == "JobSubmitted":
            row.update(name=p["name"], submitted_at=env.occurred_at.isoformat(), rounds=p.get("rounds"))
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
        table.add_row(r["job_id"], r["name"] or "", r["status"],
                      "" if r["duration_s"] is None else f"{r['duration_s']:.1f}", r["submitted_at"] or "")
    out.print(table)


def register(root: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("abort")(abort)
    app.command("list")(list_jobs)
    root.add_typer(app, name="job")
