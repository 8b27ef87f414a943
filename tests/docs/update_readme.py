"""Rewrites README.md's generated blocks: `.venv/bin/python -m tests.docs.update_readme`."""
from __future__ import annotations

import re
from pathlib import Path

from tests.docs.cli_reference import reference
from tests.docs.services_table import table as services_table
from tests.docs.settings_table import table

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = {"cli-reference": reference, "settings": table, "services": services_table}


def rendered(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":
    README.write_text(rendered(README.read_text()))
