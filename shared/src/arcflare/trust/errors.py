"""Why a message's proof of origin was refused, and why an identity could not be used."""
from __future__ import annotations


class Unauthenticated(Exception):
    """The message does not prove who sent it. `description` is one sentence naming what failed;
    `reason` is what the dead-letter entry records."""

    reason = "Unauthenticated"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class IdentityError(ValueError):
    """An identity's files are missing, unreadable or do not belong together."""
