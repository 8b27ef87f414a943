"""`arcflare site renew`, `arcflare federation renew-server | renew-admin | certs`.

A renewal is a RenewCertificate. With --wait the CLI follows it past CertificateRenewed
(the new kit exists) to the deployer's roll of the participant (ParticipantRolled; or
RollPostponed while a job runs, RollRefused, DeploymentFailed), all correlated with the
command; an admin's kit has no roll (the job-controller logs in with it next time).
`certs` reads the ledger: every certificate of the federation with its days left, the
CA's first, since no certificate outlives it.
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated

import typer
from arcflare.cli.common import (
    AsPrincipal,
    DataDir,
    Json,
    Timeout,
    Wait,
    build,
    client_for,
    console,
    envelope_json,
    fail,
    out,
    print_json,
    send_command,
)
from arcflare.cli.status import ledger_get
from arcflare.contracts.commands import RenewCertificate
from arcflare.contracts.envelope import Envelope
from rich.table import Table

Federation = Annotated[str, typer.Argument(help="Federation name.")]
IfJobRunning = Annotated[str, typer.Option(
    "--if-job-running",
    help="wait: restart the participant once its running jobs end; refuse: leave it on its "
         "old certificate until it next starts.")]
#: the deployer's answers to a renewal, and which of them end the roll
ROLL_EVENTS = ("ParticipantRolled", "RollPostponed", "RollRefused", "DeploymentFailed")
ROLL_ENDS = ("ParticipantRolled", "RollRefused", "DeploymentFailed")
#: a certificate with fewer days left than this is shown as urgent
SOON_DAYS = 30


def renew(command_of, *, data_dir: Path | None, as_: str | None, wait: bool, json_out: bool,
          timeout: float, what: str) -> None:
    command = build(command_of)
    renewed = send_command(command, data_dir=data_dir, as_=as_, wait=wait,
                           json_out=json_out and not wait, timeout=timeout, what=what)
    if renewed is None:
        return
    p = renewed.payload
    if not json_out:
        console.print(f"new certificate {p['new_fingerprint'][:23]}… valid until "
                      f"{p['not_after'][:10]}" + (" (the CA ends then: docs/certificates.md)"
                                                  if p.get("limited_by_ca") else ""))
    roll = None if p["kind"] == "admin" else follow_roll(renewed, data_dir, timeout,
                                                         quiet=json_out)
    if json_out:
        print_json({"renewed": envelope_json(renewed), "roll": roll and envelope_json(roll)})
    if roll is not None and roll.type != "ParticipantRolled":
        if not json_out:
            fail(f"{roll.type}: {roll.payload.get('reason', '')}")
        raise typer.Exit(1)


def follow_roll(renewed: Envelope, data_dir: Path | None, timeout: float, *,
                quiet: bool) -> Envelope:
    """The deployer's last word on rolling the renewed participant onto its new kit."""
    with client_for(data_dir) as client, console.status(
            f"waiting for the deployer to roll {renewed.payload['participant']} …") as status:
        for env in client.follow(types=ROLL_EVENTS, timeout=timeout, from_start=True):
            if env.correlation_id != renewed.correlation_id:
                continue
            if env.type == "RollPostponed" and not quiet:
                status.update(f"a job runs ({', '.join(env.payload['jobs'])}): the roll "
                              "waits for it to end …")
            if env.type in ROLL_ENDS:
                if env.type == "ParticipantRolled" and not quiet:
                    restarted = env.payload["restarted"]
                    console.print("[green]✓[/green] " + (
                        "restarted on its new kit" if restarted else
                        "not running: its next start uses the new kit"), highlight=False)
                return env
    fail(f"the deployer did not roll {renewed.payload['participant']} within {timeout:.0f} s "
         "(is it running? `arcflare local ps`); the new kit is in place either way")


def site_renew(
    federation: Federation,
    site: Annotated[str, typer.Argument(help="Site name.")],
    if_job_running: IfJobRunning = "wait",
    wait: Wait = False, timeout: Timeout = 600.0, json_out: Json = False,
    data_dir: DataDir = None, as_: AsPrincipal = None,
) -> None:
    """Renew a site's certificate from the federation's CA; the deployer restarts the site."""
    renew(lambda: RenewCertificate(federation=federation, participant=site,
                                   if_job_running=if_job_running),
          data_dir=data_dir, as_=as_, wait=wait, json_out=json_out, timeout=timeout,
          what=f"renewal of {site}")


def renew_server(
    federation: Federation,
    if_job_running: IfJobRunning = "wait",
    wait: Wait = False, timeout: Timeout = 600.0, json_out: Json = False,
    data_dir: DataDir = None, as_: AsPrincipal = None,
) -> None:
    """Renew the server's certificate; the deployer restarts it, and its sites with it."""
    renew(lambda: RenewCertificate(federation=federation, participant="server",
                                   if_job_running=if_job_running),
          data_dir=data_dir, as_=as_, wait=wait, json_out=json_out, timeout=timeout,
          what="renewal of the server")


def renew_admin(
    federation: Federation,
    email: Annotated[str, typer.Argument(help="The admin's email.")],
    wait: Wait = False, timeout: Timeout = 300.0, json_out: Json = False,
    data_dir: DataDir = None, as_: AsPrincipal = None,
) -> None:
    """Renew an admin's certificate (their FLARE API kit)."""
    renew(lambda: RenewCertificate(federation=federation, participant=email),
          data_dir=data_dir, as_=as_, wait=wait, json_out=json_out, timeout=timeout,
          what=f"renewal of {email}")


def certs(federation: Federation, data_dir: DataDir = None, json_out: Json = False) -> None:
    """Every certificate of a federation with its days left, the CA's first."""
    found = ledger_get(data_dir, f"/federations/{urllib.parse.quote(federation)}")
    rows = sorted(found.get("certificates") or [],
                  key=lambda c: (c["kind"] != "ca", c["kind"] != "server", c["participant"]))
    if json_out:
        print_json({"federation": federation, "as_of": found.get("as_of"), "certificates": rows})
        return
    if not rows:
        fail(f"the ledger knows no certificates of {federation}")
    table = Table(title=f"certificates of {federation}", title_justify="left")
    for column in ("participant", "kind", "not after", "days left", "fingerprint"):
        table.add_column(column, justify="right" if column == "days left" else "left")
    for cert in rows:
        days = cert.get("days_left")
        style = "red" if days is not None and days < SOON_DAYS else None
        table.add_row(cert["participant"], cert["kind"], (cert.get("not_after") or "-")[:10],
                      "-" if days is None else str(days), (cert.get("fingerprint") or "-")[:23],
                      style=style)
    out.print(table)


def register(site_app: typer.Typer, federation_app: typer.Typer) -> None:
    site_app.command("renew")(site_renew)
    federation_app.command("renew-server")(renew_server)
    federation_app.command("renew-admin")(renew_admin)
    federation_app.command("certs")(certs)
