"""`arcflare federation certs`: every certificate of a federation with its days left, CA first."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from arcflare.cli.main import app
from arcflare.contracts import events as e
from arcflare.ledger.settings import LedgerSettings
from typer.testing import CliRunner

from .conftest import FED, FP, OWNER, T0, outcome, provisioning
from .ledger_service import publish, serving

NEW_FP = ":".join(["EF"] * 32)


def federation_with_a_renewal() -> list:
    given = provisioning()
    given[0] = given[0].model_copy(update={"payload": {
        **given[0].payload, "admin_certificates": [
            {"participant": OWNER, "fingerprint": FP,
             "not_after": (T0 + timedelta(days=360, hours=1)).isoformat()}]}})
    renewed = outcome(e.CertificateRenewed(
        federation=FED, participant="north-1", kind="client", old_fingerprint=FP,
        new_fingerprint=NEW_FP, not_after=T0 + timedelta(days=400), kit_ref="kits/north-1"),
        "cmd-renew", 30)
    return [*given, renewed]


def certs(tmp_path: Path, *args: str):
    settings = LedgerSettings(data_dir=tmp_path / "data")
    publish(settings, federation_with_a_renewal())
    with serving(settings):
        return CliRunner().invoke(app, ["federation", "certs", FED, *args, "--data-dir",
                                        str(settings.data_dir)],
                                  env={"ARCFLARE_LEDGER_URL": ""})


def test_certs_json_lists_every_certificate_the_ca_first(tmp_path: Path) -> None:
    result = certs(tmp_path, "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["certificates"]
    assert [(c["participant"], c["kind"]) for c in rows] == [
        ("rootCA", "ca"), ("server", "server"), ("north-1", "client"), (OWNER, "admin"),
        ("south-1", "client")]
    north = rows[2]
    assert north["fingerprint"] == NEW_FP  # the renewed one
    assert north["days_left"] == (T0 + timedelta(days=400) - datetime.now(UTC)).days


def test_certs_prints_a_row_per_certificate(tmp_path: Path) -> None:
    result = certs(tmp_path)

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    order = [next(i for i, line in enumerate(lines) if name in line)
             for name in ("rootCA", "server", "north-1", "south-1")]
    assert order == sorted(order)
    assert "days left" in result.stdout and "EF:EF:EF" in result.stdout


def test_certs_of_an_unknown_federation_exits_1(tmp_path: Path) -> None:
    settings = LedgerSettings(data_dir=tmp_path / "data")
    with serving(settings):
        result = CliRunner().invoke(app, ["federation", "certs", "nowhere", "--data-dir",
                                          str(settings.data_dir)],
                                    env={"ARCFLARE_LEDGER_URL": ""})

    assert result.exit_code == 1
    assert "404" in result.output
