"""`<entity>/$management` request-response operations, as the SDK sends them.

Requests carry `operation` in application properties and a map body; replies carry
`statusCode`, `statusDescription` and (on failure) `errorCondition`.
"""
from __future__ import annotations

import time
import uuid

from proton import UNDESCRIBED, Array, Data, Message, symbol, timestamp

from .store import Entity, LockLost, Record, Store

VENDOR = "com.microsoft:"


class Reply:
    def __init__(self, status: int, body: object = None, condition: str | None = None,
                 description: str = "") -> None:
        self.status, self.body, self.condition, self.description = (
            status, body, condition, description)


def _items(value: object) -> list:
    return list(value.elements) if isinstance(value, Array) else list(value or [])


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def encode_record(record: Record, entity: Entity) -> Message:
    """The message as the broker hands it out: broker annotations and header added."""
    message = Message()
    message.decode(record.message.encode())
    annotations = dict(message.annotations or {})
    annotations[symbol("x-opt-sequence-number")] = record.sequence_number
    annotations[symbol("x-opt-enqueued-time")] = timestamp(int(record.enqueued_at * 1000))
    if record.lock_token is not None:
        annotations[symbol("x-opt-locked-until")] = timestamp(int(record.locked_until * 1000))
        annotations[symbol("x-opt-lock-token")] = record.lock_token
    if record.dead_letter_reason is not None:
        annotations[symbol("x-opt-deadletter-source")] = entity.name
        props = dict(message.properties or {})
        props["DeadLetterReason"] = record.dead_letter_reason
        props["DeadLetterErrorDescription"] = record.dead_letter_description or ""
        message.properties = props
    message.annotations = annotations
    message.delivery_count = record.delivery_count
    return message


def handle(store: Store, entity: Entity, request: Message, on_enqueue) -> Reply:
    operation = str((request.properties or {}).get("operation", ""))
    body = request.body if isinstance(request.body, dict) else {}
    name = operation.removeprefix(VENDOR)
    try:
        handler = _OPERATIONS[name]
    except KeyError:
        return Reply(501, condition="amqp:not-implemented",
                     description=f"the test peer does not implement {operation}")
    try:
        return handler(store, entity, body, on_enqueue)
    except LockLost as exc:
        return Reply(410, condition=VENDOR + "message-lock-lost", description=str(exc))


def _renew_lock(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    expirations = [
        timestamp(int(store.renew(entity, _uuid(t)) * 1000)) for t in _items(body["lock-tokens"])
    ]
    return Reply(200, {"expirations": Array(UNDESCRIBED, Data.TIMESTAMP, *expirations)})


def _schedule(store: Store, entity: Entity, body: dict, on_enqueue) -> Reply:
    numbers = []
    for item in body["messages"]:
        message = Message()
        message.decode(bytes(item["message"]))
        at = (message.annotations or {}).get(symbol("x-opt-scheduled-enqueue-time"))
        numbers.append(store.enqueue(entity, message, visible_at=(at / 1000 if at else None)))
    on_enqueue(entity)
    return Reply(200, {"sequence-numbers": Array(UNDESCRIBED, Data.LONG, *numbers)})


def _cancel(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    missing = [int(n) for n in _items(body["sequence-numbers"]) if not store.cancel(entity, int(n))]
    if missing:  # the broker's answer (Azure/azure-service-bus#239)
        return Reply(404, condition=VENDOR + "message-not-found",
                     description="Messages not found. Missing sequence numbers: "
                                 + ", ".join(map(str, missing)))
    return Reply(200, {})


def _peek(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    records = store.peek(entity, int(body.get("from-sequence-number", 1)),
                         int(body.get("message-count", 1)))
    if not records:
        return Reply(204)
    encoded = [{"message": encode_record(r, entity).encode()} for r in records]
    return Reply(200, {"messages": encoded})


def _update_disposition(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    status = str(body["disposition-status"])
    for token in _items(body["lock-tokens"]):
        record = store.find_locked(entity, _uuid(token))
        if status == "completed":
            store.complete(entity, record)
        elif status == "abandoned":
            store.release(entity, record, failed=True)
        elif status == "suspended":
            store.dead_letter(entity, record, body.get("deadletter-reason"),
                              body.get("deadletter-description"))
    return Reply(200, {})


def _session(entity: Entity, body: dict) -> str:
    return str(body["session-id"])


def _renew_session_lock(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    if _session(entity, body) not in entity.session_locks:
        return Reply(410, condition=VENDOR + "session-lock-lost", description="not locked")
    until = time.time() + entity.lock_duration
    return Reply(200, {"expiration": timestamp(int(until * 1000))})


def _get_session_state(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    return Reply(200, {"session-state": entity.session_state.get(_session(entity, body))})


def _set_session_state(store: Store, entity: Entity, body: dict, _: object) -> Reply:
    state = body.get("session-state")
    if state is None:
        entity.session_state.pop(_session(entity, body), None)
    else:
        entity.session_state[_session(entity, body)] = bytes(state)
    return Reply(200, {})


_OPERATIONS = {
    "renew-lock": _renew_lock,
    "schedule-message": _schedule,
    "cancel-scheduled-message": _cancel,
    "peek-message": _peek,
    "update-disposition": _update_disposition,
    "renew-session-lock": _renew_session_lock,
    "get-session-state": _get_session_state,
    "set-session-state": _set_session_state,
}
