"""Facts about an NVFlare participant folder: pid files, the kit's server address,
log time stamps, and how its process was started."""
from __future__ import annotations

import base64
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import psutil

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or "x")
    except (OSError, ValueError):
        return None


def server_address(workspace: Path) -> str | None:
    """The server target from the kit's fed_client.json, e.g. 'fl.example.org:8002'."""
    try:
        config = json.loads((workspace / "startup" / "fed_client.json").read_text())
        return config["servers"][0]["service"]["target"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def environment_of(proc: psutil.Process | None) -> dict[str, str]:
    try:
        return proc.environ() if proc is not None else dict(os.environ)
    except psutil.Error:
        return dict(os.environ)


def has_once_mode(script: Path) -> bool:
    try:
        return "--once" in script.read_text(errors="replace")
    except OSError:
        return False


def same_path(arg: str, target: str) -> bool:
    try:
        return str(Path(arg).resolve()) == target
    except OSError:
        return False


def log_time(line: str) -> float | None:
    match = _STAMP.match(line)
    if not match:
        return None
    try:  # NVFlare logs local time
        return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
    except ValueError:
        return None


def certificate_not_after(workspace: Path) -> float | None:
    """When the kit's client certificate expires (epoch seconds), if it can be read.

    A few lines of DER walking instead of `cryptography`, whose import alone would
    add ~8 MB to an agent that must stay under 60 MB."""
    try:
        pem = (workspace / "startup" / "client.crt").read_text()
        body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        return _not_after(base64.b64decode("".join(body.split())))
    except (OSError, IndexError, ValueError):
        return None


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at `at`."""
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        n = length & 0x7F
        length, at = int.from_bytes(der[at:at + n], "big"), at + n
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _not_after(der: bytes) -> float:
    _, cert, _ = _tlv(der, 0)                # Certificate ::= SEQUENCE
    _, at, _ = _tlv(der, cert)               # tbsCertificate ::= SEQUENCE
    tag, _, end = _tlv(der, at)
    if tag == 0xA0:                          # [0] version, optional
        at = end
    for _ in range(3):                       # serialNumber, signature, issuer
        at = _tlv(der, at)[2]
    _, validity, _ = _tlv(der, at)
    _, _, after = _tlv(der, validity)        # notBefore
    tag, start, end = _tlv(der, after)       # notAfter: UTCTime or GeneralizedTime
    text = der[start:end].decode("ascii")
    layout = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp()
