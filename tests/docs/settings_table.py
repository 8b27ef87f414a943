"""The README's configuration reference, generated from every settings class.

    .venv/bin/python -m tests.docs.settings_table   # prints the table
test_readme.py checks that README.md holds exactly this table.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from arcflare.runtime.settings import Settings
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["provisioner", "deployer", "job_controller", "metrics_relay", "site_agent",
            "alerter", "ledger"]


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    found: list[tuple[str, type[BaseSettings]]] = [("every process", Settings)]
    for pkg in SERVICES:
        module = importlib.import_module(f"arcflare.{pkg}.settings")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Settings) and value is not Settings
                    and value.__module__ == module.__name__):
                found.append((pkg.replace("_", "-"), value))
    return found


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is None or value == [] or value == ():
        return ""
    if isinstance(value, Path) and value.is_absolute() and value.is_relative_to(ROOT):
        value = value.relative_to(ROOT)  # the repo may be cloned anywhere
    return f"`{value}`"


def _doc(cls: type[BaseSettings], name: str) -> str:
    """The `#:` comment above the field, or its description."""
    field = cls.model_fields[name]
    if field.description:
        return field.description
    import inspect

    for klass in cls.__mro__:
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        for i, line in enumerate(lines):
            if line.strip().startswith(f"{name}:"):
                comments = []
                j = i - 1
                while j >= 0 and lines[j].strip().startswith("#:"):
                    comments.insert(0, lines[j].strip()[2:].strip())
                    j -= 1
                if comments:
                    return " ".join(comments)
                if "#" in line:
                    return line.split("#", 1)[1].strip()
                return ""
    return ""


def table() -> str:
    rows = ["| variable | used by | default | meaning |", "|---|---|---|---|"]
    seen: set[str] = set()
    for owner, cls in settings_classes():
        for name in cls.model_fields:
            if owner != "every process" and name in Settings.model_fields:
                continue
            key = f"ARCFLARE_{name.upper()}"
            if key in seen:
                continue
            seen.add(key)
            doc = _doc(cls, name).replace("|", "\\|")
            rows.append(f"| `{key}` | {owner} | {_default(cls.model_fields[name])} | {doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
