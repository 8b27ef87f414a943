"""`arcflare identity init | issue | show`: the trust root and the identities that sign messages."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from arcflare.cli.common import DataDir, Json, console, fail, out, print_json, settings_for
from arcflare.trust.authority import ISSUER_DAYS, LEAF_DAYS, PROVISIONER, Issuer, TrustRoot
from arcflare.trust.errors import IdentityError, Unauthenticated
from arcflare.trust.identity import Identity, IdentityFiles
from arcflare.trust.local import (
    anchors_path,
    describe,
    ensure_local_identities,
    person_identity,
    person_identity_paths,
    trust_dir,
)
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier, load_anchors
from rich.table import Table

app = typer.Typer(help="Identities that sign messages: the trust root, persons, services, "
                       "site agents and bridges.", no_args_is_help=True)
issue_app = typer.Typer(help="Issue a certificate and key (cert.pem, key.pem, chain.pem) into "
                             "a directory.", no_args_is_help=True)
app.add_typer(issue_app, name="issue")

Out = Annotated[Path, typer.Option("--out", help="Directory to write cert.pem, key.pem (0600) "
                                                 "and chain.pem into (created 0700).")]
Days = Annotated[int, typer.Option("--days", min=1, help="Days the certificate is valid.")]
Root = Annotated[Path | None, typer.Option(
    "--root", help="Directory of the trust root (default <data-dir>/identity/trust).")]
Force = Annotated[bool, typer.Option("--force", help="Replace an identity already in --out.")]
IssuerDir = Annotated[Path | None, typer.Option(
    "--issuer", help="Issue with the provisioner's intermediate in this directory instead of "
                     "the root.")]


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="identity")


@app.command()
def init(
    operator: Annotated[str, typer.Option("--operator", help="Email of the first operator.")]
    = "admin@arcflare.local",
    org: Annotated[str, typer.Option("--org", help="The operator's organisation.")] = "arcflare",
    data_dir: DataDir = None, json_out: Json = False,
) -> None:
    """Create the trust root and a first operator in the data dir; keeps what exists."""
    data_dir = settings_for(data_dir).data_dir
    try:
        principal = Principal.person(operator, org)
        local = ensure_local_identities(data_dir, services=(), operators=((operator, org),),
                                        with_issuer=False)
    except (ValueError, IdentityError) as exc:
        fail(str(exc))
    wanted = ["trust root", describe(principal)]
    if json_out:
        print_json({"anchors": str(local.anchors), "operator": principal.id,
                    "identity": str(local.persons[principal.name].directory),
                    "created": [w for w in wanted if w in local.created],
                    "existing": [w for w in wanted if w not in local.created]})
        return
    for what in wanted:
        state = "[green]created[/green]" if what in local.created else "exists "
        console.print(f"{state} {what}", highlight=False)
    console.print(f"trust anchors: {local.anchors}", highlight=False)


def _authority(data_dir: Path | None, root: Path | None,
               issuer: Path | None = None) -> TrustRoot | Issuer:
    if issuer is not None:
        return Issuer.load(issuer)
    return TrustRoot.load(root or trust_dir(settings_for(data_dir).data_dir))


def _issue(issue: Callable[[], IdentityFiles], out_dir: Path, *, force: bool,
           json_out: bool) -> None:
    """Run `issue` unless out_dir already holds an identity, then say what was issued."""
    try:
        if IdentityFiles(out_dir).exists() and not force:
            fail(f"{out_dir} already holds an identity; pass --force to replace it")
        files = issue()
        identity = files.load()
    except (ValueError, IdentityError) as exc:
        fail(str(exc))
    if json_out:
        print_json(_description(identity, files))
        return
    console.print(f"[green]issued[/green] {identity.principal.id} into {out_dir} "
                  f"(valid until {identity.certificate.not_valid_after_utc:%Y-%m-%d})",
                  highlight=False)


@issue_app.command("person")
def issue_person(
    email: Annotated[str, typer.Argument(help="The person's email.")],
    org: Annotated[str, typer.Option("--org", help="The person's organisation (Subject O).")],
    out_dir: Out, days: Days = LEAF_DAYS, data_dir: DataDir = None, root: Root = None,
    force: Force = False, json_out: Json = False,
) -> None:
    """Issue a person's identity (sends commands) from the trust root."""
    _issue(lambda: _authority(data_dir, root).issue(
        Principal.person(email, org), out_dir=out_dir, validity_days=days),
        out_dir, force=force, json_out=json_out)


@issue_app.command("service")
def issue_service(
    name: Annotated[str, typer.Argument(help="The service's name, e.g. deployer.")],
    out_dir: Out, days: Days = LEAF_DAYS, data_dir: DataDir = None, root: Root = None,
    force: Force = False, json_out: Json = False,
) -> None:
    """Issue a service's identity (publishes the events it owns) from the trust root."""
    _issue(lambda: _authority(data_dir, root).issue(
        Principal.service(name), out_dir=out_dir, validity_days=days),
        out_dir, force=force, json_out=json_out)


@issue_app.command("site")
def issue_site(
    federation: Annotated[str, typer.Argument(help="The federation's name.")],
    site: Annotated[str, typer.Argument(help="The site's (NVFlare client's) name.")],
    out_dir: Out, days: Days = LEAF_DAYS, data_dir: DataDir = None, root: Root = None,
    issuer: IssuerDir = None, force: Force = False, json_out: Json = False,
) -> None:
    """Issue a site agent's identity (reports its own site's telemetry)."""
    _issue(lambda: _authority(data_dir, root, issuer).issue(
        Principal.site_agent(federation, site), out_dir=out_dir, validity_days=days),
        out_dir, force=force, json_out=json_out)


@issue_app.command("bridge")
def issue_bridge(
    federation: Annotated[str, typer.Argument(help="The federation's name.")],
    out_dir: Out, days: Days = LEAF_DAYS, data_dir: DataDir = None, root: Root = None,
    issuer: IssuerDir = None, force: Force = False, json_out: Json = False,
) -> None:
    """Issue the NVFlare bridge identity of a federation (reports the server's metrics)."""
    _issue(lambda: _authority(data_dir, root, issuer).issue(
        Principal.bridge(federation), out_dir=out_dir, validity_days=days),
        out_dir, force=force, json_out=json_out)


@issue_app.command("issuer")
def issue_issuer(
    out_dir: Out, days: Days = ISSUER_DAYS, data_dir: DataDir = None, root: Root = None,
    force: Force = False, json_out: Json = False,
) -> None:
    """Issue the provisioner's intermediate CA: it may issue site agents and bridges only."""
    _issue(lambda: _authority(data_dir, root).issue_issuer(
        PROVISIONER, out_dir=out_dir, validity_days=days),
        out_dir, force=force, json_out=json_out)


@app.command()
def show(
    directory: Annotated[Path | None, typer.Argument(
        help="An identity directory (cert.pem, key.pem, chain.pem).")] = None,
    as_: Annotated[str | None, typer.Option(
        "--as", help="A person's identity from the data dir, by email.")] = None,
    data_dir: DataDir = None, json_out: Json = False,
) -> None:
    """Show an identity: principal, fingerprint, validity, issuer and whether it is trusted.

    Without DIR or --as: the identity commands from this machine are issued by."""
    settings = settings_for(data_dir)
    if directory is not None and as_ is not None:
        fail("give either an identity directory or --as, not both")
    email = as_ or settings.issued_by
    try:
        if directory is not None:
            files = IdentityFiles(directory)
            identity = files.load()
        else:
            files = person_identity_paths(settings.data_dir, email)
            identity = person_identity(settings.data_dir, email)
    except (ValueError, IdentityError) as exc:
        fail(str(exc))
    description = _description(identity, files, anchors=anchors_path(settings.data_dir))
    if json_out:
        print_json(description)
        return
    table = Table(show_header=False, box=None)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in description.items():
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


def _description(identity: Identity, files: IdentityFiles,
                 anchors: Path | None = None) -> dict[str, Any]:
    certificate = identity.certificate
    not_after = certificate.not_valid_after_utc
    description = {
        "principal": identity.principal.id, "kind": identity.principal.kind,
        "uri": identity.principal.uri, "org": identity.principal.org,
        "fingerprint": f"sha256:{identity.fingerprint}",
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": (not_after - datetime.now(UTC)).days,
        "issuer": certificate.issuer.rfc4514_string(),
        "directory": str(files.directory),
    }
    if anchors is not None:
        description["trusted"] = _trusted(identity, anchors)
    return description


def _trusted(identity: Identity, anchors: Path) -> str:
    """Whether a verifier trusting the data dir's anchors would accept this identity's chain."""
    if not anchors.is_file():
        return f"unknown (no trust anchors at {anchors})"
    try:
        Verifier(load_anchors(anchors)).verify_chain(identity.chain)
    except (Unauthenticated, IdentityError) as exc:
        return f"no: {exc}"
    return f"yes (by {anchors})"
