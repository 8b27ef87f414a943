"""The process started in a workspace is known again from its record, not only from the
process table, which reads a process's command line and environment as empty while it
execs (as `sub_start.sh --once` does when it becomes NVFlare)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from arcflare.deployer.adapters.processes import (
    RECORD,
    ProcessTable,
    find_running,
    remember,
)


@pytest.fixture
def table():
    table = ProcessTable()
    yield table
    for pid in list(table._children):
        table._children[pid].kill()
        table._reap(pid)


def sleeping(table: ProcessTable, workspace: Path):
    # no kit entry point on its command line and no workspace marker in its environment:
    # what the process table shows of a process in the middle of its exec
    return table.spawn(["sleep", "30"], cwd=workspace, env={}, log=workspace / "console.txt")


def test_a_recorded_process_is_found_though_the_process_table_cannot_name_it(table, tmp_path):
    ref = sleeping(table, tmp_path)
    assert find_running(tmp_path) is None  # the table alone does not know it

    remember(tmp_path, ref)

    assert find_running(tmp_path) == ref


def test_a_record_of_a_process_that_is_gone_or_whose_pid_was_reused_is_not_believed(table, tmp_path):
    ref = sleeping(table, tmp_path)
    remember(tmp_path, replace(ref, create_time=ref.create_time - 60))  # another process's pid
    assert find_running(tmp_path) is None

    remember(tmp_path, ref)
    table.stop(ref, grace_s=5)
    assert find_running(tmp_path) is None


@pytest.mark.parametrize("text", ["", "not json", '{"pid": 1}', "[]"])
def test_an_unreadable_record_is_ignored(tmp_path, text):
    (tmp_path / RECORD).write_text(text)

    assert find_running(tmp_path) is None
