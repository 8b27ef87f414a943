"""A service's own SQLite state: its tables, the inbox and the outbox (docs/architecture.md §3).

One UnitOfWork per handled message. The handler's state writes, the inbox row
(this message id, for this consumer) and the events it publishes (outbox rows)
commit in one transaction, so a redelivered message has no second effect and
no event is published for a change that did not happen.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from arcflare.contracts.base import Command, Message
from arcflare.contracts.envelope import Envelope, new_id
from arcflare.observability.tracing import current_traceparent
from arcflare.runtime.files import private_dir, private_files

RUNTIME_SCHEMA = """
CREATE TABLE IF NOT EXISTS _inbox (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    outcome TEXT NOT NULL,            -- handled | rejected | failed (retries exhausted)
    reason TEXT, description TEXT,
    handled_at TEXT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE TABLE IF NOT EXISTS _outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,          -- the message id it is sent with
    entity TEXT NOT NULL,
    envelope TEXT NOT NULL,
    deliver_at TEXT,                  -- scheduled: held here until due, then sent (UTC ISO)
    created_at TEXT NOT NULL,
    sent_at TEXT,
    sequence_number INTEGER,          -- the broker's, for a row scheduled there (before 0.2)
    cancel TEXT,                      -- NULL | requested | done (scheduled messages only)
    parked TEXT,                      -- why it can never be sent as is (then sent_at is set)
    traceparent TEXT                  -- the trace context of the handler that wrote it
);
CREATE INDEX IF NOT EXISTS _outbox_unsent ON _outbox (sent_at, seq);
CREATE TABLE IF NOT EXISTS _migrations (n INTEGER PRIMARY KEY);
"""
#: columns added to _outbox after its first release: (name, declaration)
_OUTBOX_ADDED = (("sequence_number", "INTEGER"), ("cancel", "TEXT"), ("parked", "TEXT"),
                 ("traceparent", "TEXT"))


@dataclass(frozen=True)
class InboxEntry:
    outcome: str
    reason: str | None
    description: str | None


class StateStore:
    """The service's SQLite file. Connections are per unit of work (cheap, thread-safe)."""

    def __init__(self, path: Path, migrations: Sequence[str] = ()) -> None:
        self.path = Path(path)
        private_dir(self.path.parent)
        #: where published messages go, by their channel: a site agent, which may send only
        #: to `telemetry`, maps "events" there (set by the Service from its principal)
        self.channels: dict[str, str] = {}
        self.outbox_written = threading.Event()
        #: set when a unit of work withdrew a scheduled message (and at start, for
        #: withdrawals committed before a restart): the relay's cue to cancel
        self.cancel_requested = threading.Event()
        self.cancel_requested.set()
        with self.connect() as db:
            db.executescript(RUNTIME_SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(_outbox)")}
            for name, declaration in _OUTBOX_ADDED:
                if name not in have:  # a state file from before the column existed
                    db.execute(f"ALTER TABLE _outbox ADD COLUMN {name} {declaration}")
            db.execute("CREATE INDEX IF NOT EXISTS _outbox_cancel ON _outbox (cancel) "
                       "WHERE cancel = 'requested'")
            done = {n for (n,) in db.execute("SELECT n FROM _migrations")}
            for n, sql in enumerate(migrations):
                if n not in done:
                    db.executescript(f"BEGIN IMMEDIATE; {sql}; INSERT INTO _migrations VALUES ({n}); COMMIT;")
        private_files(self.path)

    def open(self) -> sqlite3.Connection:
        """A connection the caller closes (connect() for one unit of work)."""
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            db.close()
            raise
        db.row_factory = sqlite3.Row
        return db

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        db = self.open()
        try:
            yield db
        finally:
            db.close()

    def seen(self, consumer: str, message_id: str) -> InboxEntry | None:
        with self.connect() as db:
            row = db.execute(
                "SELECT outcome, reason, description FROM _inbox WHERE consumer=? AND message_id=?",
                (consumer, message_id),
            ).fetchone()
        return InboxEntry(*row) if row else None

    @contextmanager
    def unit_of_work(self, incoming: Envelope | None = None) -> Iterator[UnitOfWork]:
        """For background work: commits on success, rolls back on error."""
        with self.connect() as db:
            uow = UnitOfWork(db, incoming, store=self)
            try:
                yield uow
                if uow.dirty:
                    uow.commit()
            except BaseException:
                uow.rollback()
                raise


class UnitOfWork:
    def __init__(
        self,
        db: sqlite3.Connection,
        incoming: Envelope | None,
        *,
        store: StateStore,
    ) -> None:
        self.db = db
        self.envelope = incoming
        self._store = store
        self._in_transaction = False
        #: (entity, envelope, deliver at, trace context) of each message to publish
        self._pending: list[tuple[str, Envelope, datetime | None, str | None]] = []
        self._cancelled = False  # a cancellation for the relay to carry out
        self._after_commit: list[Callable[[], None]] = []

    def write(self) -> sqlite3.Connection:
        """The connection inside this unit's transaction (begun on first call)."""
        if not self._in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
        return self.db

    def publish(self, event: Message, *, at: datetime | None = None) -> str:
        """Publish an event (or telemetry) when this unit commits; `at` schedules it."""
        return self._add(event.channel, event, at)

    def send(self, command: Command, *, at: datetime | None = None) -> str:
        return self._add(command.channel, command, at)

    def cancel_scheduled(self, message_id: str) -> bool:
        """Withdraw a message published or sent earlier with `at`, when this unit commits.
        A scheduled message waits in the outbox until it is due, so withdrawing it is a local
        write that no crash can half-do. (Rows a version before 0.2 scheduled at the broker
        are cancelled there by the relay.) False if no such message is waiting."""
        before = len(self._pending)
        self._pending = [p for p in self._pending if p[1].message_id != message_id]
        if len(self._pending) < before:
            return True
        db, now = self.write(), datetime.now(UTC).isoformat()
        held = db.execute(
            "UPDATE _outbox SET cancel = 'done', sent_at = ? WHERE id = ? AND sent_at IS NULL "
            "AND deliver_at IS NOT NULL AND cancel IS NULL", (now, message_id)).rowcount
        if held:
            return True
        at_broker = db.execute(
            "UPDATE _outbox SET cancel = 'requested' WHERE id = ? AND deliver_at > ? "
            "AND sequence_number IS NOT NULL AND cancel IS NULL", (message_id, now),
        ).rowcount
        self._cancelled = self._cancelled or bool(at_broker)
        return bool(at_broker)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this unit's transaction has committed (never on rollback): for
        telling readers in the same process that what they read has changed."""
        self._after_commit.append(callback)

    @property
    def dirty(self) -> bool:
        return self._in_transaction or bool(self._pending)

    @property
    def pending(self) -> list[Envelope]:
        return [pending[1] for pending in self._pending]

    def _add(self, entity: str, message: Message, at: datetime | None) -> str:
        incoming = self.envelope
        # issued_by is stamped when the relay signs it: the service's own principal
        envelope = Envelope.wrap(
            message,
            message_id=new_id(),
            correlation_id=incoming.correlation_id if incoming else None,
            causation_id=incoming.message_id if incoming else None,
            on_behalf_of=_acting_for(incoming),
        )
        entity = self._store.channels.get(entity, entity)
        # the context of the handler writing the row travels with the message it becomes
        self._pending.append((entity, envelope, at, current_traceparent()))
        return envelope.message_id

    def commit(
        self,
        inbox: tuple[str, str] | None = None,
        outcome: str = "handled",
        reason: str | None = None,
        description: str | None = None,
        *,
        replace: bool = False,
    ) -> bool:
        """Commit state, inbox row and outbox rows together. False if the inbox row already
        existed (another consumer thread handled the same message): nothing is written.
        replace: overwrite an earlier outcome (a resubmitted message that ran again)."""
        self.write()
        now = datetime.now(UTC).isoformat()
        if inbox is not None:
            verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
            cur = self.db.execute(
                f"{verb} INTO _inbox VALUES (?, ?, ?, ?, ?, ?)",
                (*inbox, outcome, reason, description, now),
            )
            if cur.rowcount == 0:
                self.rollback()
                return False
        self.db.executemany(
            "INSERT INTO _outbox (id, entity, envelope, deliver_at, created_at, traceparent)"
            " VALUES (?,?,?,?,?,?)",
            [
                (env.message_id, entity, env.model_dump_json(by_alias=True),
                 at.astimezone(UTC).isoformat() if at else None, now, traceparent)
                for entity, env, at, traceparent in self._pending
            ],
        )
        self.db.execute("COMMIT")
        self._in_transaction = False
        if self._cancelled:
            self._store.cancel_requested.set()
        if self._pending or self._cancelled:
            self._store.outbox_written.set()
        self._pending = []
        self._cancelled = False
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()
        return True

    def rollback(self) -> None:
        if self._in_transaction:
            self.db.execute("ROLLBACK")
            self._in_transaction = False
        self._pending = []
        self._cancelled = False
        self._after_commit = []


def _acting_for(incoming: Envelope | None) -> str | None:
    """The person behind a flow: whom the incoming message acted for, else its issuer when
    that is a person (principals of services, sites and bridges have a "kind:" prefix)."""
    if incoming is None:
        return None
    if incoming.on_behalf_of:
        return incoming.on_behalf_of
    issuer = incoming.issued_by or ""
    return issuer if issuer and ":" not in issuer else None
