"""`arcflare schema export DIR`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from arcflare.cli.common import out
from arcflare.contracts.asyncapi import export

app = typer.Typer(help="Message schemas and the AsyncAPI document.", no_args_is_help=True)


@app.command("export")
def export_cmd(directory: Annotated[Path, typer.Argument(help="Where to write them.")]) -> None:
    """Write a JSON Schema per message and an AsyncAPI 3.0 document (asyncapi.json)."""
    files = export(directory)
    out.print(f"wrote {len(files)} files to {directory}")
