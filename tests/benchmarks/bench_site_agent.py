"""Site agent: its footprint beside an NVFlare client, and the cost of a redacted tail.

Footprint: a real `python -m arcflare.site_agent` (15 s heartbeat, process observer,
embedded bus) beside a real NVFlare client registered with a real server, and, at the
same time, a bare `python -c "import time; time.sleep(60)"`, both sampled the same way
with psutil for 60 s once the agent has reported the client connected.
Tail: the agent's TailSiteLogs work (last 200 lines, redaction, caps) against a plain
read of the same 200 lines (no redaction), on a 20,000-line NVFlare log with secrets
planted in its last 200 lines.
"""
from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from arcflare.bus.sqlite import SqliteBus
from arcflare.contracts.topology import FOLLOW_SUBSCRIPTION
from arcflare.site_agent.adapters.process import ProcessObserver
from arcflare.site_agent.logtail import read_last_lines
from arcflare.site_agent.redaction import Redactor
from arcflare.site_agent.tails import make_safe
from arcflare.trust.local import ensure_local_identities, site_identity

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "site-agent" / "tests"))
import site_agent_flare as flare

WINDOW_S = float(os.environ.get("ARCFLARE_BENCH_SITE_AGENT_WINDOW_S", "60"))
MB = 1024 * 1024
LOG_LINE = ("2026-11-29 08:{m:02d}:{s:02d},{ms:03d} - conn_manager - INFO - Connection "
            "[CN{n:05d} 127.0.0.1:34966 => 127.0.0.1:8002 SSL localhost] is created: PID: 8321")
SECRET_LINES = [
    ("2026-11-29 08:00:00,000 - Auth - INFO - header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9"
    ".eyJzdWIiOiJhIn0.c2lnbmF0dXJl"),
    ("2026-11-29 08:00:00,000 - Cfg - INFO - Endpoint=sb://ns.servicebus.windows.net/;"
    "SharedAccessKeyName=Root;SharedAccessKey=abc123XYZ+/="),
    "2026-11-29 08:00:00,000 - Mail - INFO - notify dr.jane.doe@hospital-north.org",
]


def run(results) -> None:
    _footprint(results)
    _tail(results)


# --- footprint ------------------------------------------------------------------
def _footprint(results) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-site-agent-") as tmp:
        root = Path(tmp)
        kits, port = flare.provision(root / "provision", "bench", ["site-1"])
        server_ws = flare.place(kits / "localhost", root / "server")
        workspace = flare.place(kits / "site-1", root / "sites" / "bench" / "site-1")
        ensure_local_identities(root)  # what `arcflare local up` gives an agent
        site_identity(root, "bench", "site-1")
        env = {**os.environ, "ARCFLARE_DATA_DIR": str(root), "ARCFLARE_FEDERATION": "bench",
               "ARCFLARE_SITE": "site-1", "ARCFLARE_SITE_WORKSPACE": str(workspace),
               "ARCFLARE_HEARTBEAT_INTERVAL_S": "15", "ARCFLARE_LOG_LEVEL": "WARNING"}
        started: list[subprocess.Popen] = []
        try:
            started.append(flare.start(server_ws))
            flare.wait_listening(port, started[-1])
            started.append(flare.start(workspace))
            started.append(subprocess.Popen(
                [sys.executable, "-m", "arcflare.site_agent"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
            agent = started[-1]
            _wait_for_heartbeat(root / "bus.db", agent, b'"connected"')
            started.append(subprocess.Popen(
                [sys.executable, "-c", f"import time; time.sleep({WINDOW_S + 30})"],
                start_new_session=True))
            time.sleep(1.0)  # let the bare interpreter finish starting, as the agent has
            agent_use, bare_use = _sample([agent.pid, started[-1].pid], WINDOW_S)
        finally:
            for proc in reversed(started):
                _stop(proc)
            flare.kill_everything_in(workspace)
            flare.kill_everything_in(server_ws)
    rss, cpu = agent_use
    base_rss, base_cpu = bare_use
    results.add("site_agent.rss_peak_mb", rss / MB, "MB", baseline=base_rss / MB,
                target="<= 60 MB")
    results.add("site_agent.cpu_percent_of_core", cpu, "%", baseline=base_cpu,
                target="<= 1 %")


def _log_lines(n: int) -> list[str]:
    return [LOG_LINE.format(m=(i // 60) % 60, s=i % 60, ms=i % 1000, n=i) for i in range(n)]


def _wait_for_heartbeat(bus_path: Path, agent: subprocess.Popen, status: bytes,
                        timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent.poll() is not None:
            raise RuntimeError(f"the site agent exited with {agent.returncode}")
        if bus_path.exists():
            bus = SqliteBus(bus_path)
            try:
                if any(m.subject == "SiteHeartbeat" and status in m.body for m in
                       bus.peek("telemetry", FOLLOW_SUBSCRIPTION, max_messages=100)):
                    return
            finally:
                bus.close()
        time.sleep(0.5)
    raise TimeoutError(f"the site agent published no {status.decode()} heartbeat")


def _sample(pids: list[int], window_s: float) -> list[tuple[int, float]]:
    """Peak RSS and CPU (% of one core) of each process over the window."""
    procs = [psutil.Process(pid) for pid in pids]
    start_cpu = [sum(p.cpu_times()[:2]) for p in procs]
    peak = [p.memory_info().rss for p in procs]
    started = time.monotonic()
    while time.monotonic() - started < window_s:
        time.sleep(1.0)
        peak = [max(old, p.memory_info().rss) for old, p in zip(peak, procs, strict=True)]
    elapsed = time.monotonic() - started
    cpu = [100.0 * (sum(p.cpu_times()[:2]) - c0) / elapsed
           for p, c0 in zip(procs, start_cpu, strict=True)]
    return list(zip(peak, cpu, strict=True))


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- tails ------------------------------------------------------------------------
def _tail(results, repeats: int = 200) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-site-tail-") as tmp:
        workspace = Path(tmp)
        lines = _log_lines(20_000)
        for i, secret in enumerate(SECRET_LINES):  # within the last 200 lines
            lines.insert(len(lines) - 20 * (i + 1), secret)
        (workspace / "log.txt").write_text("\n".join(lines) + "\n")
        observer, redactor = ProcessObserver(workspace), Redactor([r"MRN-\d+"])

        def agent_tail() -> int:
            tail = observer.tail("log.txt", 200)
            return len(make_safe(tail.lines, redactor, truncated=tail.truncated).lines)

        def plain_read() -> int:  # the same 200 lines, read the same way, nothing else
            return len(read_last_lines(workspace / "log.txt", 200).lines)

        tail = observer.tail("log.txt", 200)
        safe = make_safe(tail.lines, redactor)
        if safe.redacted_count < len(SECRET_LINES) or "abc123XYZ" in "".join(safe.lines):
            raise AssertionError("the benchmarked tail did not redact the planted secrets")
        agent_ms = _median_ms(agent_tail, repeats)
        plain_ms = _median_ms(plain_read, repeats)
    results.add("site_agent.tail_200_redacted_ms", agent_ms, "ms", baseline=plain_ms,
                target="<= 20 ms")


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm the page cache and the regex cache
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
