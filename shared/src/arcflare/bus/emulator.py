"""The Service Bus emulator's Config.json, rendered from TOPOLOGY.

The emulator takes one namespace, `sbemulatorns`, and enforces narrower limits
than Azure: TTL 5 min–1 h, lock ≤ 5 min, max delivery 1–10, duplicate detection
window 5 s–5 min. Values are clamped into those ranges so the same topology
starts the emulator; `deploy/servicebus/Config.json` is this rendering, and a
test keeps the two equal.
"""
from __future__ import annotations

from datetime import timedelta

from arcflare.bus.rules import rules_of, sql_expression
from arcflare.contracts.topology import EntityOptions, Rule, Subscription, Topology

NAMESPACE = "sbemulatorns"
TTL_RANGE = (timedelta(minutes=5), timedelta(hours=1))
LOCK_RANGE = (timedelta(seconds=5), timedelta(minutes=5))
DELIVERY_RANGE = (1, 10)
DUPLICATE_WINDOW_RANGE = (timedelta(seconds=5), timedelta(minutes=5))


def _clamp(value, bounds):
    low, high = bounds
    return max(low, min(high, value))


def iso_duration(value: timedelta) -> str:
    """timedelta → ISO 8601 ('PT1H', 'PT5M', 'PT1M30S'), the form the emulator reads."""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (
        f"{secs}S" if secs or not (hours or minutes) else "")
    return "PT" + parts


def _ttl(options: EntityOptions) -> str:
    return iso_duration(_clamp(options.default_ttl, TTL_RANGE))


def _duplicate_window(options: EntityOptions) -> str:
    return iso_duration(_clamp(options.duplicate_detection_window, DUPLICATE_WINDOW_RANGE))


def _receiving(options: EntityOptions) -> dict:
    return {
        "DeadLetteringOnMessageExpiration": options.dead_letter_on_expiration,
        "DefaultMessageTimeToLive": _ttl(options),
        "ForwardDeadLetteredMessagesTo": "",
        "ForwardTo": "",
        "LockDuration": iso_duration(_clamp(options.lock_duration, LOCK_RANGE)),
        "MaxDeliveryCount": _clamp(options.max_delivery_count, DELIVERY_RANGE),
        "RequiresSession": options.requires_session,
    }


def render_rule(rule: Rule, subscription: str) -> dict:
    return {"Name": rule.name, "Properties": {
        "FilterType": "Sql", "SqlFilter": {"SqlExpression": sql_expression(rule, subscription)}}}


def _subscription(subscription: Subscription) -> dict:
    return {
        "Name": subscription.name,
        "Properties": _receiving(subscription.options),
        "Rules": [render_rule(r, subscription.name) for r in rules_of(subscription.rules)],
    }


def render_emulator_config(topology: Topology) -> dict:
    queues = [
        {
            "Name": q.name,
            "Properties": {
                **_receiving(q.options),
                "DuplicateDetectionHistoryTimeWindow": _duplicate_window(q.options),
                "RequiresDuplicateDetection": True,
            },
        }
        for q in topology.queues
    ]
    topics = [
        {
            "Name": t.name,
            "Properties": {
                "DefaultMessageTimeToLive": _ttl(t.options),
                "DuplicateDetectionHistoryTimeWindow": _duplicate_window(t.options),
                "RequiresDuplicateDetection": True,
            },
            "Subscriptions": [_subscription(s) for s in t.subscriptions],
        }
        for t in topology.topics
    ]
    return {
        "UserConfig": {
            "Namespaces": [{"Name": NAMESPACE, "Queues": queues, "Topics": topics}],
            "Logging": {"Type": "File"},
        }
    }
