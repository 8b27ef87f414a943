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
from arcflare.trust.jws import thumbprint
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


def sign(signer: FollowingSigner) -> tuple[str, str]:
    """A message's token and the chain it travels with, as the codec asks for them."""
    chain, [(token, _)] = signer.sign_batch([(FIELDS, b"{}")])
    return token, chain


def leaf_serial(signed: tuple[str, str]) -> int:
    """The serial of the certificate the token names, checked to be the chain's leaf."""
    from cryptography import x509

    token, chain = signed
    leaf = base64.b64decode(chain.split(",")[0])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["x5t#S256"] == thumbprint(leaf)
    return x509.load_der_x509_certificate(leaf).serial_number


def test_a_renewed_identity_in_the_kit_signs_the_next_message(issue, tmp_path):
    kit = issue(tmp_path / "kit" / "startup" / "arcflare")
    signer = FollowingSigner(kit, check_every_s=0)
    first = sign(signer)

    renewed = issue(tmp_path / "renewed")
    for name in ("cert.pem", "key.pem", "chain.pem"):  # as the roll copies a kit's files
        shutil.copy2(renewed.directory / name, kit.directory / name)
    second = sign(signer)

    assert leaf_serial(first) != leaf_serial(second)
    assert leaf_serial(second) == renewed.load().certificate.serial_number
    assert issue.verifier.verify(second[0], FIELDS, b"{}", chain=second[1]).id == \
        "site:fed/site-1"


@pytest.mark.parametrize("replacement", ["half-copied", "another site"])
def test_what_is_not_a_whole_identity_of_the_same_site_is_passed_over(issue, tmp_path,
                                                                       replacement):
    kit = issue(tmp_path / "kit")
    signer = FollowingSigner(kit, check_every_s=0)
    before = leaf_serial(sign(signer))

    if replacement == "half-copied":
        other = issue(tmp_path / "other")
        shutil.copy2(other.directory / "cert.pem", kit.directory / "cert.pem")  # key still old
    else:
        other = issue(tmp_path / "other", site="site-2")
        for name in ("cert.pem", "key.pem", "chain.pem"):
            shutil.copy2(other.directory / name, kit.directory / name)

    assert leaf_serial(sign(signer)) == before
    assert signer.principal.id == "site:fed/site-1"
