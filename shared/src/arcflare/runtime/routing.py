"""The handler table is the routing: a service whose tables and subscriptions disagree, or
whose handlers ask for what bootstrap never wired, refuses to start and says why.

Checked for every consumer, against the topology the bus really has:
- each message type in its table can arrive on the entity it consumes (the type's channel,
  and for a subscription, one of its rules lets the type through);
- each type a filtered subscription delivers has a handler (else it would be settled as
  ignored: a message nobody reads);
- each handler's parameters after the message are wired (or have a default), so a missing
  dependency fails at start, not when the first message arrives.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from arcflare.contracts.base import message_types
from arcflare.contracts.senders import topics_of
from arcflare.contracts.topology import Rule, Topology

#: what the runtime adds to a service's dependencies for every handler call
PER_MESSAGE = frozenset({"uow", "envelope"})


class MisroutedService(ValueError):
    """A service whose handler tables, subscriptions and wiring disagree."""


def routing_problems(consumers: Iterable[Any], dependencies: Mapping[str, Any],
                     topology: Topology) -> list[str]:
    problems: list[str] = []
    wired = set(dependencies) | PER_MESSAGE
    for consumer in consumers:
        rules = _rules(consumer, topology, problems)
        if rules is None:
            continue
        handled = set()
        for kind, handler in consumer.handlers.items():
            name = kind.type_name()
            handled.add(name)
            if consumer.entity not in _entities(kind):
                problems.append(f"{consumer.name}: handles {name}, which travels on "
                                f"{' or '.join(sorted(_entities(kind)))}, not {consumer.entity}")
            elif rules and not any(r.subject in (None, name) and not r.properties
                                   for r in rules) and not _site_rule(rules):
                problems.append(f"{consumer.name}: handles {name}, but the subscription's "
                                "rules never deliver it (arcflare.contracts.topology)")
            missing = _unwired(handler, wired)
            if missing:
                problems.append(f"{consumer.name}: {handler.__qualname__} needs "
                                f"{', '.join(missing)}, which bootstrap does not wire")
        for name in sorted(_delivered(rules) - handled):
            problems.append(f"{consumer.name}: the subscription delivers {name}, which no "
                            "handler takes; handle it or drop it from the subscription's rules")
    return problems


def check_routing(consumers: Iterable[Any], dependencies: Mapping[str, Any],
                  topology: Topology, service: str) -> None:
    problems = routing_problems(consumers, dependencies, topology)
    if problems:
        raise MisroutedService(f"{service} cannot start: " + "; ".join(problems))


def _rules(consumer: Any, topology: Topology, problems: list[str]) -> tuple[Rule, ...] | None:
    """The subscription's rules (empty: everything), () for a queue, None if not found."""
    if consumer.subscription is None:
        if topology.queue(consumer.entity) is None and topology.topic(consumer.entity) is None:
            problems.append(f"{consumer.name}: no such queue in the topology")
            return None
        return ()
    sub = topology.subscription(consumer.entity, consumer.subscription)
    if sub is None:
        if topology.topic(consumer.entity) is None:
            problems.append(f"{consumer.name}: no such topic in the topology")
            return None
        return ()  # made at run time (a site's own subscription): rules of its own
    return sub.rules


def _entities(kind: type) -> frozenset[str]:
    return topics_of(kind.type_name(), kind.channel)


def _site_rule(rules: tuple[Rule, ...]) -> bool:
    """A per-site subscription filters on properties, not types: every type may come."""
    return all(r.subject is None for r in rules)


def _delivered(rules: tuple[Rule, ...]) -> set[str]:
    """The types a filtered subscription lets through (none known for unfiltered ones)."""
    if not rules or _site_rule(rules):
        return set()
    known = message_types()
    return {r.subject for r in rules if r.subject in known}


def _unwired(handler: Any, wired: set[str]) -> list[str]:
    params = list(inspect.signature(handler).parameters.values())[1:]
    return [p.name for p in params
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and p.default is inspect.Parameter.empty and p.name not in wired]
