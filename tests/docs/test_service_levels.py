"""docs/service-levels.md is current in form: written by its generator, every section the
generator renders is there, and every figure is a number (or `not measured`). Whether the
figures meet their targets is `make bench`'s business, not this test's; nothing here runs
a benchmark."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.benchmarks.service_levels import GENERATED_BY, MISSING, NONE, OUT, SECTIONS, render

#: a column whose header names a unit in parentheses holds figures
_UNIT_HEADER = re.compile(r"\(.+\)\s*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[-+]?\d+)?$")


def form_problems(text: str) -> list[str]:
    """What is wrong with a service-levels document's form; empty when nothing is."""
    lines = text.splitlines()
    problems = []
    if not lines or lines[0] != GENERATED_BY:
        problems.append("the first line is not the generated-by line")
    headings = [line[3:] for line in lines if line.startswith("## ")]
    if headings != list(SECTIONS):
        problems.append(f"sections {headings} are not the generator's {list(SECTIONS)}")
    for header, rows in _tables(lines):
        for column, name in enumerate(header):
            if not _UNIT_HEADER.search(name):
                continue
            for row in rows:
                cell = row[column] if column < len(row) else ""
                if cell not in (MISSING, NONE) and not _NUMBER.match(cell):
                    problems.append(f"column {name!r}: {cell!r} is not a number")
    return problems


def _tables(lines: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    tables, i = [], 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header, rows, i = _cells(lines[i]), [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            tables.append((header, rows))
        else:
            i += 1
    return tables


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_the_published_service_levels_are_current_in_form() -> None:
    # Prepare / Execute
    text = Path(OUT).read_text()

    # Assert
    assert form_problems(text) == []
    machine = dict(row[:2] for _, rows in _tables(text.splitlines())[:1] for row in rows)
    for what in ("CPU", "cores", "RAM", "OS", "Python"):
        assert machine.get(what) not in (None, "", MISSING), f"the machine's {what} is missing"


def test_the_generator_writes_that_form_with_and_without_figures() -> None:
    # Prepare
    figures = {
        "machine": {"cpu": "Test CPU", "cores": 2, "ram_gb": 8.0, "os": "Linux",
                    "python": "3.11.7", "nvflare": "2.9.0"},
        "modules": {"bench_scale": {"measured_at": "2026-12-01T18:00:00+00:00", "seconds": 60.0,
                                    "load_before": 0.5, "load_after": 1.5}},
        "benchmarks": {
            "scale.3_sites.job_s": {"module": "bench_scale", "value": 27.0, "unit": "s",
                                    "baseline": 20.0, "ratio": 1.35, "target": "<= 1.2",
                                    "on": "ratio", "ok": False, "runs": 2,
                                    "samples": [27.0, 29.5], "baseline_samples": [20.0, 21.0],
                                    "note": None},
            "fleet.ledger_lag_p99_s": {"module": "bench_fleet", "value": 0.41, "unit": "s",
                                       "baseline": None, "ratio": None, "target": "<= 2",
                                       "on": "value", "ok": True, "runs": None,
                                       "samples": None, "baseline_samples": None, "note": None},
        },
    }

    # Execute
    rendered, empty = render(figures), render({})

    # Assert
    assert form_problems(rendered) == []
    assert form_problems(empty) == []
    assert "| 3 | submit → job done, result downloaded* | 27 | 20 | 1.35 | <= 1.2 |" in rendered
    assert MISSING in empty


@pytest.mark.parametrize("broken, problem", [
    (lambda t: t.replace(GENERATED_BY, "# hand-edited"), "generated-by"),
    (lambda t: t.replace("## Fleet\n", ""), "sections"),
    (lambda t: t.replace("| 27 |", "| fast |", 1), "is not a number"),
])
def test_a_document_out_of_form_is_caught(broken, problem) -> None:
    text = render({"benchmarks": {"scale.3_sites.job_s": {
        "value": 27.0, "unit": "s", "baseline": 20.0, "ratio": 1.35, "target": "<= 1.2",
        "ok": False, "runs": 1, "samples": [27.0], "baseline_samples": [20.0]}}})

    assert any(problem in p for p in form_problems(broken(text)))
