"""`arcflare bus init`: the plan, idempotent apply (against an in-memory stand-in for
ServiceBusAdministrationClient), and the emulator's plain-HTTP management port."""
from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

from arcflare.bus.admin import administration_client, init, plan
from arcflare.bus.azure import AzureBusOptions
from arcflare.bus.emulator import iso_duration
from arcflare.cli.main import app
from arcflare.contracts.topology import TOPOLOGY
from azure.core.exceptions import ResourceNotFoundError
from azure.servicebus.management import CorrelationRuleFilter, SqlRuleFilter, TrueRuleFilter
from typer.testing import CliRunner

EMULATOR = ("Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;")


class AdministrationStandIn:
    """Keeps entities in dicts with the SDK's method names and not-found error."""

    def __init__(self) -> None:
        self.entities: dict[tuple, SimpleNamespace] = {}
        self.rules: dict[tuple, SimpleNamespace] = {}

    def _get(self, key):
        if key not in self.entities:
            raise ResourceNotFoundError(f"{key} not found")
        return self.entities[key]

    def _put(self, key, **settings):
        self.entities[key] = SimpleNamespace(**settings)

    get_queue = lambda self, n: self._get(("queue", n))
    create_queue = lambda self, n, **kw: self._put(("queue", n), **kw)
    update_queue = lambda self, q: None
    get_topic = lambda self, n: self._get(("topic", n))
    create_topic = lambda self, n, **kw: self._put(("topic", n), **kw)
    update_topic = lambda self, t: None
    get_subscription = lambda self, t, s: self._get(("sub", t, s))
    update_subscription = lambda self, t, s: None

    def create_subscription(self, topic, name, **settings):
        self._put(("sub", topic, name), **settings)
        self.rules[(topic, name, "$Default")] = SimpleNamespace(name="$Default",
                                                               filter=TrueRuleFilter())

    def get_rule(self, topic, sub, name):
        if (topic, sub, name) not in self.rules:
            raise ResourceNotFoundError(name)
        return self.rules[(topic, sub, name)]

    def create_rule(self, topic, sub, name, filter):
        self.rules[(topic, sub, name)] = SimpleNamespace(name=name, filter=filter)

    def update_rule(self, topic, sub, rule):
        self.rules[(topic, sub, rule.name)] = rule

    def delete_rule(self, topic, sub, name):
        if self.rules.pop((topic, sub, name), None) is None:
            raise ResourceNotFoundError(name)


def test_the_plan_names_every_entity_and_rule_of_the_topology():
    paths = {(s.kind, s.path) for s in plan(TOPOLOGY)}

    assert {("queue", q.name) for q in TOPOLOGY.queues} <= paths
    for topic in TOPOLOGY.topics:
        assert ("topic", topic.name) in paths
        for sub in topic.subscriptions:
            assert ("subscription", f"{topic.name}/{sub.name}") in paths
            for rule in sub.rules:
                assert ("rule", f"{topic.name}/{sub.name}/{rule.name}") in paths


def test_init_creates_everything_then_changes_nothing_the_second_time():
    namespace = AdministrationStandIn()

    first = init(namespace)
    second = init(namespace)

    assert {r["outcome"] for r in first} == {"created"}
    assert {r["outcome"] for r in second} == {"unchanged"}
    assert len(first) == len(plan(TOPOLOGY))
    deployer_rules = {k[2]: v.filter for k, v in namespace.rules.items()
                      if k[:2] == ("events", "deployer")}
    assert set(deployer_rules) == {"FederationProvisioned", "SiteProvisioned", "SiteRemoved",
                                   "CertificateRenewed", "JobSubmitted", "JobCompleted",
                                   "JobFailed"}
    assert isinstance(deployer_rules["SiteRemoved"], SqlRuleFilter)
    assert deployer_rules["SiteRemoved"].sql_expression == (
        "sys.Label = 'SiteRemoved' AND (user.resubmitted_to IS NULL OR "
        "user.resubmitted_to = 'deployer')")
    # Service Bus's own match-all $Default would let every resubmitted copy in: replaced
    assert {k[2] for k in namespace.rules if k[:2] == ("events", "ledger")} == {"all"}


def test_init_replaces_the_correlation_filters_of_an_older_topology():
    namespace = AdministrationStandIn()
    init(namespace)
    namespace.rules[("events", "ledger", "$Default")] = SimpleNamespace(
        name="$Default", filter=TrueRuleFilter())
    old = namespace.rules[("events", "deployer", "SiteRemoved")]
    old.filter = CorrelationRuleFilter(label="SiteRemoved")

    outcomes = {r["path"]: r["outcome"] for r in init(namespace)}

    assert outcomes["events/deployer/SiteRemoved"] == "updated"
    assert isinstance(namespace.rules[("events", "deployer", "SiteRemoved")].filter,
                      SqlRuleFilter)
    assert ("events", "ledger", "$Default") not in namespace.rules


def test_init_updates_what_drifted():
    namespace = AdministrationStandIn()
    init(namespace)
    namespace.entities[("queue", "deployer")].lock_duration = timedelta(seconds=7)
    namespace.rules[("events", "deployer", "SiteRemoved")].filter = SqlRuleFilter(
        "sys.Label = 'Other'")

    outcomes = {r["path"]: r["outcome"] for r in init(namespace)}

    assert outcomes["deployer"] == "updated"
    assert outcomes["events/deployer/SiteRemoved"] == "updated"
    assert (namespace.entities[("queue", "deployer")].lock_duration
            == TOPOLOGY.queue("deployer").options.lock_duration)


def test_dry_run_prints_the_plan_without_any_namespace(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCFLARE_SERVICEBUS_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("ARCFLARE_SERVICEBUS_NAMESPACE", raising=False)

    result = CliRunner().invoke(app, ["bus", "init", "--dry-run", "--json",
                                      "--data-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["kind"], r["path"]) for r in rows] == [(s.kind, s.path) for s in plan(TOPOLOGY)]
    assert rows[0]["settings"]["lock_duration"] == iso_duration(
        TOPOLOGY.queues[0].options.lock_duration)


def test_init_can_create_the_subscriptions_of_named_sites(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCFLARE_SERVICEBUS_NAMESPACE", raising=False)

    result = CliRunner().invoke(app, ["bus", "init", "--dry-run", "--json", "--site",
                                      "fed-a/site-1", "--site", "fed-b/site-1",
                                      "--data-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    rules = {r["path"]: r["settings"]["properties"] for r in json.loads(result.stdout)
             if r["kind"] == "rule" and r["path"].startswith("site-commands/")}
    assert rules == {
        "site-commands/fed-a.site-1/site": {"federation": "fed-a", "site": "site-1"},
        "site-commands/fed-b.site-1/site": {"federation": "fed-b", "site": "site-1"},
    }


def test_a_malformed_site_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["bus", "init", "--dry-run", "--site", "site-1",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "FEDERATION/SITE" in result.output


def test_init_without_a_namespace_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCFLARE_SERVICEBUS_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("ARCFLARE_SERVICEBUS_NAMESPACE", raising=False)

    result = CliRunner().invoke(app, ["bus", "init", "--data-dir", str(tmp_path)])

    assert result.exit_code == 2
    assert "ARCFLARE_SERVICEBUS_NAMESPACE" in result.output


def test_the_emulator_management_port_is_reached_over_plain_http():
    client = administration_client(AzureBusOptions(connection_string=EMULATOR))

    assert client._impl._client._base_url == "http://localhost:5300"
