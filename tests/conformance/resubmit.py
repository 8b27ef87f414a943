"""Resubmitting dead letters: a copy under a new id that names the original; nothing lost."""
from __future__ import annotations

import pytest
from arcflare.bus.port import ORIGINAL_MESSAGE_ID, Bus, MessageNotFound, SubQueue

from tests.conformance.base import ContractBase

DLQ = SubQueue.DEAD_LETTER


class ResubmitContract(ContractBase):
    def dead_letter(self, bus: Bus, entity: str, subscription: str | None = None,
                    **fields) -> str:
        sent = self.message(**fields)
        bus.send(entity, [sent])
        [got] = bus.receive(entity, subscription, max_wait=5)
        bus.dead_letter(got, "Broken", "try later")
        return sent.message_id

    @staticmethod
    def dead_letters(bus: Bus, entity: str, subscription: str | None = None) -> list[str]:
        return [m.message_id for m in bus.peek(entity, subscription, sub_queue=DLQ,
                                               max_messages=100)]

    def test_a_resubmitted_dead_letter_comes_back_under_a_new_id_naming_the_original(
        self, bus: Bus
    ):
        original = self.dead_letter(
            bus, *self.plain, body=b'{"n": 7}', subject="Again", correlation_id="c-9",
            content_type="application/x-test", application_properties={"site": "a", "n": 3})

        copy_id = bus.resubmit_dead_letter(self.queue, original, self.queue_subscription)
        [again] = bus.receive(*self.plain, max_wait=5)

        assert copy_id != original and again.message_id == copy_id
        assert (again.body, again.subject, again.correlation_id, again.content_type) == (
            b'{"n": 7}', "Again", "c-9", "application/x-test")
        assert {k: v for k, v in again.application_properties.items()
                if k in ("site", "n", ORIGINAL_MESSAGE_ID)} == {
            "site": "a", "n": 3, ORIGINAL_MESSAGE_ID: original}
        assert again.delivery_count == 1 and again.dead_letter_reason is None
        assert original not in self.dead_letters(bus, *self.plain)

    def test_a_copy_resubmitted_again_still_names_the_first_original(self, bus: Bus):
        original = self.dead_letter(bus, *self.plain)
        first_copy = bus.resubmit_dead_letter(self.queue, original, self.queue_subscription)
        [again] = bus.receive(*self.plain, max_wait=5)
        bus.dead_letter(again, "Broken", "still")

        second_copy = bus.resubmit_dead_letter(self.queue, first_copy, self.queue_subscription)
        [third] = bus.receive(*self.plain, max_wait=5)

        assert len({original, first_copy, second_copy}) == 3
        assert (third.message_id, third.application_properties[ORIGINAL_MESSAGE_ID]) == (
            second_copy, original)

    def test_a_resubmit_inside_the_duplicate_window_is_not_dropped(self, bus: Bus):
        original = self.dead_letter(bus, *self.plain)
        bus.send(self.queue, [self.message(message_id=original)])  # dropped: a duplicate

        bus.resubmit_dead_letter(self.queue, original, self.queue_subscription)

        assert len(self.receive_all(bus, *self.plain, count=2, max_wait=1)) == 1

    def test_a_resubmitted_session_message_keeps_its_session(self, bus: Bus):
        fed, original = self.unique("fed"), self.unique("sessioned")
        bus.send(self.session_queue, [self.message(message_id=original, session_id=fed)])
        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as session:
            [got] = session.receive(max_wait=5)
            bus.dead_letter(got, "Broken", None)

        copy_id = bus.resubmit_dead_letter(self.session_queue, original)
        with bus.accept_session(self.session_queue, session_id=fed, max_wait=5) as session:
            [again] = session.receive(max_wait=5)
            bus.complete(again)

        assert (again.message_id, again.session_id) == (copy_id, fed)
        assert again.application_properties[ORIGINAL_MESSAGE_ID] == original

    def test_resubmitting_what_is_not_dead_lettered_is_reported(self, bus: Bus):
        with pytest.raises(MessageNotFound):
            bus.resubmit_dead_letter(self.queue, self.unique("never-dead"),
                                     self.queue_subscription)

    def test_a_resubmitted_topic_copy_returns_to_its_own_subscription_only(self, bus: Bus):
        # a sibling whose rules match the message too: only its own copy may be there
        original = self.dead_letter(bus, self.topic, self.all_subscription,
                                    subject=self.filtered_subject)
        sibling_before = [m.message_id for m in bus.peek(self.topic, self.filtered_subscription)]

        copy_id = bus.resubmit_dead_letter(self.topic, original, self.all_subscription)
        [again] = bus.receive(self.topic, self.all_subscription, max_wait=5)
        sibling_after = [m.message_id for m in bus.peek(self.topic, self.filtered_subscription)]

        assert original in sibling_before and sibling_after == sibling_before
        assert again.message_id == copy_id
        assert again.application_properties[ORIGINAL_MESSAGE_ID] == original
        assert original not in self.dead_letters(bus, self.topic, self.all_subscription)
        assert bus.receive(self.topic, self.all_subscription, max_wait=1) == []
