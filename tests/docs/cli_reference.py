"""The README's CLI reference, generated from the `arcflare` Typer app.

    .venv/bin/python -m tests.docs.cli_reference
"""
from __future__ import annotations

import typer
from arcflare.cli.main import app


def _usage(cmd, path: str) -> str:
    parts = [path]
    for param in cmd.params:
        if param.param_type_name == "argument":
            name = (param.metavar or param.name).upper()
            parts.append(name if param.required else f"[{name}]")
        elif param.param_type_name == "option" and param.name not in ("help",):
            flag = max(param.opts, key=len)
            if flag in ("--data-dir",):
                continue
            value = param.name.upper().rstrip("_")
            parts.append(f"[{flag}]" if param.is_flag else f"[{flag} {value}]")
    return " ".join(parts)


def _walk(group, path: str) -> list[tuple[str, str]]:
    """Typer vendors its own click, so groups are recognised by having subcommands."""
    rows = []
    if hasattr(group, "commands"):
        for name in sorted(group.commands):
            rows += _walk(group.commands[name], f"{path} {name}")
    else:
        summary = (group.help or "").strip().split("\n")[0]
        rows.append((_usage(group, path), summary))
    return rows


def reference() -> str:
    root = typer.main.get_command(app)
    lines = ["| command | what it does |", "|---|---|"]
    for usage, summary in _walk(root, "arcflare"):
        lines.append(f"| `{usage}` | {summary.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference())
