"""What the local stack runs niced yields the CPU for real: each supervised process starts a
session of its own, and under the kernel's autogroup scheduling sessions share the CPU by
their group's nice value, not by their processes' own."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from arcflare.localstack.processes import ProcessSpec, Supervised

AUTOGROUP = Path("/proc/self/autogroup")


def sleeper(tmp_path: Path, nice: int) -> Supervised:
    # a module that only sleeps: `python -m this` would print and exit
    (tmp_path / "sleeps.py").write_text("import time\ntime.sleep(60)\n")
    return Supervised(ProcessSpec("sleeps", "sleeps", env={"PYTHONPATH": str(tmp_path)},
                                  nice=nice), tmp_path)


def test_a_niced_process_and_its_session_yield(tmp_path: Path) -> None:
    sp = sleeper(tmp_path, nice=10)
    sp.start()
    try:
        time.sleep(0.2)
        own_nice = os.getpriority(os.PRIO_PROCESS, sp.pid)
        group = Path(f"/proc/{sp.pid}/autogroup").read_text() if AUTOGROUP.exists() else None
    finally:
        sp.stop(grace=5)

    assert own_nice == 10
    if group is None:
        pytest.skip("this kernel has no autogroup scheduling: the process's nice is all there is")
    assert group.split()[-2:] == ["nice", "10"], group
    # The kernel prints nothing for a task that is in no autogroup (the root group, or a
    # cgroup's, as under a CI runner): then any autogroup the child has is another group.
    ours = AUTOGROUP.read_text().split()
    assert group.split()[0] != (ours[0] if ours else None), (group, ours)  # a group of its own


def test_a_process_not_niced_keeps_its_session_at_the_default(tmp_path: Path) -> None:
    sp = sleeper(tmp_path, nice=0)
    sp.start()
    try:
        time.sleep(0.2)
        group = Path(f"/proc/{sp.pid}/autogroup").read_text() if AUTOGROUP.exists() else "nice 0"
        own_nice = os.getpriority(os.PRIO_PROCESS, sp.pid)
    finally:
        sp.stop(grace=5)

    assert own_nice == os.getpriority(os.PRIO_PROCESS, 0)
    assert group.split()[-2:] == ["nice", "0"], group
