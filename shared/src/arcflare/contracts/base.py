"""Message base classes and the registry that maps a frozen type name to its model.

Commands are orders, events are past tense. Every concrete message class is
registered by its class name, which is its wire `type` and never changes.
"""
from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

SCHEMA = "arcflare.v1"

_REGISTRY: dict[str, type[Message]] = {}


class Message(BaseModel):
    """A payload. Strict: unknown fields and wrong types are errors, not guesses."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True)

    category: ClassVar[str] = "message"
    #: where the message travels: a queue name (commands) or a topic name (events)
    channel: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_") or cls.__dict__.get("abstract", False):
            return
        if cls.__name__ in _REGISTRY and _REGISTRY[cls.__name__] is not cls:
            raise TypeError(f"message type {cls.__name__} is defined twice")
        _REGISTRY[cls.__name__] = cls

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


class Command(Message):
    abstract: ClassVar[bool] = True
    category: ClassVar[str] = "command"


class Event(Message):
    abstract: ClassVar[bool] = True
    category: ClassVar[str] = "event"
    channel: ClassVar[str] = "events"


class Telemetry(Event):
    abstract: ClassVar[bool] = True
    channel: ClassVar[str] = "telemetry"


def message_types() -> dict[str, type[Message]]:
    """Every registered message type by name (importing the catalogue first)."""
    from arcflare.contracts import commands, events  # noqa: F401  (registers them)

    return dict(_REGISTRY)


def message_class(type_name: str) -> type[Message]:
    types = message_types()
    try:
        return types[type_name]
    except KeyError:
        raise UnknownMessageType(type_name) from None


class UnknownMessageType(LookupError):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown message type {type_name!r}")
        self.type_name = type_name
