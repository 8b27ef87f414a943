"""A loopback AMQP 1.0 peer that answers the Service Bus dialect the SDK speaks.

Built on python-qpid-proton's reactor. What it answers, and nothing more:
SASL ANONYMOUS; CBS `put-token` on `$cbs` (always 202); sender links to an entity
(single messages and the batch format, whose Data sections are whole encoded
messages); receiver links with GUID delivery tags, rcv-settle-mode second
(every settlement is echoed and settled, as the broker does), session filters;
`<entity>/$management` operations (see management.py). `drop_connections()` cuts
every socket without a close frame, the way a network failure looks to the SDK;
`refuse_sends(entity)` makes the peer reject what is sent there, as a busy broker would.
"""
from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from proton import Condition, Data, Delivery, Message, symbol
from proton.reactor import ApplicationEvent, Container, EventInjector

from . import management
from .store import Entity, LockLost, Store

SESSION_FILTER = symbol("com.microsoft:session-filter")
SESSION_LOCKED_UNTIL = symbol("com.microsoft:locked-until-utc")
DATETIMEOFFSET_EPOCH = 621355968000000000
TICK = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_of(address: str | None) -> str:
    """'amqps://127.0.0.1:5/orders' and 'orders' both name the node 'orders'."""
    address = address or ""
    if "://" in address:
        address = address.split("://", 1)[1].split("/", 1)[1] if "/" in address.split("://", 1)[1] else ""
    return address


def split_messages(raw: bytes) -> list[Message]:
    """One message, or the messages of a batch (0x80013700: Data sections, each a message)."""
    sections, data, pos = [], Data(), 0
    while pos < len(raw):
        data.clear()
        pos += data.decode(raw[pos:])
        data.rewind()
        data.next()
        section = data.get_object()
        if getattr(section, "descriptor", None) == 0x75:  # a Data section; copy, proton reuses it
            sections.append(bytes(section.value))
    bodies = sections
    # the batch envelope carries the first message's id and session as its own properties
    if bodies and all(b[:2] == b"\x00\x53" for b in bodies):
        out = []
        for body in bodies:
            message = Message()
            message.decode(body)
            out.append(message)
        return out
    message = Message()
    message.decode(raw)
    return [message]


class _Binding:
    """What a link is for: its node kind, entity and (for session receivers) session."""

    def __init__(self, kind: str, entity: Entity | None, session_id: str | None = None,
                 dead_letter: bool = False) -> None:
        self.kind, self.entity, self.session_id, self.dead_letter = (
            kind, entity, session_id, dead_letter)
        #: a wedged link keeps its credit but is never sent anything: a silent stall
        self.wedged = False


class PeerHandler:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.bindings: dict[Any, _Binding] = {}
        self.pending_sessions: list[Any] = []
        self.session_deadlines: dict[Any, float] = {}
        self.outstanding: dict[Any, tuple] = {}
        self.connections: list[Any] = []
        self.frames: list[str] = []  # an operation log the tests can read
        self.refused: set[str] = set()  # entities whose sends are rejected

    # --- connection plumbing ----------------------------------------------------------
    def on_connection_bound(self, event) -> None:
        sasl = event.transport.sasl()
        sasl.allowed_mechs("ANONYMOUS")
        self.connections.append(event.connection)

    def on_connection_remote_open(self, event) -> None:
        event.connection.container = "sbtestpeer"
        event.connection.open()

    def on_session_remote_open(self, event) -> None:
        event.session.open()

    def on_connection_remote_close(self, event) -> None:
        event.connection.close()

    def on_session_remote_close(self, event) -> None:
        event.session.close()

    def on_transport_closed(self, event) -> None:
        conn = event.connection
        for link in [lk for lk in self.bindings if lk.connection == conn]:
            self._forget(link)
        if conn in self.connections:
            self.connections.remove(conn)

    def on_link_remote_close(self, event) -> None:
        self._forget(event.link)
        event.link.close()

    def _forget(self, link) -> None:
        self.bindings.pop(link, None)
        if link in self.pending_sessions:
            self.pending_sessions.remove(link)
        self.store.forget_link(link)

    # --- attaching ----------------------------------------------------------------------
    def on_link_remote_open(self, event) -> None:
        link = event.link
        link.source.copy(link.remote_source)
        link.target.copy(link.remote_target)
        node = node_of(link.remote_source.address if link.is_sender else link.remote_target.address)
        if node == "$cbs":
            self.bindings[link] = _Binding("cbs", None)
        elif node.endswith("/$management"):
            # a dead-letter queue's operations (lock renewal) act on its entity's records
            entity_node = node.rsplit("/", 1)[0].removesuffix("/$DeadLetterQueue")
            self.bindings[link] = _Binding("mgmt", self._entity(entity_node))
        elif node.endswith("/$DeadLetterQueue"):
            self.bindings[link] = _Binding("entity", self._entity(node.rsplit("/", 1)[0]),
                                           dead_letter=True)
        else:
            entity = self._entity(node)
            if entity is None:
                link.open()
                link.condition = Condition("amqp:not-found",
                                           f"The messaging entity '{node}' could not be found.")
                link.close()
                return
            self.bindings[link] = _Binding("entity", entity)
            if link.is_sender and entity.requires_session:
                self._attach_session(link)
                return
        link.open()
        if link.is_receiver:
            link.flow(500)
        self.frames.append(f"attach {self.bindings[link].kind} {node}")

    def _entity(self, name: str) -> Entity | None:
        try:
            return self.store.entity(name)
        except KeyError:
            return None

    def _attach_session(self, link) -> None:
        binding = self.bindings[link]
        entity = binding.entity
        filters = link.remote_source.filter.get_object() if link.remote_source.filter else {}
        wanted = (filters or {}).get(SESSION_FILTER)
        session_id = str(wanted) if wanted is not None else self.store.available_session(entity)
        if session_id is None:
            # answered when a session has messages, or with com.microsoft:timeout after the
            # link's own com.microsoft:timeout (ms), as the broker does
            timeout_ms = (link.remote_properties or {}).get(symbol("com.microsoft:timeout"), 60000)
            self.pending_sessions.append(link)
            self.session_deadlines[link] = time.time() + float(timeout_ms) / 1000
            return
        if session_id in entity.session_locks:
            link.open()
            link.condition = Condition("com.microsoft:session-cannot-be-locked",
                                       f"the session {session_id} is locked by another receiver")
            link.close()
            return
        entity.session_locks[session_id] = link
        binding.session_id = session_id
        link.source.filter.clear()
        link.source.filter.put_map()
        link.source.filter.enter()
        link.source.filter.put_symbol(SESSION_FILTER)
        link.source.filter.put_string(session_id)
        link.source.filter.exit()
        until = time.time() + entity.lock_duration
        link.properties = {SESSION_LOCKED_UNTIL: DATETIMEOFFSET_EPOCH + int(until * 10_000_000)}
        link.open()
        self.frames.append(f"attach session {entity.name} {session_id}")

    # --- moving messages -----------------------------------------------------------------
    def on_link_flow(self, event) -> None:
        if event.link.is_sender:
            self._pump(event.link)

    def _pump(self, link) -> None:
        binding = self.bindings.get(link)
        if (binding is None or binding.kind != "entity" or binding.wedged
                or link.state & link.LOCAL_UNINIT):
            return
        entity = binding.entity
        while link.credit > 0:
            if binding.dead_letter:
                record = next((r for r in entity.dead_letters if r.lock_token is None), None)
            else:
                record = self.store.next_available(entity, binding.session_id)
            if record is None:
                break
            self.store.lock(entity, record, link)
            tag = record.lock_token.bytes_le
            delivery = link.delivery(tag)
            link.stream(management.encode_record(record, entity).encode())
            link.advance()
            self.outstanding[delivery] = (entity, record, record.lock_token)
        if link.drain_mode:
            link.drained()

    def pump_all(self) -> None:
        for link in list(self.bindings):
            if link.is_sender:
                self._pump(link)

    def on_delivery(self, event) -> None:
        delivery, link = event.delivery, event.link
        if link.is_receiver:
            if delivery.readable and not delivery.partial:
                raw = link.recv(delivery.pending)
                link.advance()
                self._incoming(link, delivery, raw)
                if link.credit < 100:
                    link.flow(500)
        elif delivery.updated and not delivery.settled:
            self._settled_by_client(delivery)

    def _incoming(self, link, delivery, raw: bytes) -> None:
        binding = self.bindings.get(link)
        if binding is None:
            delivery.update(Delivery.REJECTED)
            delivery.settle()
            return
        messages = split_messages(raw)
        if binding.kind == "cbs":
            self._reply(link, "$cbs", messages[0], {"status-code": 202,
                                                     "status-description": "Accepted"}, None)
            self.frames.append("put-token")
        elif binding.kind == "mgmt":
            reply = management.handle(self.store, binding.entity, messages[0],
                                      lambda e: self.pump_all())
            props = {"statusCode": reply.status, "statusDescription": reply.description}
            if reply.condition:
                props["errorCondition"] = symbol(reply.condition)
            self._reply(link, f"{binding.entity.name}/$management", messages[0], props, reply.body)
            self.frames.append(str((messages[0].properties or {}).get("operation")))
        elif binding.entity.name in self.refused:
            # with an info map: the SDK reads all three fields of a rejection's error
            delivery.local.condition = Condition("com.microsoft:server-busy",
                                                 "the test peer refuses sends here",
                                                 {symbol("refused"): True})
            delivery.update(Delivery.REJECTED)
            delivery.settle()
            self.frames.append(f"refused {binding.entity.name}")
            return
        else:
            try:
                for message in messages:
                    at = (message.annotations or {}).get(symbol("x-opt-scheduled-enqueue-time"))
                    self.store.enqueue(binding.entity, message,
                                       visible_at=at / 1000 if at else None)
            except ValueError as exc:
                delivery.local.condition = Condition("com.microsoft:argument-error", str(exc))
                delivery.update(Delivery.REJECTED)
                delivery.settle()
                return
            self.frames.append(f"send {binding.entity.name} x{len(messages)}")
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        self.pump_all()

    def _reply(self, request_link, node: str, request: Message, props: dict, body) -> None:
        response_link = next(
            (lk for lk, b in self.bindings.items()
             if lk.is_sender and lk.connection == request_link.connection
             and node_of(lk.remote_source.address) == node and lk.credit > 0),
            None,
        )
        if response_link is None:
            return
        reply = Message(body=body, correlation_id=request.id, properties=props)
        response_link.send(reply)

    def _settled_by_client(self, delivery) -> None:
        # proton decodes tags as text, and ours are GUID bytes: key by the delivery instead
        entity, record, token = self.outstanding.pop(delivery, (None, None, None))
        outcome = delivery.remote_state
        if record is None or record.lock_token != token or record.locked_until < time.time():
            delivery.local.condition = Condition("com.microsoft:message-lock-lost",
                                                 "The lock supplied is invalid.")
            delivery.update(Delivery.REJECTED)
            delivery.settle()
            return
        try:
            if outcome == Delivery.ACCEPTED:
                if record in entity.dead_letters:
                    entity.dead_letters.remove(record)
                else:
                    self.store.complete(entity, record)
            elif outcome == Delivery.MODIFIED:
                self.store.release(entity, record, failed=delivery.remote.failed)
            elif outcome == Delivery.RELEASED:
                self.store.release(entity, record, failed=False)
            elif outcome == Delivery.REJECTED:
                info = (delivery.remote.condition.info or {}) if delivery.remote.condition else {}
                self.store.dead_letter(entity, record, _text(info.get("DeadLetterReason")),
                                       _text(info.get("DeadLetterErrorDescription")))
        except LockLost:
            pass
        self.frames.append(f"settle {outcome.name.lower()}")
        delivery.update(outcome)  # the broker echoes the outcome it applied
        delivery.settle()
        self.pump_all()

    # --- time and test control --------------------------------------------------------
    def on_timer_task(self, event) -> None:
        self.store.expire_locks()
        for link in list(self.pending_sessions):
            entity = self.bindings[link].entity
            if self.store.available_session(entity) is not None:
                self.pending_sessions.remove(link)
                self._attach_session(link)
            elif self.session_deadlines.get(link, float("inf")) <= time.time():
                self.pending_sessions.remove(link)
                link.open()
                link.condition = Condition("com.microsoft:timeout",
                                           "no session with messages became available in time")
                link.close()
        self.pump_all()
        event.container.schedule(TICK, self)

    def on_peer_call(self, event) -> None:
        fn, results = event.subject
        try:
            results.put((True, fn(self)))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            results.put((False, exc))

    def wedge_receivers(self, entity: str) -> int:
        wedged = [b for lk, b in self.bindings.items()
                  if lk.is_sender and b.kind == "entity" and b.entity.name == entity]
        for binding in wedged:
            binding.wedged = True
        return len(wedged)

    def drop_connections(self) -> int:
        dropped = 0
        for conn in list(self.connections):
            selectable = getattr(conn.transport, "_selectable", None) if conn.transport else None
            sock = getattr(selectable, "_delegate", None)
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
                dropped += 1
        return dropped


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class ServiceBusPeer:
    """Run the peer on 127.0.0.1:<free port> in a thread; use as a context manager."""

    def __init__(self, entities: list[Entity]) -> None:
        self.store = Store()
        for entity in entities:
            self.store.add(entity)
        self.port = _free_port()
        self.handler = PeerHandler(self.store)
        self._injector = EventInjector()
        self._container = Container(self.handler)
        self._container.selectable(self._injector)
        self._thread = threading.Thread(target=self._container.run, name="sb-peer", daemon=True)

    @property
    def connection_string(self) -> str:
        return (f"Endpoint=sb://127.0.0.1:{self.port};SharedAccessKeyName=RootManageSharedAccessKey;"
                "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;")

    def __enter__(self) -> Self:
        self._container.listen(f"127.0.0.1:{self.port}")
        self._container.schedule(TICK, self.handler)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.stop()
        self._injector.close()
        self._thread.join(timeout=10)

    def call(self, fn: Callable[[PeerHandler], Any], timeout: float = 10) -> Any:
        """Run fn(handler) on the reactor thread and return its result."""
        results: queue.Queue = queue.Queue()
        self._injector.trigger(ApplicationEvent("peer_call", subject=(fn, results)))
        ok, value = results.get(timeout=timeout)
        if not ok:
            raise value
        return value

    def drop_connections(self) -> int:
        return self.call(lambda h: h.drop_connections())
