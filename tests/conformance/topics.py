"""Topics: one copy per subscription, correlation filters, subscriptions made at run time."""
from __future__ import annotations

from arcflare.bus.port import Bus
from arcflare.contracts.topology import Rule

from tests.conformance.base import ContractBase


class TopicContract(ContractBase):
    def test_every_subscription_gets_its_own_copy(self, bus: Bus):
        bus.send(self.topic, [self.message(message_id="news-1")])

        [a] = bus.receive(self.topic, self.all_subscription, max_wait=5)
        bus.complete(a)
        [b] = bus.receive(self.topic, self.transient_subscription, max_wait=5)

        assert a.message_id == b.message_id == "news-1"
        assert a.entity_path != b.entity_path

    def test_a_subscription_without_rules_gets_everything(self, bus: Bus):
        bus.send(self.topic, [self.message(subject="Anything"), self.message()])

        got = self.receive_all(bus, self.topic, self.all_subscription, count=2)

        assert len(got) == 2

    def test_a_message_matching_any_rule_is_copied(self, bus: Bus):
        key, value = self.filtered_property or ("unfiltered", "-")
        candidates = [
            self.message(message_id="by-subject", subject=self.filtered_subject),
            self.message(message_id="by-neither", subject="Other",
                         application_properties={key: f"not-{value}"}),
        ]
        if self.filtered_property:
            candidates.append(self.message(message_id="by-property", subject="Other",
                                           application_properties={key: value}))

        bus.send(self.topic, candidates)
        got = self.receive_all(bus, self.topic, self.filtered_subscription, count=3,
                               max_wait=1)

        expected = ["by-property", "by-subject"] if self.filtered_property else ["by-subject"]
        assert sorted(m.message_id for m in got) == expected

    def test_a_new_subscription_receives_the_next_message_with_its_rule(self, bus: Bus):
        rule = Rule(name="site", properties={"site": "hospital-a"})
        bus.ensure_subscription(self.topic, "site-hospital-a", rule)
        bus.ensure_subscription(self.topic, "site-hospital-a", rule)  # idempotent

        bus.send(self.topic, [
            self.message(message_id="for-a", application_properties={"site": "hospital-a"}),
            self.message(message_id="for-b", application_properties={"site": "hospital-b"}),
        ])
        got = self.receive_all(bus, self.topic, "site-hospital-a", count=2, max_wait=1)

        assert [m.message_id for m in got] == ["for-a"]

    def test_a_duplicate_sent_to_a_topic_reaches_no_subscription(self, bus: Bus):
        bus.send(self.topic, [self.message(message_id="once")])
        bus.send(self.topic, [self.message(message_id="once")])

        assert len(bus.peek(self.topic, self.all_subscription)) == 1

    def test_a_scheduled_topic_message_reaches_every_subscription_or_none(self, bus: Bus):
        kept = bus.schedule(self.topic, self.message(message_id="kept"), self.later(1))
        dropped = bus.schedule(self.topic, self.message(message_id="dropped"), self.later(1))

        bus.cancel_scheduled(self.topic, dropped)

        [first] = bus.receive(self.topic, self.all_subscription, max_wait=5)
        everywhere = [[first], *(bus.peek(self.topic, sub) for sub in (
            self.all_subscription, self.transient_subscription))]
        assert kept != dropped
        assert [[m.message_id for m in got] for got in everywhere] == [["kept"]] * 3

    def test_a_scheduled_topic_message_reaches_a_subscription_made_before_it_falls_due(
        self, bus: Bus
    ):
        bus.schedule(self.topic, self.message(message_id="for-late", application_properties={
            "site": "late-comer"}), self.later(1.5))
        bus.ensure_subscription(self.topic, "site-late-comer",
                                Rule(name="site", properties={"site": "late-comer"}))

        [got] = bus.receive(self.topic, "site-late-comer", max_wait=10)

        assert got.message_id == "for-late"
        bus.complete(got)
