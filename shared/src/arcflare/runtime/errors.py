"""How a handler says a message can never succeed (as opposed to 'try again')."""
from __future__ import annotations


class Rejected(Exception):
    """A permanent refusal: dead-letter now and answer with CommandRejected.

    reason is short and machine-readable ("invalid", "conflict", "not_found",
    "Forbidden"); detail is one sentence for a person; errors name fields.
    """

    def __init__(
        self, reason: str, detail: str = "", errors: list[dict[str, str]] | None = None,
        *, retry_for_s: float = 0.0,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.errors = errors or []
        #: events travel separately from commands: something "not found" may only not have
        #: arrived yet. Until the message is this old, retry it instead of rejecting it.
        self.retry_for_s = retry_for_s
