"""A handler that only remembers what it was given: for tests of what reaches a consumer."""
from __future__ import annotations

from arcflare.contracts.base import message_class
from arcflare.contracts.topology import TOPOLOGY


class Seen:
    def __init__(self) -> None:
        self.messages: list = []


def record(message, *, seen: Seen) -> None:
    seen.messages.append(message)


def every_type_of(topic: str, subscription: str) -> dict:
    """`record` for every type the subscription delivers (a filtered subscription must have
    a handler for each, or the service refuses to start)."""
    rules = TOPOLOGY.subscription(topic, subscription).rules
    return {message_class(r.subject): record for r in rules}
