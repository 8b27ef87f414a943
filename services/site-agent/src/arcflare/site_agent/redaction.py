"""Redaction: nothing that looks like a secret or a person leaves the hospital.

Key blocks (PEM, PuTTY) span lines, so they are found on the whole tail at once.
A tail window can start or end inside a block, or fall entirely inside one:
an end marker with no begin before it redacts everything up to it, a begin with
no end redacts to the end, and lines of bare base64 are key material whatever
surrounds them. Periodic tails read a log in chunks; `FollowedLog` carries a
block left open at the end of one chunk into the next.

Every other rule works line by line, and only on lines holding one of its
trigger words. Where a rule names a `secret` group only that part is replaced,
so `password=[REDACTED:secret]` still says what was there.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from arcflare.site_agent.key_blocks import BLOCKS, OpenBlock, redact_blocks

#: names whose value is a secret: the key may end with one (db_password, x-api-key,
#: aws_secret_access_key, HF_TOKEN, clientSecret); "tokens" and "keys" are counts, not secrets
_SECRET_NAMES = (r"(?:password|passwd|passphrase|(?<![a-z])pwd|secret|token|api[_-]?key|"
                 r"(?:access|secret|account|shared[_-]?access)[_-]?key)")
#: a value: quoted (JSON, Python), in braces (JDBC/ODBC, where `}}` is a literal `}`
#: and `;` may appear inside), or up to the next delimiter
_VALUE = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\{(?:[^}]|\}\})*\}|[^\s,;&"'<>(){}\[\]]+)"""

#: (label, pattern) in the order applied: whole strings before the keys inside them
DEFAULT_RULES: tuple[tuple[str, str], ...] = (
    ("connection-string", (
        r"(?i)\b(?:Endpoint|DefaultEndpointsProtocol|AccountName|BlobEndpoint)=[^\s\"']*?"
        r"(?:SharedAccessKey|AccountKey|SharedAccessSignature|Password)=[^\s\"']+")),
    # a header value is everything after the name: scheme and credentials, or a quoted value
    ("authorization", (r"""(?i)\b(?:proxy-)?authorization["']?\s*[:=]\s*"""
                       r"""(?P<secret>"[^"]*"|'[^']*'|[^"'\n]+)""")),
    ("bearer", r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*"),
    ("basic-auth", r"(?i)\bbasic\s+(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{12,}={0,2}"),
    # user:password@host in a URL (any host, dotted or not), or bare as user:password@host;
    # before the names below, so x-access-token:<token>@github.com keeps its host. No `;`
    # in a URL's password: in jdbc:sqlserver://db:1433;...;password={p@ss} it is not one
    ("url-credentials", r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@;\[\]]*:(?P<secret>[^\s/@;\[\]]+)@"),
    ("url-credentials", (r"(?<![\w.%+:/\[-])[\w.%+-]+:(?P<secret>[^\s:/@;\[\]]+)@"
                         r"(?=[A-Za-z0-9-]+\b)")),
    ("secret", rf"""(?i){_SECRET_NAMES}["']?\s*[:=]\s*(?P<secret>{_VALUE})"""),
    ("secret", rf"(?i)(?<![A-Za-z0-9])--[a-z0-9-]*{_SECRET_NAMES}[ \t]+(?P<secret>[^\s-]\S*)"),
    ("sas-signature", r"(?i)(?<![A-Za-z])sig(?:=|%3D|%253D)(?P<secret>(?:[^\s&\"',;%]|%(?!26|2526))+)"),
    # access key ids: AKIA long-term, ASIA temporary (other prefixes name users and roles)
    ("aws-key-id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    ("hf-token", r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # the look-behind starts a match only at the start of a token: linear on long lines
    ("email", (r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
              r"\.[A-Za-z]{2,}")),
)

#: a rule runs on a line only when one of its words is in it (lower-cased): Python's re
#: is slow on long lines, and most log lines hold none of these
TRIGGERS: dict[str, tuple[str, ...]] = {
    "connection-string": ("endpoint=", "accountname=", "defaultendpointsprotocol="),
    "authorization": ("authorization",),
    "bearer": ("bearer",),
    "basic-auth": ("basic",),
    "secret": ("password", "passwd", "passphrase", "pwd", "secret", "token", "apikey", "api_key",
               "api-key", "accesskey", "access_key", "access-key", "accountkey", "account_key",
               "account-key"),
    "sas-signature": ("sig",),
    "aws-key-id": ("akia", "asia"),
    "github-token": ("gho_", "ghp_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "hf-token": ("hf_",),
    "jwt": ("eyj",),
    "url-credentials": ("@",),
    "email": ("@",),
}
#: a line of nothing but base64, long enough to be key material (a PEM or PuTTY body line
#: seen without its markers); mixed case and digits, so words and hex digests stay
BODY_LINE = re.compile(r"\s*(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[0-9])"
                       r"[A-Za-z0-9+/]{40,}={0,2}\s*")
#: the short last line of a body, recognised only right after a body line
BODY_END = re.compile(r"\s*[A-Za-z0-9+/]{2,}={0,2}\s*")


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
        self._line_rules = tuple((_trigger(label), rule, _replacement(label, rule))
                                 for label, rule in rules)

    def redact(self, text: str) -> Redacted:
        lines, count = self.redact_lines(text.split("\n"))
        return Redacted("\n".join(lines), count)

    def redact_lines(self, lines: list[str]) -> tuple[list[str], int]:
        """One tail on its own: what came before it is unknown."""
        out, count, _ = self.redact_chunk(lines, None)
        return out, count

    def redact_chunk(self, lines: list[str], open_block: OpenBlock | None
                     ) -> tuple[list[str], int, OpenBlock | None]:
        """A chunk of a log whose previous chunk ended inside open_block (or None):
        the redacted lines, how many secrets went, and the block this chunk leaves open."""
        if not lines:
            return [], 0, open_block
        lines, count, still_open = redact_blocks(lines, open_block)
        lines, bodies = _redact_bodies(lines)
        out = []
        for line in lines:
            line, n = self._redact_line(line)
            count += n
            out.append(line)
        return out, count + bodies, still_open

    def _redact_line(self, line: str) -> tuple[str, int]:
        count, lowered = 0, line.lower()
        for trigger, rule, replacement in self._line_rules:
            if trigger and not trigger.search(lowered):
                continue
            line, n = rule.subn(replacement, line)
            if n:
                count += n
                lowered = line.lower()
        return line, count


def _trigger(label: str) -> re.Pattern[str] | None:
    """One search for any of the rule's words (cheaper than an `in` test per word)."""
    words = TRIGGERS.get(label)
    return re.compile("|".join(map(re.escape, words))) if words else None


def _replacement(label: str, rule: re.Pattern[str]) -> str | Callable[[re.Match[str]], str]:
    """The marker in place of the whole match, or of its `secret` group only."""
    marker = f"[REDACTED:{label}]"
    if "secret" not in rule.groupindex:
        return marker

    def keep_the_name(match: re.Match[str]) -> str:
        start, end = match.span("secret")
        whole = match.group(0)
        return whole[:start - match.start()] + marker + whole[end - match.start():]
    return keep_the_name


def _redact_bodies(lines: list[str]) -> tuple[list[str], int]:
    """Bare base64 lines (a key body seen without its markers): one marker per run."""
    out, runs, in_run = [], 0, False
    for line in lines:
        if BODY_LINE.fullmatch(line):
            if not in_run:
                runs += 1
                out.append(f"[REDACTED:{BLOCKS[0].label}]")
            in_run = True
            continue
        if in_run and BODY_END.fullmatch(line):  # the run's short last line
            in_run = False
            continue
        in_run = False
        out.append(line)
    return out, runs


class FollowedLog:
    """Redacts the successive chunks of one log (periodic tails): a key block still
    open at the end of one chunk is redacted at the start of the next."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.open_block: OpenBlock | None = None

    def redact_lines(self, lines: list[str]) -> tuple[list[str], int]:
        out, count, self.open_block = self.redactor.redact_chunk(lines, self.open_block)
        return out, count
