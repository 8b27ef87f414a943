"""`arcflare deploy | stop | teardown`: start and stop a federation's server and sites."""
from __future__ import annotations

from typing import Annotated

import typer
from arcflare.cli.common import AsPrincipal, DataDir, Json, Timeout, Wait, build, send_command
from arcflare.contracts.commands import DeployServer, DeploySite, StopSite, TeardownFederation

Federation = Annotated[str, typer.Argument(help="The federation (NVFlare project) name.")]
Sites = Annotated[
    list[str] | None,
    typer.Option("--site", help="A site instead of the server (repeatable)."),
]


def deploy(federation: Federation, site: Sites = None, wait: Wait = False,
           timeout: Timeout = 300.0, data_dir: DataDir = None, as_: AsPrincipal = None,
           json_out: Json = False) -> None:
    """Deploy the federation's server, or with --site the named sites."""
    commands = build(lambda: [DeploySite(federation=federation, site=s) for s in site]
                      if site else [DeployServer(federation=federation)])
    for command in commands:
        send_command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out,
                     timeout=timeout, what=_what(command))


def stop(federation: Federation, site: Sites = None, wait: Wait = False,
         timeout: Timeout = 300.0, data_dir: DataDir = None, as_: AsPrincipal = None,
         json_out: Json = False) -> None:
    """Stop the named sites; without --site, stop the whole federation (as teardown)."""
    commands = build(lambda: [StopSite(federation=federation, site=s) for s in site]
                      if site else [TeardownFederation(federation=federation)])
    for command in commands:
        send_command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out,
                     timeout=timeout, what=_what(command))


def teardown(federation: Federation, wait: Wait = False, timeout: Timeout = 300.0,
             data_dir: DataDir = None, as_: AsPrincipal = None, json_out: Json = False) -> None:
    """Stop every site and then the server of the federation."""
    (command,) = build(lambda: [TeardownFederation(federation=federation)])
    send_command(command, data_dir=data_dir, as_=as_,
                 wait=wait, json_out=json_out, timeout=timeout, what=f"teardown of {federation}")


def _what(command: DeployServer | DeploySite | StopSite | TeardownFederation) -> str:
    site = getattr(command, "site", None)
    return f"{command.type_name()} {command.federation}" + (f"/{site}" if site else "")


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("stop")(stop)
    app.command("teardown")(teardown)
