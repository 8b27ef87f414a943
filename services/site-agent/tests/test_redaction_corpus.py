"""The redaction corpus, whole: every secret in it goes, every ordinary NVFlare line stays."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from arcflare.site_agent.redaction import Redactor

CORPUS = yaml.safe_load((Path(__file__).parent / "redaction_corpus.yaml").read_text())
SECRETS = CORPUS["secrets"]
ORDINARY = CORPUS["ordinary"]


def _excerpt(case: dict) -> list[str]:
    return case["lines"] if "lines" in case else [case["line"]]


def test_the_corpus_is_big_enough_to_mean_something() -> None:
    assert len(SECRETS) >= 40 and sum(len(c["gone"]) for c in SECRETS) >= 40
    assert len(ORDINARY) >= 40 and len(set(ORDINARY)) == len(ORDINARY)


@pytest.mark.parametrize("case", SECRETS, ids=lambda c: c["name"])
def test_every_secret_in_the_corpus_is_gone(case: dict) -> None:
    lines, count = Redactor().redact_lines(_excerpt(case))

    text = "\n".join(lines)
    assert [s for s in case["gone"] if s in text] == [], text
    assert [k for k in case.get("kept", []) if k not in text] == [], text
    assert count >= 1


def test_every_ordinary_line_survives_unchanged() -> None:
    lines, count = Redactor().redact_lines(ORDINARY)

    changed = [(before, after) for before, after in zip(ORDINARY, lines, strict=True)
               if before != after]
    assert changed == [] and count == 0


@pytest.mark.parametrize("line", ORDINARY, ids=lambda line: line[:60])
def test_an_ordinary_line_survives_on_its_own(line: str) -> None:
    assert Redactor().redact_lines([line]) == ([line], 0)
