"""`arcflare bus init`: every queue, topic, subscription and rule from TOPOLOGY,
created or updated with ServiceBusAdministrationClient, idempotently. Rules are SQL
filters that also steer resubmitted dead letters (arcflare.bus.rules).

`plan(topology)` needs no namespace (`--dry-run`). Against the emulator the
administration client must reach its management port (5300) over plain HTTP; the
SDK hard-codes `https://`, so its base URL is switched.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from arcflare.bus.azure.config import AzureBusOptions
from arcflare.bus.port import EntityStats
from arcflare.bus.rules import rules_of, sql_expression
from arcflare.contracts.topology import TOPOLOGY, EntityOptions, Rule, Topology

EMULATOR_MANAGEMENT_PORT = 5300
#: set on create only; Service Bus refuses to change them on an existing entity
CREATE_ONLY = ("requires_session", "requires_duplicate_detection")


@dataclass(frozen=True)
class Step:
    kind: str  # queue | topic | subscription | rule
    path: str
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "settings": self.settings}


def _receiving(options: EntityOptions) -> dict[str, Any]:
    return {
        "lock_duration": options.lock_duration,
        "max_delivery_count": options.max_delivery_count,
        "default_message_time_to_live": options.default_ttl,
        "dead_lettering_on_message_expiration": options.dead_letter_on_expiration,
        "requires_session": options.requires_session,
    }


def _duplicates(options: EntityOptions) -> dict[str, Any]:
    return {"requires_duplicate_detection": True,
            "duplicate_detection_history_time_window": options.duplicate_detection_window}


def rule_settings(rule: Rule, subscription: str) -> dict[str, Any]:
    return {"subject": rule.subject, "properties": dict(rule.properties),
            "sql": sql_expression(rule, subscription)}


def plan(topology: Topology = TOPOLOGY) -> list[Step]:
    """Everything `init` makes sure of, in order; no namespace needed."""
    steps = [Step("queue", q.name, {**_receiving(q.options), **_duplicates(q.options)})
             for q in topology.queues]
    for topic in topology.topics:
        steps.append(Step("topic", topic.name, {
            "default_message_time_to_live": topic.options.default_ttl,
            **_duplicates(topic.options)}))
        for sub in topic.subscriptions:
            steps.append(Step("subscription", f"{topic.name}/{sub.name}", _receiving(sub.options)))
            for rule in rules_of(sub.rules):
                steps.append(Step("rule", f"{topic.name}/{sub.name}/{rule.name}",
                                  rule_settings(rule, sub.name)))
    return steps


def administration_client(options: AzureBusOptions, *, credential: Any = None,
                          management_port: int = EMULATOR_MANAGEMENT_PORT):
    from azure.servicebus.management import ServiceBusAdministrationClient

    if options.connection_string:
        client = ServiceBusAdministrationClient.from_connection_string(options.connection_string)
        if options.uses_emulator:
            host = client.fully_qualified_namespace.split(":")[0].split("/")[0]
            client._impl._client._base_url = f"http://{host}:{management_port}"
        return client
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return ServiceBusAdministrationClient(options.namespace, credential)


def _changed(existing: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wanted.items()
            if k not in CREATE_ONLY and getattr(existing, k, None) != v}


def _apply_entity(get, create, update, name_args: tuple, settings: dict) -> str:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        existing = get(*name_args)
    except ResourceNotFoundError:
        create(*name_args, **settings)
        return "created"
    changes = _changed(existing, settings)
    if not changes:
        return "unchanged"
    for key, value in changes.items():
        setattr(existing, key, value)
    update(existing) if len(name_args) == 1 else update(name_args[0], existing)
    return "updated"


def _same_sql(current: Any, wanted: str) -> bool:
    from azure.servicebus.management import SqlRuleFilter

    return isinstance(current, SqlRuleFilter) and " ".join(
        (current.sql_expression or "").split()) == wanted


def _apply_rule(client, topic: str, sub: str, rule: Rule) -> str:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.servicebus.management import SqlRuleFilter

    wanted = sql_expression(rule, sub)
    try:
        existing = client.get_rule(topic, sub, rule.name)
    except ResourceNotFoundError:
        client.create_rule(topic, sub, rule.name, filter=SqlRuleFilter(wanted))
        return "created"
    if _same_sql(existing.filter, wanted):
        return "unchanged"
    existing.filter = SqlRuleFilter(wanted)
    client.update_rule(topic, sub, existing)
    return "updated"


def _drop_stray_default(client, topic: str, sub: str) -> None:
    """A new subscription gets $Default (match everything, resubmitted copies for other
    subscriptions included): it goes once the subscription's own rules are in place."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        client.delete_rule(topic, sub, "$Default")
    except ResourceNotFoundError:
        pass


def ensure_subscription(client, topic: str, name: str, rules: tuple[Rule, ...],
                        options: EntityOptions | None = None) -> list[dict[str, str]]:
    """The subscription, its rules (none: match everything), and no $Default."""
    from arcflare.contracts.topology import SITE_COMMANDS

    done = [{"kind": "subscription", "path": f"{topic}/{name}", "outcome": _apply_entity(
        client.get_subscription, client.create_subscription, client.update_subscription,
        (topic, name), _receiving(options or SITE_COMMANDS))}]
    for r in rules_of(rules):
        done.append({"kind": "rule", "path": f"{topic}/{name}/{r.name}",
                     "outcome": _apply_rule(client, topic, name, r)})
    _drop_stray_default(client, topic, name)
    return done


def init(client, topology: Topology = TOPOLOGY) -> list[dict[str, str]]:
    """Create or update everything in the plan; returns what happened to each."""
    results = []
    for q in topology.queues:
        outcome = _apply_entity(client.get_queue, client.create_queue, client.update_queue,
                                (q.name,), {**_receiving(q.options), **_duplicates(q.options)})
        results.append({"kind": "queue", "path": q.name, "outcome": outcome})
    for t in topology.topics:
        outcome = _apply_entity(client.get_topic, client.create_topic, client.update_topic,
                                (t.name,), {"default_message_time_to_live": t.options.default_ttl,
                                            **_duplicates(t.options)})
        results.append({"kind": "topic", "path": t.name, "outcome": outcome})
        for s in t.subscriptions:
            results += ensure_subscription(client, t.name, s.name, s.rules, s.options)
    return results


def entity_stats(client) -> list[EntityStats]:
    stats = []
    for q in client.list_queues_runtime_properties():
        stats.append(EntityStats(q.name, "queue", q.active_message_count,
                                 q.scheduled_message_count, q.dead_letter_message_count))
    for t in client.list_topics_runtime_properties():
        stats.append(EntityStats(t.name, "topic", 0, t.scheduled_message_count, 0))
        for s in client.list_subscriptions_runtime_properties(t.name):
            stats.append(EntityStats(f"{t.name}/subscriptions/{s.name}", "subscription",
                                     s.active_message_count, 0, s.dead_letter_message_count))
    return stats
