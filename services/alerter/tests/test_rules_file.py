"""Rules files: the defaults load; an invalid file stops the alerter with line and problem."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from arcflare.alerter.bootstrap import bootstrap
from arcflare.alerter.loader import RulesFileError, load_rules, parse_rules
from arcflare.alerter.settings import AlerterSettings


def test_default_rules_cover_the_required_situations() -> None:
    book = load_rules()

    by_event = {r.event: r for r in book.rules}
    assert by_event["SiteHealthChanged"].for_.total_seconds() == 120
    assert set(by_event) >= {"SiteHealthChanged", "DeploymentFailed", "JobCompleted",
                             "CommandRejected", "CertificateExpiring"}


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("rules:\n  - name: a\n    event: JobCompleted\n    severity: loud\n", 4,
     "rules[0].severity: Input should be 'info', 'warning' or 'critical'"),
    ("rules:\n  - name: a\n    event: JobCompleted\n    for: soon\n", 4,
     "rules[0].for: 'soon' is not a duration"),
    ("rules:\n  - name: a\n    event: JobDone\n", 3, "'JobDone' is not an event type"),
    ("rules:\n  - name: a\n    event: JobCompleted\n    when:\n      state: x\n", 4,
     "JobCompleted has no field 'state'"),
    ("rules:\n  - name: a\n    event: JobCompleted\n    when: {status: {like: x}}\n", 4,
     "unknown operator 'like'"),
    ("rules:\n  - name: a\n    event: JobCompleted\n    sinks: [log, pager]\n", 4,
     "no sink named 'pager'"),
    ("sinks:\n  - name: hook\n    kind: webhook\n", 2, "needs url or url_env"),
    ("rules:\n  - name: a\n    event: JobCompleted\n    colour: red\n", 4,
     "rules[0].colour: Extra inputs are not permitted"),
    ("rules:\n  - name: a\n    event: JobCompleted\n  - name: a\n    event: JobFailed\n", 1,
     "rules: names must be unique"),
    ("rules: [\n", 2, "not valid YAML"),
    ("- just\n- a list\n", 1, "must be a mapping"),
])
def test_an_invalid_rules_file_names_the_line_and_the_problem(
    text: str, line: int, problem: str
) -> None:
    with pytest.raises(RulesFileError) as invalid:
        parse_rules(text, "rules.yaml")

    assert f"rules.yaml line {line}: " in str(invalid.value)
    assert problem in str(invalid.value)


def test_every_problem_is_reported_in_line_order() -> None:
    text = "rules:\n  - name: a\n    event: Nope\n  - name: b\n    event: JobFailed\n" \
           "    severity: high\n"

    with pytest.raises(RulesFileError) as invalid:
        parse_rules(text, "rules.yaml")

    assert str(invalid.value).splitlines()[0].startswith("rules.yaml line 3:")
    assert str(invalid.value).splitlines()[1].startswith("rules.yaml line 6:")


def test_bootstrap_fails_at_start_on_an_invalid_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: a\n    event: JobCompleted\n    dedup: forever\n")

    with pytest.raises(RulesFileError, match="line 4: rules\\[0\\].dedup"):
        bootstrap(AlerterSettings(data_dir=tmp_path / "data", alert_rules_file=rules))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read the rules file"):
        load_rules(tmp_path / "absent.yaml")


def test_the_alerter_process_exits_2_with_the_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: a\n    event: JobCompleted\n    severity: loud\n")
    env = {**os.environ, "ARCFLARE_DATA_DIR": str(tmp_path / "data"),
           "ARCFLARE_ALERT_RULES_FILE": str(rules)}

    done = subprocess.run([sys.executable, "-m", "arcflare.alerter"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2
    assert f"{rules} line 4: rules[0].severity" in done.stderr
