"""Console sessions off loopback.

A browser holds no identity of its own, so `arcflare console` signs a request proof for
`GET /console/login` with the person's identity and opens the link; the ledger checks the proof
once (a proof opens at most one session), and answers with a session cookie. Sessions live in
this process only: after a restart, people sign in again.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from arcflare.trust import Principal, Unauthenticated

COOKIE = "arcflare_console"
#: sessions held at once; the oldest go first beyond it
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    principal: Principal
    expires: float


class Sessions:
    def __init__(self, lifetime_s: float, clock: Callable[[], float] = time.time) -> None:
        self.lifetime_s = lifetime_s
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        #: sha256 of each sign-in proof already used -> when it could no longer be used anyway
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self, principal: Principal, proof: str, proof_valid_s: float) -> str:
        """A new session for the person who signed `proof` (verified by the caller); the same
        proof never opens a second one."""
        now = self.clock()
        spent = hashlib.sha256(proof.encode()).hexdigest()
        with self._lock:
            self._forget_expired(now)
            if spent in self._spent:
                raise Unauthenticated("this sign-in link was used already; run "
                                      "`arcflare console --open` for a new one")
            self._spent[spent] = now + proof_valid_s
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            token = secrets.token_urlsafe(32)
            self._sessions[token] = Session(principal, now + self.lifetime_s)
        return token

    def find(self, token: str) -> Principal | None:
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires <= self.clock():
                del self._sessions[token]
                return None
            return session.principal

    def _forget_expired(self, now: float) -> None:
        self._spent = {k: until for k, until in self._spent.items() if until > now}
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
