"""What NVFlare's own log lines say about the client's link to the server.

Patterns are taken from real nvflare 2.9 client logs (conn_manager, Authenticator,
FederatedClient, CoreCell): registration, refused / unresolvable / timed-out
connections, certificate failures, a lost server.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SignalKind = Literal[
    "registered", "link_up", "refused", "dns", "tls", "expired", "timeout", "lost"
]


@dataclass(frozen=True)
class Signal:
    kind: SignalKind
    address: str | None = None
    detail: str = ""


_ADDRESS = re.compile(r"Cannot connect to host (\S+?:\d+)|ACTIVE \w+://([^\]\s]+)\]")
_RULES: tuple[tuple[SignalKind, re.Pattern[str]], ...] = (
    ("registered", re.compile(r"Successfully registered client:(\S+?) for project (\S+?)\.?$")),
    ("link_up", re.compile(r"Connection \[CN\d+ \S+ => (\S+) SSL")),
    ("expired", re.compile(r"(?i)certificate has expired|alert certificate expired")),
    ("tls", re.compile(
        r"ClientConnectorCertificateError|SSLCertVerificationError|CERTIFICATE_VERIFY_FAILED"
        r"|ClientConnectorSSLError|SSLError|alert (?:bad certificate|unknown ca)")),
    ("dns", re.compile(
        r"ClientConnectorDNSError|Name or service not known|Temporary failure in name resolution"
        r"|nodename nor servname")),
    ("refused", re.compile(r"Connect call failed|Connection refused")),
    ("timeout", re.compile(
        r"ServerTimeoutError|Connection timeout to host|cannot connect to server for \d+ seconds")),
    ("lost", re.compile(r"cannot send to 'server': target_unreachable|no connection to server")),
)
_SSL_REASON = re.compile(r"certificate verify failed: ([^(\]']+)|alert ([a-z ]+)")


def read_signal(line: str) -> Signal | None:
    """The signal one log line carries, if any (the first matching rule wins)."""
    for kind, pattern in _RULES:
        match = pattern.search(line)
        if match is None:
            continue
        if kind == "registered":
            return Signal(kind, detail=f"{match.group(1)} (project {match.group(2)})")
        if kind == "link_up":
            return Signal(kind, address=match.group(1))
        return Signal(kind, address=_address(line), detail=_ssl_reason(line))
    return None


def _address(line: str) -> str | None:
    match = _ADDRESS.search(line)
    return (match.group(1) or match.group(2)) if match else None


def _ssl_reason(line: str) -> str:
    match = _SSL_REASON.search(line)
    if not match:
        return ""
    return (match.group(1) or match.group(2) or "").strip()
