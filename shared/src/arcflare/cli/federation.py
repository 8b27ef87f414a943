"""`arcflare federation create SPEC.yaml` and `arcflare site add|remove` (the provisioner's commands;
its certificate commands are in arcflare.cli.certificates).

The spec file holds CreateFederation's fields (see deploy/examples/federation.yaml);
it is checked here first, so a typo is reported before anything is sent.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from arcflare.cli import certificates
from arcflare.cli.common import (
    AsPrincipal,
    DataDir,
    Json,
    Timeout,
    Wait,
    build,
    console,
    fail,
    send_command,
)
from arcflare.contracts.commands import AddSite, CreateFederation, RemoveSite
from arcflare.contracts.envelope import describe_errors, field_errors
from pydantic import ValidationError

federation_app = typer.Typer(help="Create federations (NVFlare provisioning); their certificates.",
                             no_args_is_help=True)
site_app = typer.Typer(help="Add, remove or renew a federation's sites.", no_args_is_help=True)


def load_spec(path: Path) -> CreateFederation:
    """The spec file as a CreateFederation; one line per problem, naming the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", code=2)
    except yaml.YAMLError as exc:
        fail(f"{path} is not valid YAML: {exc}", code=2)
    if not isinstance(data, dict):
        fail(f"{path} must be a mapping with name, sites and admins", code=2)
    try:
        return CreateFederation.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(field_errors(exc), sep="\n  ")
        fail(f"{path} is not a valid federation spec:\n  {problems}", code=2)


def _command(command, *, data_dir, as_, wait, json_out, timeout, what) -> None:
    outcome = send_command(command, data_dir=data_dir, as_=as_, wait=wait,
                           json_out=json_out, timeout=timeout, what=what)
    if outcome is not None and not json_out:
        payload = outcome.payload
        if outcome.type == "FederationProvisioned":
            console.print(f"server {payload['server_endpoint']}, sites {', '.join(payload['sites'])}"
                          + (" (already provisioned)" if payload.get("existing") else ""))
        elif outcome.type == "SiteProvisioned":
            console.print(f"kit {payload['kit_ref']}, certificate valid until "
                          f"{payload['not_after']}")


@federation_app.command("create")
def create(
    spec: Annotated[Path, typer.Argument(help="Federation spec (YAML).")],
    wait: Wait = False,
    timeout: Timeout = 300.0,
    json_out: Json = False,
    data_dir: DataDir = None,
    as_: AsPrincipal = None,
) -> None:
    """Provision a federation: its CA, server, sites and admins (idempotent)."""
    command = load_spec(spec)
    _command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out,
             timeout=timeout, what=f"federation {command.name}")


@site_app.command("add")
def add(
    federation: Annotated[str, typer.Argument(help="Federation name.")],
    name: Annotated[str, typer.Argument(help="Site (NVFlare client) name.")],
    org: Annotated[str, typer.Option("--org", help="The site's organisation.")],
    deploy: Annotated[bool, typer.Option("--deploy", help="Start the site once its kit exists.")] = False,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    json_out: Json = False,
    data_dir: DataDir = None,
    as_: AsPrincipal = None,
) -> None:
    """Add a site to a running federation: one new kit signed by its CA."""
    command = build(lambda: AddSite(federation=federation, site=name, org=org, deploy=deploy))
    _command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out,
             timeout=timeout, what=f"site {name}")


@site_app.command("remove")
def remove(
    federation: Annotated[str, typer.Argument(help="Federation name.")],
    name: Annotated[str, typer.Argument(help="Site name.")],
    wait: Wait = False,
    timeout: Timeout = 300.0,
    json_out: Json = False,
    data_dir: DataDir = None,
    as_: AsPrincipal = None,
) -> None:
    """Remove a site: its kit is deleted and the deployer stops it."""
    command = build(lambda: RemoveSite(federation=federation, site=name))
    _command(command, data_dir=data_dir, as_=as_, wait=wait, json_out=json_out,
             timeout=timeout, what=f"removal of {name}")


def register(app: typer.Typer) -> None:
    certificates.register(site_app, federation_app)
    app.add_typer(federation_app, name="federation")
    app.add_typer(site_app, name="site")
