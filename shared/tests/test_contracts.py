"""The message catalogue: every docs/architecture.md §2 message, strict validation, the envelope."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from arcflare.bus.codec import DecodeError, check_depth, from_received, to_outgoing
from arcflare.bus.port import MessageTooLarge, ReceivedMessage
from arcflare.contracts import Envelope, field_errors, message_types
from arcflare.contracts.asyncapi import asyncapi_document, export
from arcflare.contracts.commands import CreateFederation, SubmitJob
from arcflare.contracts.events import MetricsReported, SiteProvisioned
from arcflare.contracts.outcomes import SUCCESS
from pydantic import ValidationError

from tests.support.signing import signer_for

ROOT = Path(__file__).resolve().parents[2]

DESIGN_COMMANDS = [
    "CreateFederation", "AddSite", "RemoveSite", "DeployServer", "DeploySite", "StopSite",
    "RestartSite", "TeardownFederation", "SubmitJob", "AbortJob", "RefreshFederationStatus",
    "TailSiteLogs", "RestartSiteClient", "RenewCertificate",
]
DESIGN_EVENTS = [
    "FederationProvisioned", "SiteProvisioned", "SiteRemoved", "CertificateExpiring",
    "ServerDeployed", "SiteDeployed", "DeploymentFailed", "SiteStopped", "JobSubmitted",
    "JobStatusChanged", "JobCompleted", "FederationStatusObserved", "SiteHealthChanged",
    "ModelRegistered", "AlertRaised", "CommandRejected", "SiteHeartbeat", "SiteLogTail",
    "MetricsReported", "FlareEventObserved", "CertificateRenewed", "ParticipantRolled",
    "RollPostponed", "RollRefused",
]


def spec(**overrides):
    base = {
        "name": "hospitals",
        "sites": [{"name": "site-a", "org": "org_a"}, {"name": "site-b", "org": "org_b"}],
        "admins": [{"email": "lead@example.org", "org": "org_a", "role": "project_admin"}],
    }
    return base | overrides


def test_every_design_message_exists_with_its_kind():
    types = message_types()
    for name in DESIGN_COMMANDS:
        assert types[name].category == "command", name
    for name in DESIGN_EVENTS:
        assert types[name].category == "event", name


def test_every_command_has_a_success_outcome():
    assert set(SUCCESS) == set(DESIGN_COMMANDS)


def test_unknown_field_is_an_error_naming_it():
    with pytest.raises(ValidationError) as err:
        CreateFederation(**spec(colour="blue"))
    assert field_errors(err.value) == [
        {"field": "colour", "problem": "Extra inputs are not permitted"}]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "bad name!"}, "name"),
        ({"sites": [{"name": "a/b", "org": "o"}]}, "sites.0.name"),
        ({"sites": [{"name": "a", "org": "has-dash"}]}, "sites.0.org"),
        ({"server": {"host": "localhost", "port": 80}}, "server.port"),
        ({"admins": [{"email": "nobody", "org": "o", "role": "project_admin"}]}, "admins.0.email"),
        ({"admins": [{"email": "a@b.org", "org": "o", "role": "king"}]}, "admins.0.role"),
        ({"cert_validity_days": 0}, "cert_validity_days"),
    ],
)
def test_bad_spec_names_the_field(overrides, field):
    with pytest.raises(ValidationError) as err:
        CreateFederation(**spec(**overrides))
    assert field in [e["field"] for e in field_errors(err.value)]


def test_duplicate_site_names_are_refused():
    sites = [{"name": "a", "org": "o"}, {"name": "a", "org": "o"}]
    with pytest.raises(ValidationError, match="repeated: a"):
        CreateFederation(**spec(sites=sites))


def test_wrong_types_are_not_coerced_silently():
    with pytest.raises(ValidationError):
        SubmitJob(federation="f", name="j", package={"kind": "recipe", "recipe": "x"},
                  min_clients="many")


def test_nan_metrics_are_refused():
    with pytest.raises(ValidationError, match="finite"):
        MetricsReported(federation="f", job_id="j", site="s",
                        points=[{"key": "acc", "value": float("nan"), "timestamp_ms": 1}])


def test_envelope_round_trip_through_the_bus_mapping(tmp_path):
    command = CreateFederation(**spec())
    envelope = Envelope.wrap(command, issued_by="someone-else@example.org")
    out = to_outgoing(envelope, session=True, signer=signer_for(tmp_path, "lead@example.org"))
    assert out.application_properties["signature"].count(".") == 2
    assert out.session_id == "hospitals" and out.subject == "CreateFederation"
    received = _received(out.body, out.application_properties, out.message_id, out.subject,
                         out.correlation_id)
    back = from_received(received)
    assert back.open() == command
    # issued_by is whoever signs, never what the envelope said before
    assert back.issued_by == "lead@example.org" and back.correlation_id == envelope.message_id


def test_bytes_valued_properties_and_non_ascii_payloads_decode():
    event = SiteProvisioned(
        federation="f", site="s", org="Hôpital_Ünï", kit_ref="file:/k",
        cert_fingerprint=":".join(["AB"] * 32), not_after="2027-01-01T00:00:00Z")
    env = Envelope.wrap(event)
    props = {k.encode(): v.encode() for k, v in env.application_properties().items()}
    back = from_received(_received(env.body(), props, env.message_id, None, None))
    assert back.open().org == "Hôpital_Ünï"


@pytest.mark.parametrize(
    ("body", "props", "reason"),
    [
        (b"\xff\xfe garbage", {"type": "CreateFederation"}, "InvalidBody"),
        (b"{not json", {"type": "CreateFederation"}, "InvalidJson"),
        (b"[1, 2]", {"type": "CreateFederation"}, "InvalidJson"),
        (b"{}", {}, "MissingType"),
    ],
)
def test_malformed_messages_are_decode_errors_with_a_reason(body, props, reason):
    with pytest.raises(DecodeError) as err:
        from_received(_received(body, props, "m1", None, None))
    assert err.value.reason == reason


def test_oversized_payload_is_refused_at_the_sender(tmp_path):
    from arcflare.contracts.events import SiteLogTail

    tail = SiteLogTail(federation="f", site="s", file="log.txt", lines=["x" * 2000] * 150)
    with pytest.raises(MessageTooLarge, match="limit is 262144"):
        to_outgoing(Envelope.wrap(tail), signer=signer_for(tmp_path, "site:f/s"))


def test_json_nested_too_deep_is_refused_before_parsing_and_strings_do_not_count():
    check_depth(b'{"a":' * 32 + b"1" + b"}" * 32)
    with pytest.raises(DecodeError) as err:
        check_depth(b'{"a":' * 33 + b"1" + b"}" * 33)
    assert err.value.reason == "TooDeep"
    check_depth(b'{"s":"' + b"[[[[{{{{" * 100 + b'\\"}')  # brackets inside a string


def test_every_message_type_has_an_author_in_the_permission_table():
    from arcflare.contracts.base import message_types
    from arcflare.contracts.senders import permission_rows

    rows = dict(permission_rows())
    assert set(rows) == set(message_types())
    assert not [name for name, who in rows.items() if "nobody" in who]


def test_checked_in_asyncapi_and_schemas_are_current(tmp_path):
    export(tmp_path)
    checked_in = ROOT / "deploy" / "asyncapi"
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    current = {p.name: p.read_text() for p in checked_in.iterdir()}
    assert fresh == current, "run: .venv/bin/arcflare schema export deploy/asyncapi"


def test_asyncapi_refs_all_resolve_and_cover_every_message():
    doc = asyncapi_document()
    assert doc["asyncapi"].startswith("3.")

    def resolve(ref: str):
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    refs = []

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for ref in refs:
        resolve(ref)
    assert set(doc["components"]["messages"]) == set(message_types())
    on_channels = {m for c in doc["channels"].values() for m in c["messages"]}
    assert on_channels == set(message_types())


def test_message_json_schemas_validate_real_payloads(tmp_path):
    import jsonschema

    export(tmp_path)
    schema = json.loads((tmp_path / "CreateFederation.schema.json").read_text())
    payload = CreateFederation(**spec()).model_dump(mode="json")
    jsonschema.validate(payload, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(payload | {"colour": 1}, schema)


def _received(body, props, message_id, subject, correlation_id) -> ReceivedMessage:
    from datetime import UTC, datetime

    return ReceivedMessage(
        body=body, message_id=message_id, subject=subject, correlation_id=correlation_id,
        session_id=None, content_type="application/json", application_properties=props,
        sequence_number=1, delivery_count=1, enqueued_time=datetime.now(UTC),
        entity_path="provisioner")
