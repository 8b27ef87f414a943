"""Who reads the ledger over HTTP: anyone on this machine when it is bound to loopback; off
loopback only people with a signed request or a console session, and only the federations
that list them — and in both cases only under a Host the ledger answers to."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.client.ledger import LedgerError, LedgerReader
from arcflare.ledger.settings import LedgerSettings
from arcflare.runtime.settings import Settings
from arcflare.trust import local
from arcflare.trust.requests import authorization
from pydantic import ValidationError

from .ledger_service import get, publish, serving

FED = "hospitals"
OWNER = "owner@consortium.org"  # project_admin of FED in the event stream
OUTSIDER = "admin@arcflare.local"  # has an identity here, but FED does not list them


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_ledger(data_dir, events) -> Iterator[int]:
    settings = LedgerSettings(data_dir=data_dir)
    publish(settings, events)
    with serving(settings) as (_, port):
        yield port


@pytest.fixture
def guarded_ledger(data_dir, events) -> Iterator[int]:
    """Bound to every address: what an image does. Only loopback is ever talked to."""
    settings = LedgerSettings(data_dir=data_dir, ledger_host="0.0.0.0",
                              ledger_allowed_hosts=["ledger.test"])
    publish(settings, events)
    with serving(settings) as (_, port):
        yield port


def reader(data_dir: Path, port: int, who: str) -> LedgerReader:
    return LedgerReader(Settings(data_dir=data_dir), as_=who, url=f"http://127.0.0.1:{port}")


def test_on_loopback_anyone_here_reads_without_a_proof(open_ledger) -> None:
    code, _, federations = get(open_ledger, "/federations")

    assert code == 200 and [f["name"] for f in federations] == [FED]


def test_a_foreign_host_header_is_refused_but_probes_answer(open_ledger) -> None:
    # a page elsewhere whose name resolves to 127.0.0.1 must not read through a browser
    code, _, body = get(open_ledger, "/federations", {"Host": "attacker.example"})

    assert code == 421 and "attacker.example" in body["error"]
    assert get(open_ledger, "/healthz", {"Host": "10.1.2.3:8080"})[0] == 200


def test_off_loopback_a_read_without_a_proof_is_refused(guarded_ledger) -> None:
    code, headers, body = get(guarded_ledger, f"/federations/{FED}")

    assert code == 401 and headers["www-authenticate"] == "ArcFlare"
    assert "signed request" in body["error"]


def test_off_loopback_a_member_reads_their_federation(data_dir, guarded_ledger) -> None:
    owner = reader(data_dir, guarded_ledger, OWNER)

    federation = owner.get(f"/federations/{FED}")

    assert {s["site"] for s in federation["sites"]} == {"north-1", "south-1"}
    assert [f["name"] for f in owner.get("/federations")] == [FED]
    assert {r["command_id"] for r in owner.get("/audit")} >= {"cmd-create", "cmd-stop"}
    assert owner.get("/whoami")["federations"] == [FED]


def test_off_loopback_an_outsider_reads_nothing(data_dir, guarded_ledger) -> None:
    outsider = reader(data_dir, guarded_ledger, OUTSIDER)

    with pytest.raises(LedgerError, match=f"403: {OUTSIDER} is not an admin or member"):
        outsider.get(f"/federations/{FED}")
    assert outsider.get("/federations") == []
    assert outsider.get("/audit") == [] and outsider.get("/alerts") == []
    assert outsider.get("/overview") == []


def test_off_loopback_a_proof_for_another_read_is_refused(data_dir, guarded_ledger) -> None:
    owner = local.person_identity(data_dir, OWNER)
    proof = authorization(owner, "GET", "/alerts", f"127.0.0.1:{guarded_ledger}")

    code, _, body = get(guarded_ledger, "/audit", {"Authorization": proof})

    assert code == 401 and "made for target '/alerts'" in body["error"]


def test_off_loopback_a_service_is_no_reader(data_dir, guarded_ledger) -> None:
    ledger = local.service_identity_paths(data_dir, "ledger").load()
    proof = authorization(ledger, "GET", "/federations", f"127.0.0.1:{guarded_ledger}")

    code, _, body = get(guarded_ledger, "/federations", {"Authorization": proof})

    assert code == 401 and "not a person" in body["error"]


def test_off_loopback_an_allowed_host_name_is_answered(data_dir, guarded_ledger) -> None:
    owner = local.person_identity(data_dir, OWNER)
    proof = authorization(owner, "GET", "/federations", "ledger.test")

    code, _, body = get(guarded_ledger, "/federations", {"Host": "ledger.test",
                                                         "Authorization": proof})

    assert code == 200 and [f["name"] for f in body] == [FED]


def test_a_sign_in_link_opens_one_console_session(data_dir, guarded_ledger) -> None:
    link = reader(data_dir, guarded_ledger, OWNER).console_link()
    path = link.removeprefix(f"http://127.0.0.1:{guarded_ledger}")

    code, headers, _ = get(guarded_ledger, path)
    cookie = headers["set-cookie"].split(";")[0]
    again, _, page = get(guarded_ledger, path)

    assert code == 303 and headers["location"] == "/console/"
    assert "HttpOnly" in headers["set-cookie"] and "SameSite=strict" in headers["set-cookie"]
    assert get(guarded_ledger, "/whoami", {"Cookie": cookie})[2]["principal"] == OWNER
    assert again == 401 and "used already" in page


def test_on_loopback_the_console_needs_no_sign_in(data_dir, open_ledger) -> None:
    link = reader(data_dir, open_ledger, OWNER).console_link()

    assert link == f"http://127.0.0.1:{open_ledger}/console/"


def test_binding_every_address_needs_the_names_it_answers_to(data_dir) -> None:
    with pytest.raises(ValidationError, match="set ledger_allowed_hosts"):
        LedgerSettings(data_dir=data_dir, ledger_host="0.0.0.0")


def test_arcflare_console_prints_the_address(data_dir, open_ledger) -> None:
    from arcflare.cli.main import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["console", "--json", "--data-dir", str(data_dir)],
                                env={"ARCFLARE_LEDGER_URL": ""})

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f'{{"url": "http://127.0.0.1:{open_ledger}/console/"}}'


def test_arcflare_console_without_a_ledger_says_how_to_start_one(tmp_path) -> None:
    from arcflare.cli.main import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["console", "--data-dir", str(tmp_path / "empty")],
                                env={"ARCFLARE_LEDGER_URL": ""})

    assert result.exit_code == 1 and "the ledger is not running" in result.output
