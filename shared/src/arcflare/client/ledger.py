"""Reading the ledger's HTTP API (what `arcflare status`, `audit`, `alerts` and `console` do).

Where: ARCFLARE_LEDGER_URL, else the local ledger's port in <data_dir>/run/ledger.port. On
loopback the ledger asks for no proof; anywhere else each request carries a fresh proof
signed with the person's identity (arcflare.trust.requests), the one `--as` or
ARCFLARE_ISSUED_BY chooses, or ARCFLARE_IDENTITY_CERT/KEY.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from arcflare.runtime import identity
from arcflare.runtime.addresses import host_name, is_loopback
from arcflare.runtime.settings import Settings
from arcflare.trust.identity import Identity
from arcflare.trust.requests import SIGN_IN_PATH, authorization, request_proof

CONSOLE_PATH = "/console/"


class LedgerError(Exception):
    """The ledger cannot be reached or refused the read; the message says which and why."""


def ledger_url(settings: Settings) -> str:
    explicit = os.environ.get("ARCFLARE_LEDGER_URL")
    if explicit:
        return explicit.rstrip("/")
    port_file = settings.data_dir / "run" / "ledger.port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        raise LedgerError(f"the ledger is not running: no port in {port_file} (start it with "
                          "`arcflare local up` or set ARCFLARE_LEDGER_URL)") from None
    return f"http://127.0.0.1:{port}"


class LedgerReader:
    def __init__(self, settings: Settings, *, as_: str | None = None,
                 url: str | None = None, timeout: float = 15.0) -> None:
        self.settings = settings
        self.as_ = as_
        self.url = (url or ledger_url(settings)).rstrip("/")
        self.timeout = timeout
        self.host = urllib.parse.urlsplit(self.url).netloc
        self._identity: Identity | None = None

    def get(self, path: str, **query: Any) -> Any:
        """GET a JSON route; LedgerError with the ledger's own words when it refuses."""
        params = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json",
                                                       "Host": self.host})
        signer = self._identity_if_any()
        if signer is not None:
            request.add_header("Authorization", authorization(
                signer, "GET", request.selector, self.host))
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                problem = exc.reason
            raise LedgerError(f"the ledger answered {exc.code}: {problem}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise LedgerError(f"cannot reach the ledger at {url}: "
                              f"{getattr(exc, 'reason', exc)}") from None

    def console_link(self) -> str:
        """The console's address when the ledger lets anyone here read (it is bound to
        loopback); else a sign-in link for one browser session, to be opened within the
        ledger's sign-in window (5 minutes by default)."""
        try:
            self._get_unsigned("/whoami")
            return self.url + CONSOLE_PATH
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                raise LedgerError(f"the ledger answered {exc.code} at {self.url}") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise LedgerError(f"cannot reach the ledger at {self.url}: "
                              f"{getattr(exc, 'reason', exc)}") from None
        proof = request_proof(self.identity(), "GET", SIGN_IN_PATH, self.host)
        return f"{self.url}{SIGN_IN_PATH}?proof={proof}"

    def identity(self) -> Identity:
        """The person's identity; LedgerError saying what is missing."""
        if self._identity is None:
            try:
                self._identity = identity.person_signer(self.settings, self.as_).identity
            except identity.MissingIdentity as exc:
                raise LedgerError(f"reading the ledger at {self.url} takes a person's "
                                  f"identity: {exc}") from None
        return self._identity

    def _identity_if_any(self) -> Identity | None:
        """Requests are signed whenever the person has an identity here: the ledger decides
        whether it needs the proof (by where it is bound), not the address used to reach it.
        Without one, a loopback ledger is still read unsigned."""
        try:
            return self.identity()
        except LedgerError:
            if is_loopback(host_name(self.host)):
                return None
            raise

    def _get_unsigned(self, path: str) -> None:
        request = urllib.request.Request(self.url + path, headers={"Host": self.host})
        with urllib.request.urlopen(request, timeout=self.timeout):
            pass
