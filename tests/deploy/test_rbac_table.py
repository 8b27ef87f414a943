"""deploy/servicebus/README.md's least-privilege table says what the permission table says:
each identity may send exactly where the messages it is allowed to author travel."""
from __future__ import annotations

import re
from pathlib import Path

from arcflare.contracts.base import message_types
from arcflare.contracts.senders import (
    BRIDGE_TYPES,
    EVENT_OWNERS,
    SERVICE_COMMANDS,
    SITE_AGENT_TOPIC,
)
from arcflare.contracts.topology import TOPOLOGY

README = Path(__file__).resolve().parents[2] / "deploy" / "servicebus" / "README.md"
SERVICES = ("provisioner", "deployer", "job-controller", "metrics-relay", "alerter", "ledger")


def entity(name: str) -> str:
    return f"queues/{name}" if TOPOLOGY.queue(name) else f"topics/{name}"


def table() -> dict[str, set[str]]:
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] and not cells[0].startswith(("identity", "---")):
            rows[cells[0]] = set(re.findall(r"`((?:queues|topics)/[^`]+)`", cells[2]))
    return rows


def expected() -> dict[str, set[str]]:
    types = message_types()
    want = {}
    for service in SERVICES:
        # its own events, and refusals, which every consumer may publish
        sends = {entity("events")}
        sends |= {entity(types[name].channel) for name, owners in SERVICE_COMMANDS.items()
                  if service in owners}
        want[service] = sends
    want["site agent of site *S*"] = {entity(SITE_AGENT_TOPIC)}
    want["NVFlare server bridge"] = {entity(types[name].channel) for name in BRIDGE_TYPES}
    want["CLI users / SDK"] = {entity(cls.channel) for cls in types.values()
                               if cls.category == "command"}
    return want


def test_every_service_that_owns_an_event_is_in_the_table():
    assert set(EVENT_OWNERS.values()) <= set(SERVICES)


def test_the_senders_in_the_rbac_table_match_the_permission_table():
    rows = table()
    for identity, sends in expected().items():
        assert rows.get(identity) == sends, identity


def test_docs_permissions_is_the_generated_table():
    from arcflare.contracts.senders import markdown

    docs = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
    assert docs.read_text() == markdown(), \
        "regenerate: .venv/bin/python -m arcflare.contracts.senders > docs/permissions.md"
