"""A site agent's signer follows the identity in its kit: a renewal puts a new one there."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from arcflare.runtime.identity import FollowingSigner
from arcflare.trust.authority import Issuer
from arcflare.trust.identity import IdentityFiles
from arcflare.trust.local import anchors_path, ensure_local_identities, issuer_identity_paths
from arcflare.trust.principals import Principal
from arcflare.trust.verifier import Verifier, load_anchors

FIELDS = {"message_id": "m-1", "type": "SiteHeartbeat"}


@pytest.fixture
def issue(tmp_path: Path):
    ensure_local_identities(tmp_path / "data")
    issuer = Issuer.load(issuer_identity_paths(tmp_path / "data").directory)

    def identity(where: Path, site: str = "site-1") -> IdentityFiles:
        shutil.rmtree(where, ignore_errors=True)
        issuer.issue(Principal.site_agent("fed", site), out_dir=where)
        return IdentityFiles(where)

    identity.verifier = Verifier(load_anchors(anchors_path(tmp_path / "data")))
    return identity


def leaf_serial(token: str) -> int:
    from cryptography import x509

    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    return x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0])).serial_number


def test_a_renewed_identity_in_the_kit_signs_the_next_message(issue, tmp_path):
    kit = issue(tmp_path / "kit" / "startup" / "arcflare")
    signer = FollowingSigner(kit, check_every_s=0)
    first = signer.sign(FIELDS, b"{}")

    renewed = issue(tmp_path / "renewed")
    for name in ("cert.pem", "key.pem", "chain.pem"):  # as the roll copies a kit's files
        shutil.copy2(renewed.directory / name, kit.directory / name)
    second = signer.sign(FIELDS, b"{}")

    assert leaf_serial(first) != leaf_serial(second)
    assert leaf_serial(second) == renewed.load().certificate.serial_number
    assert issue.verifier.verify(second, FIELDS, b"{}").id == "site:fed/site-1"


@pytest.mark.parametrize("replacement", ["half-copied", "another site"])
def test_what_is_not_a_whole_identity_of_the_same_site_is_passed_over(issue, tmp_path,
                                                                       replacement):
    kit = issue(tmp_path / "kit")
    signer = FollowingSigner(kit, check_every_s=0)
    before = leaf_serial(signer.sign(FIELDS, b"{}"))

    if replacement == "half-copied":
        other = issue(tmp_path / "other")
        shutil.copy2(other.directory / "cert.pem", kit.directory / "cert.pem")  # key still old
    else:
        other = issue(tmp_path / "other", site="site-2")
        for name in ("cert.pem", "key.pem", "chain.pem"):
            shutil.copy2(other.directory / name, kit.directory / name)

    assert leaf_serial(signer.sign(FIELDS, b"{}")) == before
    assert signer.principal.id == "site:fed/site-1"
