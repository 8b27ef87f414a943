"""Conditions, keys and summaries over an event's fields (payload plus envelope)."""
from __future__ import annotations

from typing import Any

from arcflare.contracts.envelope import Envelope

_MISSING = object()


def fields_of(envelope: Envelope) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "federation": envelope.federation, "site": envelope.site,
        "issued_by": envelope.issued_by, "type": envelope.type,
    }
    fields.update({k: v for k, v in envelope.payload.items() if v is not None or k not in fields})
    return fields


def _lookup(fields: dict[str, Any], dotted: str) -> Any:
    value: Any = fields
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _holds(actual: Any, op: str, expected: Any) -> bool:
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if op == "contains":
        return actual is not None and expected in actual
    if actual is None or actual is _MISSING:
        return False
    try:
        return {"gt": actual > expected, "gte": actual >= expected,
                "lt": actual < expected, "lte": actual <= expected}[op]
    except TypeError:  # comparing text with a number: the rule cannot hold
        return False


def matches(when: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Every condition holds. A condition is a value (equality) or {operator: value, ...}."""
    for name, test in when.items():
        actual = _lookup(fields, name)
        tests = test if isinstance(test, dict) else {"eq": test}
        if not all(_holds(actual, op, expected) for op, expected in tests.items()):
            return False
    return True


def key_of(names: list[str], fields: dict[str, Any]) -> str:
    """What makes two alerts of a rule 'the same' (dedup, for-duration)."""
    parts = []
    for name in names:
        value = _lookup(fields, name)
        parts.append(f"{name}={'' if value is _MISSING or value is None else value}")
    return "|".join(parts)


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, fields: dict[str, Any]) -> str:
    values = _Blank({k: ("" if v is None else v) for k, v in fields.items()})
    try:
        return template.format_map(values).strip()
    except (ValueError, AttributeError, IndexError, KeyError):
        # a template the event cannot fill is still an alert: show the template itself
        return template
