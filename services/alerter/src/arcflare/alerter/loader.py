"""Reading a rules file: every problem reported with its line (yaml node marks)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from arcflare.alerter.rules import RuleBook
from pydantic import ValidationError

Location = tuple[str | int, ...]


class RulesFileError(ValueError):
    """An invalid rules file; the message names the file, the line and the problem."""


def default_rules_text() -> str:
    return resources.files("arcflare.alerter").joinpath("default_rules.yaml").read_text()


def load_rules(path: Path | None = None) -> RuleBook:
    """The rule book in `path`, or the default rules when None."""
    if path is None:
        return parse_rules(default_rules_text(), "default_rules.yaml")
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read the rules file: {exc.strerror}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str) -> RuleBook:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesFileError(f"{source}{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    lines = _lines(root, ()) if root is not None else {}
    if not isinstance(data, dict):
        raise RulesFileError(f"{source} line 1: the file must be a mapping with sinks and rules")
    try:
        book = RuleBook.model_validate(data)
    except ValidationError as exc:
        problems = sorted(
            (_line_of(tuple(err["loc"]), lines),
             _dotted(tuple(err["loc"])) + err["msg"].removeprefix("Value error, "))
            for err in exc.errors(include_url=False)
        )
        raise RulesFileError(
            "\n".join(f"{source} line {line}: {problem}" for line, problem in problems)
        ) from None
    _check_sink_references(book, source, lines)
    return book


def _check_sink_references(book: RuleBook, source: str, lines: dict[Location, int]) -> None:
    known = {s.name for s in book.all_sinks()}
    for i, rule in enumerate(book.rules):
        for j, sink in enumerate(rule.sinks):
            if sink not in known:
                line = _line_of(("rules", i, "sinks", j), lines)
                raise RulesFileError(
                    f"{source} line {line}: rules[{i}].sinks: no sink named {sink!r}; "
                    f"defined: {', '.join(sorted(known))}"
                )


def _lines(node: yaml.Node, path: Location) -> dict[Location, int]:
    found = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found.update(_lines(value, (*path, key.value)))
            found[(*path, key.value)] = key.start_mark.line + 1
            # nested keys keep their own lines; the key's line is the best for a scalar value
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(_lines(item, (*path, index)))
    return found


def _line_of(loc: Location, lines: dict[Location, int]) -> int:
    """The line of the deepest part of `loc` present in the file (an error may name a
    field that is missing, i.e. its parent's line)."""
    loc = tuple("for" if part == "for_" else part for part in loc)
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _dotted(loc: Location) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"{text}: " if text else ""
