"""Relays committed outbox rows to the bus, in commit order, message_id = row id.

A crash between send and marking the row sent re-sends it on restart; the bus's
duplicate detection on message_id drops the copy. Each message is signed here, as the
service's own principal.

Nothing blocks the rows behind one: a message that cannot be sent as it is (over the size
limit, not encodable) is replaced by its bounded form when it has one (refusals keep their
first errors and the count), else parked with its reason and announced with
OutboxMessageParked (an alert by default).

Scheduled messages wait here until they are due and are sent then: withdrawing one is a
local write, so no crash can leave a withdrawn message scheduled at the broker.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

from arcflare.bus.codec import Unsigned, signed, unsigned
from arcflare.bus.port import Bus, MessageNotFound, MessageTooLarge, OutgoingMessage
from arcflare.contracts.base import message_class
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.events import OutboxMessageParked
from arcflare.contracts.topology import TOPOLOGY
from arcflare.observability import messaging
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore
from arcflare.trust.jws import Signer

log = get_logger("arcflare.runtime.outbox")

_SESSION_ENTITIES = {q.name for q in TOPOLOGY.queues if q.options.requires_session}
KEEP_SENT = timedelta(days=1)
#: a cancellation the broker refused is tried again this much later
CANCEL_RETRY_S = 30.0


class OutboxRelay:
    def __init__(self, state: StateStore, bus: Bus, signer: Signer, *, service: str = "",
                 batch: int = 200, cancel_retry_s: float = CANCEL_RETRY_S) -> None:
        self.state = state
        self.bus = bus
        self.signer = signer
        self.service = service
        self.batch = batch
        self.cancel_retry_s = cancel_retry_s
        self._lock = threading.Lock()  # one relay pass at a time keeps the order
        self._last_prune = datetime.min.replace(tzinfo=UTC)
        self._cancel_retry_at: float | None = None
        #: the relay's own connection, kept between passes (used under _lock): when a
        #: service's state file has no other connection open, each pass's new connection
        #: made SQLite create the WAL and its index, then checkpoint and delete them at
        #: close, twice a second for an idle service (an idle site agent: 15 opens and 4
        #: unlinks a second, most of its 0.8 % of a core)
        self._conn: sqlite3.Connection | None = None

    def relay(self) -> int:
        """Send every due row and carry out requested cancellations; returns how many rows
        were relayed (sent or parked)."""
        sent = 0
        with self._lock:
            while True:
                n = self._relay_batch()
                sent += n
                if n < self.batch:
                    break
            retry_due = (self._cancel_retry_at is not None
                         and time.monotonic() >= self._cancel_retry_at)
            if self.state.cancel_requested.is_set() or retry_due:
                self.state.cancel_requested.clear()
                self._cancel_retry_at = None
                self._cancel_at_broker()
            self._prune()
        return sent

    def close(self) -> None:
        """Close the relay's connection (the service's stop; a later pass opens another)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self.state.open()
        return self._conn

    def pending(self) -> int:
        """Rows due and not sent yet (scheduled ones count once they are due)."""
        with self.state.connect() as db:
            return db.execute(
                "SELECT COUNT(*) FROM _outbox WHERE sent_at IS NULL AND "
                "(deliver_at IS NULL OR deliver_at <= ?)", (datetime.now(UTC).isoformat(),)
            ).fetchone()[0]

    def backlog(self, now: datetime) -> tuple[int, float]:
        """Rows due and not sent yet, and the age in seconds of the oldest (0 when none)."""
        with self.state.connect() as db:
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(COALESCE(deliver_at, created_at)) FROM _outbox "
                "WHERE sent_at IS NULL AND (deliver_at IS NULL OR deliver_at <= ?)",
                (now.isoformat(),)).fetchone()
        age = (now - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
        return count, max(0.0, age)

    def next_due(self) -> datetime | None:
        """When the earliest held scheduled message falls due (the relay's next wake-up)."""
        with self.state.connect() as db:
            row = db.execute("SELECT MIN(deliver_at) FROM _outbox WHERE sent_at IS NULL "
                             "AND deliver_at IS NOT NULL").fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def _relay_batch(self) -> int:
        now = datetime.now(UTC)
        db = self._db()
        rows = db.execute(
            "SELECT seq, id, entity, envelope, traceparent FROM _outbox WHERE sent_at IS NULL "
            "AND (deliver_at IS NULL OR deliver_at <= ?) ORDER BY seq LIMIT ?",
            (now.isoformat(), self.batch),
        ).fetchall()
        if not rows:
            return 0
        # consecutive rows to the same entity go out as one batch, preserving order
        group: list = []
        for row in rows:
            if group and group[-1]["entity"] != row["entity"]:
                self._send(db, group, now)
                group = []
            group.append(row)
        self._send(db, group, now)
        return len(rows)

    def _send(self, db, rows: list, now: datetime) -> None:
        entity = rows[0]["entity"]
        ready = self._sign(db, [(row, item) for row in rows
                                if (item := self._prepare(db, row)) is not None], entity)
        if not ready:
            return
        try:
            self.bus.send(entity, [m for _, m in ready])
        except MessageTooLarge:
            # together too large for one batch: one at a time, parking what cannot go
            for row, message in ready:
                try:
                    self.bus.send(entity, [message])
                except MessageTooLarge as exc:
                    self._park(db, row, f"the broker refused it: {exc}")
                    continue
                self._mark_sent(db, [row], now)
            return
        self._mark_sent(db, [r for r, _ in ready], now)
        log.debug("outbox relayed", entity=entity, count=len(ready))

    def _prepare(self, db, row) -> Unsigned | None:
        try:
            envelope = Envelope.model_validate_json(row["envelope"])
            try:
                return unsigned(envelope, self.signer)
            except MessageTooLarge as exc:
                smaller = _bounded(envelope)
                if smaller is None:
                    raise
                log.warning("outgoing message over the size limit; sending its bounded form",
                            message_id=row["id"], type=envelope.type, error=str(exc))
                return unsigned(smaller, self.signer)
        except Exception as exc:  # noqa: BLE001 - one row must never hold up the rest
            self._park(db, row, f"{type(exc).__name__}: {exc}")
            return None

    def _sign(self, db, prepared: list, entity: str) -> list[tuple[object, OutgoingMessage]]:
        """The group under one batch signature (docs/decisions/0011); should that fail, each
        alone, so that one row that cannot be signed is parked and holds up nothing."""
        session = entity in _SESSION_ENTITIES

        def sign(group: list) -> list[tuple[object, OutgoingMessage]]:
            messages = signed([item for _, item in group], signer=self.signer, session=session)
            return [(row, messaging.stamp(message, row["traceparent"]))
                    for (row, _), message in zip(group, messages, strict=True)]

        if not prepared:
            return []
        try:
            return sign(prepared)
        except Exception as exc:  # noqa: BLE001 - fall back to one signature per row
            log.warning("a batch could not be signed; signing its rows one by one",
                        entity=entity, count=len(prepared), error=str(exc))
        ready = []
        for one in prepared:
            try:
                ready += sign([one])
            except Exception as exc:  # noqa: BLE001 - one row must never hold up the rest
                self._park(db, one[0], f"it could not be signed: {type(exc).__name__}: {exc}")
        return ready

    def _park(self, db, row, reason: str) -> None:
        reason = reason[:1900]
        try:
            envelope = Envelope.model_validate_json(row["envelope"])
            type_name, federation = envelope.type, envelope.federation
        except ValueError:
            type_name, federation = "unknown", None
        log.error("outgoing message parked: it can never be sent as it is",
                  message_id=row["id"], type=type_name, reason=reason)
        stamp = datetime.now(UTC).isoformat()
        db.execute("UPDATE _outbox SET sent_at = ?, parked = ? WHERE seq = ?",
                   (stamp, reason, row["seq"]))
        notice = Envelope.wrap(OutboxMessageParked(
            service=self.service or "unknown", message_type=type_name, message_id=row["id"],
            reason=reason, federation=federation))
        entity = self.state.channels.get("events", "events")
        db.execute("INSERT INTO _outbox (id, entity, envelope, created_at, traceparent) "
                   "VALUES (?,?,?,?,?)", (notice.message_id, entity,
                                          notice.model_dump_json(by_alias=True), stamp,
                                          row["traceparent"]))

    @staticmethod
    def _mark_sent(db, rows: list, now: datetime) -> None:
        db.executemany("UPDATE _outbox SET sent_at=? WHERE seq=?",
                       [(now.isoformat(), r["seq"]) for r in rows])

    def _cancel_at_broker(self) -> None:
        """Rows a version before 0.2 scheduled at the broker: cancel there what was withdrawn
        since. One that fell due meanwhile has been delivered: nothing is left to cancel."""
        db = self._db()
        rows = db.execute(
            "SELECT seq, id, entity, deliver_at, sequence_number FROM _outbox "
            "WHERE cancel = 'requested' AND sent_at IS NOT NULL"
        ).fetchall()
        now = datetime.now(UTC)
        for row in rows:
            due = datetime.fromisoformat(row["deliver_at"]) <= now
            if not due and row["sequence_number"] is not None:
                try:
                    self.bus.cancel_scheduled(row["entity"], row["sequence_number"])
                except MessageNotFound:
                    # the number names nothing (sent as a duplicate, or already enqueued):
                    # nothing is left to cancel, and retrying would never end
                    log.warning("no scheduled message under that number; nothing to cancel",
                                message_id=row["id"], sequence_number=row["sequence_number"])
                except Exception as exc:  # noqa: BLE001 - retried on the next pass
                    log.warning("cancelling a scheduled message failed; will retry",
                                message_id=row["id"], error=str(exc))
                    self._cancel_retry_at = time.monotonic() + self.cancel_retry_s
                    continue
            db.execute("UPDATE _outbox SET cancel='done' WHERE seq=?", (row["seq"],))
            log.info("scheduled message cancelled" if not due else
                     "scheduled message already delivered; nothing to cancel",
                     message_id=row["id"], entity=row["entity"])

    def _prune(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_prune < timedelta(minutes=10):
            return
        self._last_prune = now
        self._db().execute(
            "DELETE FROM _outbox WHERE sent_at IS NOT NULL AND sent_at < ? "
            "AND (deliver_at IS NULL OR deliver_at < ?) "
            "AND (cancel IS NULL OR cancel = 'done')",
            ((now - KEEP_SENT).isoformat(), now.isoformat()),
        )


def _bounded(envelope: Envelope) -> Envelope | None:
    """The envelope with its message's bounded form (refusals have one), or None."""
    try:
        message = message_class(envelope.type).model_validate(envelope.payload)
    except Exception:  # noqa: BLE001 - not a message we can shrink
        return None
    shrink = getattr(message, "bounded", None)
    if shrink is None:
        return None
    return envelope.model_copy(update={"payload": shrink().model_dump(mode="json")})
