"""Key blocks (PEM, PuTTY private keys): secrets that span lines.

A block is redacted from its begin marker to its end marker as one
`[REDACTED:<label>]`. A chunk of log can hold only part of one: a begin with no
end is redacted to the chunk's end and reported as left open, so the next chunk
(`redact_blocks(lines, open_block)`) is redacted up to the end marker; an end
with no begin before it is redacted from the chunk's start.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

#: a block still open after this many lines was no key (an RSA-8192 PEM key is ~100)
MAX_BLOCK_LINES = 150


@dataclass(frozen=True)
class KeyBlock:
    label: str
    begin: str
    end: str
    #: cheap `in` tests before any regex runs
    triggers: tuple[str, ...]
    begin_re: re.Pattern[str] = field(init=False)
    end_re: re.Pattern[str] = field(init=False)
    whole_re: re.Pattern[str] = field(init=False)
    tail_re: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        compiled = {"begin_re": self.begin, "end_re": self.end,
                    "whole_re": rf"{self.begin}[\s\S]*?(?:{self.end}|\Z)",
                    "tail_re": rf"\A[\s\S]*?{self.end}"}
        for name, pattern in compiled.items():
            object.__setattr__(self, name, re.compile(pattern))

    @property
    def marker(self) -> str:
        return f"[REDACTED:{self.label}]"


BLOCKS = (
    KeyBlock("pem", r"-----BEGIN [A-Z0-9 ]+-----", r"-----END [A-Z0-9 ]+-----",
             ("-----BEGIN", "-----END")),
    # PuTTY .ppk: header, public lines, private lines, then the MAC that ends the file
    KeyBlock("putty", r"PuTTY-User-Key-File-\d+:", r"Private-MAC:[ \t]*[0-9A-Fa-f]*",
             ("PuTTY-User-Key-File-", "Private-MAC:")),
)


@dataclass(frozen=True)
class OpenBlock:
    """A block whose begin marker was seen and whose end marker was not (yet)."""
    block: KeyBlock
    lines_left: int


def redact_blocks(lines: list[str], open_block: OpenBlock | None
                  ) -> tuple[list[str], int, OpenBlock | None]:
    """The lines with every key block (or part of one) replaced by its marker, how many
    were replaced, and the block left open at the end of these lines."""
    count = 0
    if open_block is not None:
        lines, count, open_block = _continue(lines, open_block)
        if open_block is not None:
            return lines, count, open_block
    text = "\n".join(lines)
    left_open = None
    for block in BLOCKS:
        if not any(t in text for t in block.triggers):
            continue
        left_open = left_open or _left_open(text, block)
        text, whole = block.whole_re.subn(block.marker, text)
        text, tail = block.tail_re.subn(block.marker, text)
        count += whole + tail
    return text.split("\n"), count, left_open


def _continue(lines: list[str], open_block: OpenBlock) -> tuple[list[str], int, OpenBlock | None]:
    """Lines that start inside open_block: redacted up to its end marker."""
    block = open_block.block
    for i, line in enumerate(lines[:open_block.lines_left]):
        end = block.end_re.search(line)
        if end:
            return [block.marker + line[end.end():], *lines[i + 1:]], 1, None
    if len(lines) < open_block.lines_left:
        return [block.marker], 1, OpenBlock(block, open_block.lines_left - len(lines))
    # too long for a key: what follows is read as usual
    return [block.marker, *lines[open_block.lines_left:]], 1, None


def _left_open(text: str, block: KeyBlock) -> OpenBlock | None:
    begins = list(block.begin_re.finditer(text))
    if not begins or block.end_re.search(text, begins[-1].end()):
        return None
    last_begin = begins[-1]
    lines_left = MAX_BLOCK_LINES - text.count("\n", last_begin.end())
    return OpenBlock(block, lines_left) if lines_left > 0 else None
