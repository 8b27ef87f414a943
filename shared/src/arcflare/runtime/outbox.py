"""Relays committed outbox rows to the bus, in commit order, message_id = row id.

A crash between send and marking the row sent re-sends it on restart; the
bus's duplicate detection on message_id drops the copy.
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from arcflare.bus.codec import to_outgoing
from arcflare.bus.port import Bus
from arcflare.contracts.envelope import Envelope
from arcflare.contracts.topology import TOPOLOGY
from arcflare.runtime.logging import get_logger
from arcflare.runtime.state import StateStore

log = get_logger("arcflare.runtime.outbox")

_SESSION_ENTITIES = {q.name for q in TOPOLOGY.queues if q.options.requires_session}
KEEP_SENT = timedelta(days=1)
#: a cancellation the broker refused is tried again this much later
CANCEL_RETRY_S = 30.0


class OutboxRelay:
    def __init__(self, state: StateStore, bus: Bus, batch: int = 200,
                 cancel_retry_s: float = CANCEL_RETRY_S) -> None:
        self.state = state
        self.bus = bus
        self.batch = batch
        self.cancel_retry_s = cancel_retry_s
        self._lock = threading.Lock()  # one relay pass at a time keeps the order
        self._last_prune = datetime.min.replace(tzinfo=UTC)
        self._cancel_retry_at: float | None = None

    def relay(self) -> int:
        """Send every unsent row and carry out requested cancellations; returns how many
        rows were relayed."""
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
                self._cancel_requested()
            self._prune()
        return sent

    def pending(self) -> int:
        with self.state.connect() as db:
            return db.execute("SELECT COUNT(*) FROM _outbox WHERE sent_at IS NULL").fetchone()[0]

    def _relay_batch(self) -> int:
        with self.state.connect() as db:
            rows = db.execute(
                "SELECT seq, id, entity, envelope, deliver_at, cancel FROM _outbox "
                "WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
                (self.batch,),
            ).fetchall()
            if not rows:
                return 0
            now = datetime.now(UTC)
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
        immediate, scheduled = [], []
        stamp = now.isoformat()
        for row in rows:
            if row["cancel"] == "requested":  # withdrawn before it ever left
                db.execute("UPDATE _outbox SET sent_at=?, cancel='done' WHERE seq=?",
                           (stamp, row["seq"]))
                continue
            env = Envelope.model_validate_json(row["envelope"])
            msg = to_outgoing(env, session=entity in _SESSION_ENTITIES)
            at = datetime.fromisoformat(row["deliver_at"]) if row["deliver_at"] else None
            (scheduled if at and at > now else immediate).append((row, msg, at))
        if immediate:
            self.bus.send(entity, [m for _, m, _ in immediate])
            db.executemany("UPDATE _outbox SET sent_at=? WHERE seq=?",
                           [(stamp, r["seq"]) for r, _, _ in immediate])
        for row, msg, at in scheduled:
            # its sequence number is what the broker cancels it by
            number = self.bus.schedule(entity, msg, at)
            db.execute("UPDATE _outbox SET sent_at=?, sequence_number=? WHERE seq=?",
                       (stamp, number, row["seq"]))
        log.debug("outbox relayed", entity=entity, count=len(rows))

    def _cancel_requested(self) -> None:
        """Cancel at the broker what was scheduled there and withdrawn since. One that
        fell due meanwhile has been delivered: nothing is left to cancel."""
        with self.state.connect() as db:
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
        with self.state.connect() as db:
            # a scheduled row stays until it is due: cancelling needs its sequence number
            db.execute(
                "DELETE FROM _outbox WHERE sent_at IS NOT NULL AND sent_at < ? "
                "AND (deliver_at IS NULL OR deliver_at < ?) "
                "AND (cancel IS NULL OR cancel = 'done')",
                ((now - KEEP_SENT).isoformat(), now.isoformat()),
            )
