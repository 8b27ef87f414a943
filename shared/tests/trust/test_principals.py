"""Principals: the `issued_by` id and the certificate URI of each kind, and what is refused."""
from __future__ import annotations

import pytest
from arcflare.trust.principals import Principal

KINDS = [
    (Principal.person("Lead@Hospital-A.org", "hospital_a"), "lead@hospital-a.org",
     "urn:arcflare:person:lead@hospital-a.org"),
    (Principal.service("job-controller"), "service:job-controller",
     "urn:arcflare:service:job-controller"),
    (Principal.site_agent("example", "hospital-a"), "site:example/hospital-a",
     "urn:arcflare:site:example:hospital-a"),
    (Principal.bridge("example"), "bridge:example", "urn:arcflare:bridge:example"),
    (Principal.issuer("provisioner"), "issuer:provisioner", "urn:arcflare:issuer:provisioner"),
]


@pytest.mark.parametrize(("principal", "text", "uri"), KINDS, ids=[k[0].kind for k in KINDS])
def test_id_and_uri_spell_the_principal_and_parse_back(principal, text, uri):
    # Execute
    from_id, from_uri = Principal.from_id(text), Principal.from_uri(uri)

    # Assert
    assert (principal.id, principal.uri) == (text, uri)
    assert from_id.id == from_uri.id == text
    assert from_uri.kind == from_id.kind == principal.kind


def test_a_person_is_known_by_the_lowercase_email():
    # Execute
    principal = Principal("person", name="Admin@ArcFlare.Local")

    # Assert
    assert principal.name == principal.id == "admin@arcflare.local"


@pytest.mark.parametrize(("parse", "text", "problem"), [
    (Principal.from_id, "not-an-email", "neither an email"),
    (Principal.from_id, "service:Deployer", "name 'Deployer' is not valid"),
    (Principal.from_id, "service:", "name '' is not valid"),
    (Principal.from_id, "site:example", "site:<federation>/<site>"),
    (Principal.from_id, "site:example/../x", "site '../x' is not valid"),
    (Principal.from_id, "site:-bad/hospital", "federation '-bad' is not valid"),
    (Principal.from_id, "bridge:ex ample", "federation 'ex ample' is not valid"),
    (Principal.from_id, "robot:r2d2", "unknown kind 'robot'"),
    (Principal.from_uri, "urn:other:person:a@b.org", "is not an ArcFlare principal"),
    (Principal.from_uri, "urn:arcflare:person", "names no principal"),
    (Principal.from_uri, "urn:arcflare:site:example", "urn:arcflare:site:<federation>:<site>"),
    (Principal.from_uri, "urn:arcflare:person:nobody", "email 'nobody' is not valid"),
])
def test_a_malformed_id_or_uri_is_refused_with_the_reason(parse, text, problem):
    # Execute / Assert
    with pytest.raises(ValueError) as info:
        parse(text)
    assert problem in str(info.value)


def test_an_org_outside_the_nvflare_pattern_is_refused():
    # Execute / Assert
    with pytest.raises(ValueError, match="org 'Hospital A' is not valid"):
        Principal.person("lead@hospital-a.org", "Hospital A")
