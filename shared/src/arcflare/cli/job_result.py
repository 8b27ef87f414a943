"""`arcflare job result FEDERATION JOB_ID --out DIR`: what NVFlare gave back for a job (the
global model, the server's logs, its metrics summary), fetched from the artifact store by
the reference JobCompleted carries, verified and unpacked on this machine."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from arcflare.artifacts import ArtifactError
from arcflare.artifacts.unpacking import InvalidArchive
from arcflare.cli.common import DataDir, Json, client_for, fail, out, print_json


def result(
    federation: Annotated[str, typer.Argument(help="The federation (NVFlare project) name.")],
    job_id: Annotated[str, typer.Argument(help="The NVFlare job id.")],
    out_dir: Annotated[Path, typer.Option("--out", help="A folder to create for the result.")],
    data_dir: DataDir = None, json_out: Json = False,
) -> None:
    """Download a finished job's result (global model, server logs) into --out."""
    if out_dir.exists():
        fail(f"--out: {out_dir} exists; name a folder to create", code=2)
    with client_for(data_dir) as client:
        completed = next((env for env in client.follow(
            types=["JobCompleted"], federation=federation, from_start=True, until_idle=True)
            if env.payload.get("job_id") == job_id), None)
        if completed is None:
            fail(f"no JobCompleted for job {job_id} of {federation} on the bus (not finished, "
                 "or older than the bus keeps events)")
        ref = completed.payload.get("result")
        if ref is None:
            fail(f"job {job_id} ended {completed.payload['status']} without a result")
        try:
            folder = client.download_result(ref, out_dir)
        except (ArtifactError, InvalidArchive) as exc:
            fail(str(exc))
    if json_out:
        print_json({"job_id": job_id, "result": ref, "folder": str(folder)})
    else:
        out.print(f"result of {job_id} ({ref['locator']}) in {folder}")
