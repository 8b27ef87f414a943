"""azure-servicebus exceptions → the Bus port's errors.

Retryable: connection, communication, timeout, server busy, session cannot be
locked → BusUnavailable. Not retryable: lock lost / already settled →
MessageLockLost, session lock lost → SessionLockLost, missing entity →
EntityNotFound, no such scheduled message (`com.microsoft:message-not-found`, e.g.
cancelling a number that names none) → MessageNotFound.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from arcflare.bus.port import (
    BusError,
    BusUnavailable,
    EntityNotFound,
    InvalidMessage,
    MessageLockLost,
    MessageNotFound,
    MessageTooLarge,
    SessionLockLost,
)
from azure.servicebus import exceptions as sb

#: errors after which a receiver is rebuilt rather than trusted again
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    sb.ServiceBusConnectionError,
    sb.ServiceBusCommunicationError,
    sb.OperationTimeoutError,
    sb.ServiceBusServerBusyError,
    ConnectionError,
    OSError,
)


def to_port_error(exc: BaseException, what: str) -> BusError:
    if isinstance(exc, BusError):
        return exc
    if isinstance(exc, sb.MessageLockLostError | sb.MessageAlreadySettled):
        return MessageLockLost(f"{what}: the message lock was lost or it was already settled")
    if isinstance(exc, sb.SessionLockLostError):
        return SessionLockLost(f"{what}: the session lock was lost")
    if isinstance(exc, sb.MessageNotFoundError):
        return MessageNotFound(f"{what}: {exc}")
    if isinstance(exc, sb.MessagingEntityNotFoundError):
        return EntityNotFound(f"{what}: the entity does not exist; run `arcflare bus init`")
    if isinstance(exc, sb.MessageSizeExceededError):
        return MessageTooLarge(f"{what}: {exc}")
    if isinstance(exc, ValueError | TypeError):
        return InvalidMessage(f"{what}: {exc}")
    return BusUnavailable(f"{what}: {exc}")


@contextmanager
def port_errors(what: str) -> Iterator[None]:
    try:
        yield
    except BusError:
        raise
    except Exception as exc:
        raise to_port_error(exc, what) from exc
