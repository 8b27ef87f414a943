"""Who may read what from the ledger over HTTP.

Bound to loopback, the ledger serves whoever can reach it (the people on this machine). Bound
to any other address, every read names a person: a signed request (`Authorization: ArcFlare
<proof>`, arcflare.trust.requests) or a console session opened with such a proof. A person
reads the federations that list them among their admins — any role, `member` upwards — and
nothing else. The Host header is checked in both cases (a page elsewhere that resolves its
own name to this address must not read the ledger through a visitor's browser).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from arcflare.trust import Principal, Unauthenticated
from arcflare.trust.requests import RequestVerifier, parse_authorization

#: answered whatever the Host and without a reader: probes carry no federation's data
PROBES = frozenset({"/healthz", "/readyz"})


class NotReadable(Exception):
    """The reader may not read this federation; answered 403 naming it."""


@dataclass(frozen=True)
class Reader:
    """Who asks, and which federations they may read (None: all, on loopback)."""

    principal: Principal | None
    federations: frozenset[str] | None

    @property
    def name(self) -> str:
        return self.principal.id if self.principal else "anyone on this machine"

    def may_read(self, federation: str | None) -> bool:
        if self.federations is None:
            return True
        return federation is not None and federation in self.federations

    def check(self, federation: str) -> None:
        if not self.may_read(federation):
            raise NotReadable(f"{self.name} is not an admin or member of federation "
                              f"{federation}, so may not read it")

    def only_readable(self, rows: Iterable[dict[str, Any]],
                      key: str = "federation") -> list[dict[str, Any]]:
        return [r for r in rows if self.may_read(r.get(key))]


LOOPBACK_READER = Reader(None, None)


def readable_federations(db: sqlite3.Connection, principal: Principal) -> frozenset[str]:
    """The federations whose admins (FederationProvisioned) list this person, in any role."""
    if principal.kind != "person":
        return frozenset()
    found = set()
    for name, admins in db.execute("SELECT name, admins FROM federations"):
        listed = json.loads(admins) if admins else []
        if any(str(a.get("email", "")).lower() == principal.name for a in listed):
            found.add(name)
    return frozenset(found)


@dataclass(frozen=True)
class RequestFacts:
    """What authentication looks at in a request, whatever the web framework."""

    method: str
    target: str
    host: str
    authorization: str | None
    session: str | None


class Gate:
    """Turns a request into a Reader, or refuses it with Unauthenticated."""

    def __init__(self, *, open_to_all: bool, requests: RequestVerifier | None,
                 sessions: Any) -> None:
        if not open_to_all and requests is None:
            raise ValueError("a ledger off loopback needs a request verifier")
        self.open_to_all = open_to_all
        self.requests = requests
        self.sessions = sessions

    def principal(self, facts: RequestFacts) -> Principal:
        token = parse_authorization(facts.authorization)
        if token is not None:
            principal = self.requests.verify(token, method=facts.method, target=facts.target,
                                              host=facts.host)
        elif facts.session and (found := self.sessions.find(facts.session)) is not None:
            principal = found
        else:
            raise Unauthenticated("this ledger is not on loopback, so every read needs a signed "
                                  "request (arcflare CLI) or a console session "
                                  "(`arcflare console --open`)")
        if principal.kind != "person":
            raise Unauthenticated(f"{principal.id} is not a person; only people read the ledger")
        return principal

    def reader(self, facts: RequestFacts, db: sqlite3.Connection) -> Reader:
        if self.open_to_all:
            return LOOPBACK_READER
        principal = self.principal(facts)
        return Reader(principal, readable_federations(db, principal))
