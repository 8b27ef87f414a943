"""SqliteBus: the embedded, Service Bus–compatible broker (one SQLite file,
many processes, one connection per thread)."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from arcflare.bus.port import (
    Bus,
    BusError,
    EntityStats,
    OutgoingMessage,
    ReceivedMessage,
    Session,
    SubQueue,
)
from arcflare.bus.sqlite import admin, receive, scheduled, schema, send, sessions
from arcflare.bus.sqlite.catalogue import Catalogue
from arcflare.bus.sqlite.doorbell import Doorbell
from arcflare.bus.sqlite.housekeeping import Housekeeper
from arcflare.bus.sqlite.rows import at
from arcflare.bus.sqlite.schema import ACTIVE, DEAD_LETTERED
from arcflare.bus.sqlite.waiting import wait_for
from arcflare.contracts.topology import TOPOLOGY, Rule, Topology


class SqliteBus(Bus):
    def __init__(self, path: Path, topology: Topology = TOPOLOGY) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._topology = topology
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._guard = threading.Lock()
        self._closed = False
        self._catalogue = Catalogue()
        self._housekeeper = Housekeeper(self._catalogue)
        schema.create(self._conn(), topology)
        self._doorbell = Doorbell(self.path)

    @property
    def topology(self) -> Topology:
        return self._topology

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._closed:
            with self._guard:
                if self._closed:
                    raise BusError(f"the bus at {self.path} is closed")
                self._close_connections_of_finished_threads()
                conn = self._local.conn = schema.connect(self.path)
                self._connections.append((threading.current_thread(), conn))
        return conn

    def _close_connections_of_finished_threads(self) -> None:
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                conn.close()
        self._connections = alive

    # --- sending -----------------------------------------------------------
    def send(self, entity: str, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            conn = self._conn()
            _, destinations = send.send(conn, self._catalogue, entity, messages)
            self._doorbell.ring(destinations)
            self._housekeeper.maybe_run(conn)

    def schedule(self, entity: str, message: OutgoingMessage, enqueue_at: datetime) -> int:
        # nobody to wake: it falls due later, and waiting receivers re-check on their own
        return send.send(self._conn(), self._catalogue, entity, [message], enqueue_at)[0][0]

    def cancel_scheduled(self, entity: str, sequence_number: int) -> None:
        scheduled.cancel(self._conn(), self._catalogue, entity, sequence_number)

    # --- receiving -----------------------------------------------------------
    def receive(self, entity: str, subscription: str | None = None, *, max_messages: int = 1,
                max_wait: float = 0.0, sub_queue: SubQueue = SubQueue.ACTIVE,
                ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise ValueError(f"max_messages is {max_messages}; it must be at least 1")
        conn = self._conn()
        target = self._catalogue.receivable(conn, entity, subscription)
        state = DEAD_LETTERED if SubQueue(sub_queue) == SubQueue.DEAD_LETTER else ACTIVE
        if state == ACTIVE and target.requires_session:
            raise BusError(f"{target.path} requires sessions; receive through accept_session")

        def ready() -> bool:
            return receive.ready(conn, target, state)

        return wait_for(
            conn,
            # the read first: an empty entity never takes the write lock
            lambda: (receive.claim(conn, self._catalogue, target, max_messages, state=state)
                     if ready() else []),
            ready,
            max_wait,
            idle=lambda: self._housekeeper.maybe_run(conn),
            listener=self._doorbell.listener(target.path) if max_wait > 0 else None,
        )

    def accept_session(self, entity: str, subscription: str | None = None, *,
                       session_id: str | None = None, max_wait: float = 0.0) -> Session | None:
        target = self._catalogue.receivable(self._conn(), entity, subscription)
        if not target.requires_session:
            raise BusError(f"{target.path} does not use sessions; receive from it directly")
        return sessions.accept(self._conn, self._doorbell, self._catalogue, target, session_id,
                               max_wait)

    def complete(self, message: ReceivedMessage) -> None:
        conn = self._conn()
        receive.complete(conn, self._catalogue.entity(conn, message.entity_path), message)

    def abandon(self, message: ReceivedMessage) -> None:
        conn = self._conn()
        receive.abandon(conn, self._catalogue.entity(conn, message.entity_path), message)
        self._doorbell.ring([message.entity_path])

    def dead_letter(self, message: ReceivedMessage, reason: str,
                    description: str | None = None) -> None:
        conn = self._conn()
        receive.dead_letter(conn, self._catalogue.entity(conn, message.entity_path), message,
                            reason, description)

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        conn = self._conn()
        entity = self._catalogue.entity(conn, message.entity_path)
        return at(receive.renew_lock(conn, entity, message))

    # --- inspection ------------------------------------------------------------
    def peek(self, entity: str, subscription: str | None = None, *, max_messages: int = 32,
             sub_queue: SubQueue = SubQueue.ACTIVE, from_sequence_number: int | None = None,
             ) -> list[ReceivedMessage]:
        conn = self._conn()
        target = self._catalogue.receivable(conn, entity, subscription)
        state = DEAD_LETTERED if SubQueue(sub_queue) == SubQueue.DEAD_LETTER else ACTIVE
        if state == ACTIVE:
            scheduled.activate_for(conn, self._catalogue, target)
        return admin.peek(conn, target.path, state, max_messages, from_sequence_number)

    def resubmit_dead_letter(self, entity: str, message_id: str,
                             subscription: str | None = None) -> str:
        conn = self._conn()
        target = self._catalogue.receivable(conn, entity, subscription)
        copy_id = admin.resubmit_dead_letter(conn, target, message_id)
        self._doorbell.ring([target.path])
        return copy_id

    def stats(self) -> list[EntityStats]:
        conn = self._conn()
        scheduled.activate_everywhere(conn, self._catalogue)
        return admin.stats(conn)

    def ensure_subscription(self, topic: str, subscription: str, rule: Rule | None) -> None:
        admin.ensure_subscription(self._conn(), self._catalogue, self._topology, topic,
                                  subscription, rule)

    def purge_expired(self) -> None:
        """Housekeeping now rather than at the next send or idle wait (tests, the CLI)."""
        self._housekeeper.run(self._conn())

    def close(self) -> None:
        with self._guard:
            self._closed = True
            self._doorbell.close()
            for _, conn in self._connections:
                conn.close()
            self._connections.clear()

    def __repr__(self) -> str:
        return f"SqliteBus({str(self.path)!r})"



