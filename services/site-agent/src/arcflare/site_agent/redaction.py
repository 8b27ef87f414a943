"""Redaction: nothing that looks like a secret or a person leaves the hospital.

Applied to a whole tail at once (PEM blocks span lines) before anything is
published. A tail window can start inside a PEM block, so an END marker with no
BEGIN before it redacts everything up to it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PEM_BLOCK = r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|\Z)"
PEM_TAIL = r"\A[\s\S]*?-----END [A-Z0-9 ]+-----"

#: (label, pattern) in the order applied: whole connection strings before their keys
DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("pem", PEM_BLOCK),
    ("pem", PEM_TAIL),
    ("connection-string", (
        r"(?i)\b(?:Endpoint|DefaultEndpointsProtocol|AccountName|BlobEndpoint)=[^\s\"']*?"
        r"(?:SharedAccessKey|AccountKey|SharedAccessSignature|Password)=[^\s\"']+")),
    ("sas-key", (
        r"(?i)\b(?:SharedAccessKey|AccountKey|SharedAccessSignature|Password|Pwd|sig)"
        r"\s*[=:]\s*[^\s;&\"',]+")),
    ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # the look-behind starts a match only at the start of a token: linear on long lines
    ("email", (r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
              r"\.[A-Za-z]{2,}")),
)


#: a rule runs on a line only when one of its words is in it (lower-cased): Python's re
#: is slow on long lines, and most log lines hold none of these
TRIGGERS: dict[str, tuple[str, ...]] = {
    "pem": ("-----begin", "-----end"),
    "connection-string": ("endpoint=", "accountname=", "defaultendpointsprotocol="),
    "sas-key": ("sharedaccess", "accountkey", "password", "pwd", "sig"),
    "bearer": ("bearer",),
    "jwt": ("eyj",),
    "email": ("@",),
}


class InvalidRedactionPattern(ValueError):
    pass


@dataclass(frozen=True)
class Redacted:
    text: str
    count: int


class Redactor:
    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        rules = [(label, re.compile(p)) for label, p in DEFAULT_RULES]
        for i, pattern in enumerate(extra_patterns):
            try:
                rules.append(("custom", re.compile(pattern)))
            except re.error as exc:
                raise InvalidRedactionPattern(
                    f"redaction_patterns[{i}] {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        self._pem = tuple(rule for label, rule in rules if label == "pem")
        self._line_rules = tuple((label, TRIGGERS.get(label, ()), rule)
                                 for label, rule in rules if label != "pem")

    def redact(self, text: str) -> Redacted:
        lines, count = self.redact_lines(text.split("\n"))
        return Redacted("\n".join(lines), count)

    def redact_lines(self, lines: list[str]) -> tuple[list[str], int]:
        """PEM blocks on the whole text (they span lines), every other rule line by line
        and only where its trigger words occur: most lines cost a few `in` tests."""
        if not lines:
            return [], 0
        count = 0
        text = "\n".join(lines)
        if any(t in text for t in ("-----BEGIN", "-----END")):
            for rule in self._pem:
                text, n = rule.subn("[REDACTED:pem]", text)
                count += n
            lines = text.split("\n")
        out = []
        for line in lines:
            lowered = line.lower()
            for label, triggers, rule in self._line_rules:
                if triggers and not any(t in lowered for t in triggers):
                    continue
                line, n = rule.subn(f"[REDACTED:{label}]", line)
                if n:
                    count += n
                    lowered = line.lower()
            out.append(line)
        return out, count
