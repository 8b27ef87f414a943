"""CPU priority for what the local stack starts: what only watches yields to what drives."""
from __future__ import annotations

import os
from pathlib import Path


def yield_cpu(pid: int, nice: int) -> None:
    """Nice a process that runs in a session of its own, and that session's autogroup.

    With the kernel's autogroup scheduling (on by default in most distributions' kernels:
    /proc/sys/kernel/sched_autogroup_enabled), every session is one scheduling group, and
    groups share the CPU by the group's nice value alone. Each service, each site agent and
    each NVFlare process starts a session of its own, so the process's nice value alone
    did not yield anything: 10 niced site agents starting beside 10 NVFlare clients took
    half of this machine's two cores. Lowering one's own priority needs no privilege."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except (ProcessLookupError, PermissionError):
        return
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:  # no autogroup in this kernel (or off, or not Linux): the nice is enough
        pass
