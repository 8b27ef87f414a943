"""A subscription's rules as Service Bus SQL filters that also steer resubmitted copies.

Service Bus cannot send to one subscription: a subscription's dead letter can only
be resubmitted through its topic, where every subscription whose rules match would get
a copy (Azure/azure-service-bus#445: "by design"; #706 asks for it). So the copy is
marked `resubmitted_to=<subscription>`, and every rule of every subscription is
rendered as its own conditions AND a guard:

    sys.Label = 'SiteRemoved' AND (user.resubmitted_to IS NULL
                                   OR user.resubmitted_to = 'deployer')

A message nobody resubmitted has no `resubmitted_to`, and `IS NULL` holds for a
property that does not exist ("Subscription Rule SQL Filter Syntax", learn.microsoft.com),
so it is matched exactly as the correlation filter the rule describes would; a
resubmitted copy is matched only by the subscription it names. A subscription without
rules gets one rule, MATCH_ALL, the guard alone, in place of `$Default` (the emulator's
configuration does not accept a `$` in rule names).

SQL filters cost more to evaluate than correlation filters (nothing at control-plane
rates) and are capped at 2,000 per topic, as subscriptions are, which per-site
subscriptions (one rule each) reach no sooner.
"""
from __future__ import annotations

import re

from arcflare.bus.port import RESUBMITTED_TO
from arcflare.contracts.topology import Rule

MATCH_ALL = "all"

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def rules_of(subscription_rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """The rules to install: the subscription's own, or the one that matches everything."""
    return subscription_rules or (Rule(name=MATCH_ALL),)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _property(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"rule property {name!r}: use letters, digits and _ only, starting "
                         "with a letter, so it can be named in a SQL filter")
    return f"user.{name}"


def sql_expression(rule: Rule, subscription: str) -> str:
    """The rule's conditions (all must hold) and the resubmission guard, as a SQL filter."""
    target = _property(RESUBMITTED_TO)
    terms = [f"sys.Label = {_text(rule.subject)}"] if rule.subject is not None else []
    terms += [f"{_property(k)} = {_text(v)}" for k, v in sorted(rule.properties.items())]
    terms.append(f"({target} IS NULL OR {target} = {_text(subscription)})")
    return " AND ".join(terms)
