"""`arcflare console [--open]`: where the operator console is (the ledger serves it).

On loopback that is a plain address. Anywhere else it is a sign-in link made with the
person's identity, good for one browser session, to be opened within the ledger's sign-in
window (5 minutes by default).
"""
from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from arcflare.cli.common import DataDir, Json, console, fail, out, print_json, settings_for
from arcflare.client.ledger import LedgerError, LedgerReader


def console_url(data_dir: Path | None, as_: str | None = None) -> str:
    """The console's address or sign-in link; LedgerError when the ledger cannot be found."""
    return LedgerReader(settings_for(data_dir), as_=as_).console_link()


def console_command(
    data_dir: DataDir = None,
    open_: Annotated[bool, typer.Option("--open", help="Open it in a web browser.")] = False,
    as_: Annotated[str | None, typer.Option(
        "--as", help="Sign in as this person (email), off loopback.")] = None,
    json_out: Json = False,
) -> None:
    """Print the operator console's address (with --open, open it in a browser)."""
    try:
        url = console_url(data_dir, as_)
    except LedgerError as exc:
        fail(str(exc))
    if json_out:
        print_json({"url": url})
    else:
        out.print(url, highlight=False, soft_wrap=True)
    if open_ and not webbrowser.open(url):
        console.print("no web browser found here: open the address above yourself")


def register(app: typer.Typer) -> None:
    app.command("console")(console_command)
