"""`arcflare identity init | issue | show` as an operator uses them."""
from __future__ import annotations

import json
import stat
from pathlib import Path

from arcflare.cli.main import app
from arcflare.trust.identity import IdentityFiles
from arcflare.trust.jws import Signer
from arcflare.trust.verifier import Verifier, load_anchors
from typer.testing import CliRunner

runner = CliRunner()


def cli(data_dir, *args):
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)])


def test_init_creates_the_root_and_operator_then_keeps_them(tmp_path):
    # Execute
    first = cli(tmp_path, "identity", "init", "--operator", "ops@hospital-a.org",
                "--org", "hospital_a", "--json")
    second = cli(tmp_path, "identity", "init", "--operator", "ops@hospital-a.org",
                 "--org", "hospital_a", "--json")

    # Assert
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["created"] == ["trust root", "person ops@hospital-a.org"]
    assert json.loads(second.stdout)["created"] == []
    assert json.loads(second.stdout)["existing"] == ["trust root", "person ops@hospital-a.org"]
    key = tmp_path / "identity" / "persons" / "ops@hospital-a.org" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_init_says_what_it_created(tmp_path):
    # Execute
    result = cli(tmp_path, "identity", "init")

    # Assert
    assert result.exit_code == 0, result.output
    assert "created trust root" in result.output
    assert "created person admin@arcflare.local" in result.output


def test_init_refuses_a_malformed_operator_in_one_sentence(tmp_path):
    # Execute
    result = cli(tmp_path, "identity", "init", "--operator", "ops")

    # Assert
    assert result.exit_code == 1
    assert "email 'ops' is not valid" in result.output
    assert not (tmp_path / "identity" / "trust").exists()


def test_issue_writes_an_identity_the_data_dir_trusts(tmp_path):
    # Prepare
    cli(tmp_path, "identity", "init")
    verifier = Verifier(load_anchors(tmp_path / "identity" / "trust" / "anchors.pem"))
    out = tmp_path / "out"
    commands = {
        "lead@hospital-a.org": ["person", "lead@hospital-a.org", "--org", "hospital_a"],
        "service:deployer": ["service", "deployer"],
        "site:example/hospital-a": ["site", "example", "hospital-a"],
        "bridge:example": ["bridge", "example"],
    }

    # Execute
    results = {principal: cli(tmp_path, "identity", "issue", *args, "--out",
                              str(out / principal.replace("/", "_")), "--days", "30", "--json")
               for principal, args in commands.items()}

    # Assert
    for principal, result in results.items():
        assert result.exit_code == 0, result.output
        shown = json.loads(result.stdout)
        assert shown["principal"] == principal and shown["days_left"] in (29, 30)
        identity = IdentityFiles(Path(shown["directory"])).load()
        signer = Signer(identity)
        token = signer.sign({"message_id": "m"}, b"")
        assert verifier.verify(token, {"message_id": "m"}, b"", chain=signer.chain).id == \
            principal


def test_a_site_issued_through_the_provisioner_issuer_shows_it_as_issuer(tmp_path):
    # Prepare
    cli(tmp_path, "identity", "init")
    issued = cli(tmp_path, "identity", "issue", "issuer", "--out", str(tmp_path / "issuer"))

    # Execute
    site = cli(tmp_path, "identity", "issue", "site", "example", "hospital-a",
               "--issuer", str(tmp_path / "issuer"), "--out", str(tmp_path / "site"))
    shown = cli(tmp_path, "identity", "show", str(tmp_path / "site"), "--json")

    # Assert
    assert issued.exit_code == 0 and site.exit_code == 0, issued.output + site.output
    description = json.loads(shown.stdout)
    assert description["issuer"] == "CN=issuer:provisioner"
    assert description["trusted"].startswith("yes")


def test_issue_refuses_to_overwrite_an_identity_without_force(tmp_path):
    # Prepare
    cli(tmp_path, "identity", "init")
    out = str(tmp_path / "deployer")
    cli(tmp_path, "identity", "issue", "service", "deployer", "--out", out)
    before = (tmp_path / "deployer" / "key.pem").read_bytes()

    # Execute
    refused = cli(tmp_path, "identity", "issue", "service", "deployer", "--out", out)
    forced = cli(tmp_path, "identity", "issue", "service", "deployer", "--out", out, "--force")

    # Assert
    assert refused.exit_code == 1 and "pass --force" in refused.output
    assert forced.exit_code == 0
    assert (tmp_path / "deployer" / "key.pem").read_bytes() != before


def test_issue_without_a_root_says_how_to_make_one(tmp_path):
    # Execute
    result = cli(tmp_path, "identity", "issue", "service", "deployer",
                 "--out", str(tmp_path / "d"))

    # Assert
    assert result.exit_code == 1
    assert "arcflare identity init" in result.output


def test_show_describes_the_default_operator(tmp_path):
    # Prepare
    cli(tmp_path, "identity", "init")

    # Execute
    result = cli(tmp_path, "identity", "show", "--json")

    # Assert
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["principal"], shown["kind"], shown["org"]) == (
        "admin@arcflare.local", "person", "arcflare")
    assert shown["fingerprint"].startswith("sha256:") and len(shown["fingerprint"]) == 71
    assert shown["days_left"] >= 364 and shown["trusted"].startswith("yes")


def test_show_as_someone_absent_names_who_is_present(tmp_path):
    # Prepare
    cli(tmp_path, "identity", "init")

    # Execute
    result = cli(tmp_path, "identity", "show", "--as", "lead@hospital-a.org")

    # Assert
    assert result.exit_code == 1
    assert "present: admin@arcflare.local" in " ".join(result.output.split())


def test_show_marks_an_identity_from_another_root_untrusted(tmp_path):
    # Prepare
    cli(tmp_path / "other", "identity", "init")
    cli(tmp_path / "ours", "identity", "init")

    # Execute
    result = cli(tmp_path / "ours", "identity", "show",
                 str(tmp_path / "other" / "identity" / "persons" / "admin@arcflare.local"),
                 "--json")

    # Assert
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["trusted"].startswith("no: the certificate chain")
