"""The README's references are generated from the code; they must be current."""
from __future__ import annotations

from tests.docs.update_readme import README, rendered


def test_readme_cli_and_settings_references_are_current():
    text = README.read_text()
    assert rendered(text) == text, "run: .venv/bin/python -m tests.docs.update_readme"


def test_readme_opens_with_the_two_commands():
    head = README.read_text()[:2000]
    assert "make demo" in head and "make test" in head
