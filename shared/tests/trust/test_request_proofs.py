"""HTTP request proofs: a person's signed claim to one request, and every way one is refused."""
from __future__ import annotations

import json

import jwt
import pytest
from arcflare.trust.authority import TrustRoot
from arcflare.trust.errors import Unauthenticated
from arcflare.trust.jws import Signer, b64url
from arcflare.trust.principals import Principal
from arcflare.trust.requests import (
    REQUEST_TYP,
    RequestVerifier,
    authorization,
    parse_authorization,
    request_proof,
)

LEAD = Principal.person("lead@hospital-a.org", "hospital_a")
NOW = 1_900_000_000.0
REQUEST = {"method": "GET", "target": "/federations/example?limit=5",
           "host": "ledger.example.org:8443"}


@pytest.fixture
def lead(issue):
    return issue(LEAD)


@pytest.fixture
def requests(verifier) -> RequestVerifier:
    return RequestVerifier(verifier, max_age_s=60, clock_skew_s=30, clock=lambda: NOW)


def refusal(requests: RequestVerifier, token: str, **request) -> str:
    with pytest.raises(Unauthenticated) as info:
        requests.verify(token, **{**REQUEST, **request})
    return info.value.description


def test_a_proof_verifies_as_the_person_for_that_request(lead, requests):
    token = request_proof(lead, "get", REQUEST["target"], "Ledger.Example.org:8443", now=NOW)

    principal = requests.verify(token, **REQUEST)

    assert principal == LEAD


def test_the_proof_is_a_standard_jws_any_library_verifies(lead):
    token = request_proof(lead, **REQUEST, now=NOW)

    decoded = jwt.api_jws.decode_complete(token, lead.certificate.public_key(),
                                          algorithms=["ES256"])

    assert decoded["header"]["typ"] == REQUEST_TYP
    assert json.loads(decoded["payload"]) == {**REQUEST, "iat": int(NOW)}


@pytest.mark.parametrize("changed", [{"method": "POST"}, {"target": "/federations/other"},
                                     {"target": "/federations/example?limit=6"},
                                     {"host": "evil.example:8443"}])
def test_a_proof_for_another_request_is_refused(lead, requests, changed):
    token = request_proof(lead, **REQUEST, now=NOW)

    problem = refusal(requests, token, **changed)

    assert "the proof was made for" in problem


def test_a_stale_proof_is_refused(lead, requests):
    token = request_proof(lead, **REQUEST, now=NOW - 61)

    assert "61 s old" in refusal(requests, token)


def test_a_proof_from_the_future_is_refused(lead, requests):
    token = request_proof(lead, **REQUEST, now=NOW + 31)

    assert "in the future" in refusal(requests, token)


def test_a_proof_from_another_root_is_refused(requests, tmp_path):
    stranger = TrustRoot.create(tmp_path / "other").issue(
        LEAD, out_dir=tmp_path / "stranger").load()
    token = request_proof(stranger, **REQUEST, now=NOW)

    assert "does not reach a trust anchor" in refusal(requests, token)


def test_a_tampered_payload_is_refused(lead, requests):
    header, _, signature = request_proof(lead, **REQUEST, now=NOW).split(".")
    forged = b64url(json.dumps({**REQUEST, "target": "/audit", "iat": int(NOW)}).encode())

    assert "does not match" in refusal(requests, f"{header}.{forged}.{signature}",
                                       target="/audit")


def test_a_message_signature_is_not_a_request_proof(lead, requests):
    envelope_signature = Signer(lead).sign({"message_id": "m-1"}, b"{}")

    assert "of type 'arcflare-envelope+jws'" in refusal(requests, envelope_signature)


def test_a_proof_with_extra_claims_is_refused(lead, requests):
    from arcflare.trust.jws import es256, protected_header

    header = protected_header(lead, REQUEST_TYP)
    payload = b64url(json.dumps({**REQUEST, "iat": int(NOW), "role": "admin"}).encode())
    token = f"{header}.{payload}.{es256(lead, f'{header}.{payload}'.encode())}"

    assert "exactly method, target, host, iat" in refusal(requests, token)


def test_the_authorization_header_names_the_scheme(lead):
    header = authorization(lead, "GET", "/audit", "ledger:8080")

    assert header.startswith("ArcFlare ") and parse_authorization(header) == header[9:]
    assert parse_authorization(None) is None
    with pytest.raises(Unauthenticated, match="must read 'ArcFlare <proof>'"):
        parse_authorization("Bearer abc")
