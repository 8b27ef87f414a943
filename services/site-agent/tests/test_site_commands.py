"""The agent on the embedded bus: its subscription, log tails, restarts, what leaves."""
from __future__ import annotations

import pytest
from arcflare.bus.port import SubQueue
from arcflare.client.client import Client
from arcflare.contracts.commands import RestartSiteClient, TailSiteLogs
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION, site_subscription_name
from arcflare.site_agent.bootstrap import bootstrap
from site_agent_secrets import PLANTED, SECRETS


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "data" / "sites" / "fed-a" / "site-1"
    ws.mkdir(parents=True)
    (ws / "log.txt").write_text("\n".join(f"2026-11-29 08:00:{i:02d},000 - x - INFO - line {i}"
                                          for i in range(30)) + "\n")
    return ws


@pytest.fixture
def agent(agent_settings, workspace):
    svc = bootstrap(agent_settings(redaction_patterns=[r"MRN-\d+"], periodic_tail_s=60,
                                   tail_rate_per_minute=60))
    try:
        yield svc
    finally:
        svc.stop(timeout=5)
        svc.bus.close()


@pytest.fixture
def client(agent):
    return Client(agent.settings, bus=agent.bus)


def everything_published(bus) -> list[bytes]:
    bodies = []
    for topic in ("events", "telemetry"):
        bodies += [m.body for m in bus.peek(topic, FOLLOW_SUBSCRIPTION, max_messages=1000)]
    return bodies


def test_a_tail_answers_with_the_last_lines(agent, client):
    command_id = client.send(TailSiteLogs(federation="fed-a", site="site-1", lines=5))

    agent.drain()
    answer = client.wait(command_id, timeout=5)

    tail = answer.open()
    assert answer.type == "SiteLogTail" and tail.request_id == command_id
    assert [line[-7:] for line in tail.lines] == [f"line {i}" for i in range(25, 30)]


def test_planted_secrets_never_leave_the_site(agent, client, workspace):
    with open(workspace / "log.txt", "a") as f:
        f.write("\n".join(PLANTED) + "\n")
    command_id = client.send(TailSiteLogs(federation="fed-a", site="site-1", lines=200))
    reporter, periodic = agent.background

    reporter.tick()
    periodic.tick()
    agent.drain()
    answer = client.wait(command_id, timeout=5).open()

    assert answer.redacted_count >= 7
    bodies = everything_published(agent.bus)
    assert len(bodies) >= 3  # the heartbeat, the health change, the tail (and the periodic one)
    leaked = [s for s in SECRETS for body in bodies if s.encode() in body]
    assert leaked == []


def test_a_file_outside_the_allow_list_is_rejected(agent, client):
    command_id = client.send(TailSiteLogs(federation="fed-a", site="site-1",
                                          file="startup/client.key"))

    agent.drain()
    answer = client.wait(command_id, timeout=5)

    assert answer.type == "CommandRejected"
    assert answer.payload["reason"] == "invalid" and answer.payload["errors"][0]["field"] == "file"


def test_a_missing_log_is_not_found(agent, client, workspace):
    (workspace / "log.txt").unlink()
    command_id = client.send(TailSiteLogs(federation="fed-a", site="site-1"))

    agent.drain()
    answer = client.wait(command_id, timeout=5)

    assert answer.type == "CommandRejected" and answer.payload["reason"] == "not_found"


def test_tails_beyond_the_rate_limit_are_refused(agent_settings, workspace):
    svc = bootstrap(agent_settings(tail_rate_per_minute=1))
    try:
        client = Client(svc.settings, bus=svc.bus)
        ids = [client.send(TailSiteLogs(federation="fed-a", site="site-1")) for _ in range(2)]
        svc.drain()
        answers = [client.wait(i, timeout=5) for i in ids]
    finally:
        svc.stop(timeout=5)
        svc.bus.close()

    assert [a.type for a in answers] == ["SiteLogTail", "CommandRejected"]
    assert answers[1].payload["reason"] == "conflict"


def test_restart_is_refused_unless_the_site_allows_it(agent, client):
    command_id = client.send(RestartSiteClient(federation="fed-a", site="site-1"))

    agent.drain()
    answer = client.wait(command_id, timeout=5)

    assert answer.type == "CommandRejected" and answer.payload["reason"] == "Forbidden"
    assert "ARCFLARE_ALLOW_RESTART" in answer.payload["detail"]


def test_commands_for_another_site_are_not_delivered_here(agent, client):
    client.send(TailSiteLogs(federation="fed-a", site="site-2"))

    assert agent.drain() == 0


def test_a_command_for_a_same_named_site_of_another_federation_never_reaches_this_agent(
        agent_settings, workspace):
    svc = bootstrap(agent_settings(retry_backoff_base_s=0.01, retry_backoff_max_s=0.01))
    try:
        client = Client(svc.settings, bus=svc.bus)
        client.send(TailSiteLogs(federation="fed-b", site="site-1"))

        handled = svc.drain(timeout=5)
        published = {m.subject for t in ("events", "telemetry")
                     for m in svc.bus.peek(t, FOLLOW_SUBSCRIPTION, max_messages=100)}
        mine = site_subscription_name(svc.settings.federation, "site-1")
        left = svc.bus.peek("site-commands", mine)
        dead = svc.bus.peek("site-commands", mine, sub_queue=SubQueue.DEAD_LETTER)
    finally:
        svc.stop(timeout=5)  # closes the bus bootstrap opened

    assert handled == 0
    assert "SiteLogTail" not in published and "CommandRejected" not in published
    assert left == []
    assert dead == []


ADMINS = [
    {"email": "lead@consortium.org", "org": "consortium", "role": "lead"},
    {"email": "member@consortium.org", "org": "consortium", "role": "member"},
    {"email": "it@hospital-a.org", "org": "hospital_a", "role": "org_admin"},
    {"email": "it@hospital-b.org", "org": "hospital_b", "role": "org_admin"},
]


@pytest.mark.parametrize(("principal", "outcome"), [
    ("lead@consortium.org", "SiteLogTail"),
    ("it@hospital-a.org", "SiteLogTail"),        # org_admin of this site's org
    ("member@consortium.org", "CommandRejected"),
    ("it@hospital-b.org", "CommandRejected"),    # org_admin of another org
    ("stranger@elsewhere.org", "CommandRejected"),
])
def test_configured_admins_decide_who_may_tail_this_sites_logs(agent_settings, workspace,
                                                               principal, outcome):
    svc = bootstrap(agent_settings(admins=ADMINS, site_org="hospital_a"))
    try:
        client = Client(svc.settings, bus=svc.bus, issued_by=principal)
        command_id = client.send(TailSiteLogs(federation="fed-a", site="site-1", lines=3))
        svc.drain()
        answer = client.wait(command_id, timeout=5)
    finally:
        svc.stop(timeout=5)
        svc.bus.close()
    assert answer.type == outcome
    if outcome == "CommandRejected":
        assert answer.payload["reason"] == "Forbidden"
        assert answer.payload["proven_by"] == principal
