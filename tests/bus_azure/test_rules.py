"""Rules rendered as SQL filters: the rule's own conditions AND the resubmission guard."""
from __future__ import annotations

import pytest
from arcflare.bus.rules import MATCH_ALL, rules_of, sql_expression
from arcflare.contracts.topology import Rule, site_subscription

GUARD = "(user.resubmitted_to IS NULL OR user.resubmitted_to = '{}')"


def test_a_subject_rule_is_a_label_condition_and_the_guard():
    assert sql_expression(Rule("SiteRemoved", subject="SiteRemoved"), "deployer") == (
        "sys.Label = 'SiteRemoved' AND " + GUARD.format("deployer"))


def test_a_site_rule_pins_both_properties_and_the_guard():
    subscription = site_subscription("fed-a", "site-1")

    [rule] = rules_of(subscription.rules)

    assert sql_expression(rule, subscription.name) == (
        "user.federation = 'fed-a' AND user.site = 'site-1' AND "
        + GUARD.format("fed-a.site-1"))


def test_a_subscription_without_rules_gets_the_guard_alone():
    [rule] = rules_of(())

    assert rule.name == MATCH_ALL
    assert sql_expression(rule, "ledger") == GUARD.format("ledger")


def test_quotes_in_values_are_doubled():
    assert sql_expression(Rule("r", properties={"site": "o'brien"}), "s") == (
        "user.site = 'o''brien' AND " + GUARD.format("s"))


def test_a_property_name_sql_cannot_name_plainly_is_refused():
    with pytest.raises(ValueError, match="rule property 'site id'"):
        sql_expression(Rule("r", properties={"site id": "x"}), "s")
