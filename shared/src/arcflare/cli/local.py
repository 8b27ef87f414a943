"""`arcflare local up | down | ps`: the whole stack on this machine, one process each."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Annotated

import typer
from arcflare.cli.common import DataDir, Json, console, fail, out, print_json, settings_for
from arcflare.localstack.layout import IsolatedLayout
from arcflare.localstack.supervisor import (
    Supervisor,
    read_state,
    stop_leftovers,
    supervisor_pid,
)
from arcflare.runtime.files import private_dir
from arcflare.trust.local import SERVICE_NAMES, ensure_local_identities
from rich.table import Table

app = typer.Typer(help="Run every ArcFlare service locally, supervised.", no_args_is_help=True)


def start_stack(data_dir: Path, timeout: float = 120.0,
                only: Collection[str] | None = None, isolated: bool = False) -> dict:
    """Start the supervisor detached (if it is not running) and wait until every service is
    ready — or only the named ones: the bus keeps what is sent to the others meanwhile.
    isolated: each process on a data dir of its own (arcflare.localstack.layout)."""
    private_dir(data_dir)
    private_dir(data_dir / "logs")
    # every service, the operator and the trust root they share: zero set-up for local use
    ensure_local_identities(data_dir)
    if supervisor_pid(data_dir) is None:
        with open(data_dir / "logs" / "supervisor.log", "ab") as log:
            mode = ["--isolated"] if isolated else []
            subprocess.Popen([sys.executable, "-m", "arcflare.localstack", str(data_dir), *mode],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=data_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(data_dir)
        if state and _ready(state, only):
            return state
        time.sleep(0.05)
    raise TimeoutError(f"the local stack was not ready within {timeout:.0f} s; "
                       f"see {data_dir / 'logs'}")


def _ready(state: dict, only: Collection[str] | None) -> bool:
    services = {p["name"]: p["ready"] for p in state["processes"]
                if not p["name"].startswith("site-agent-")}
    wanted = set(services) if only is None else set(only)
    return bool(services) and wanted <= set(services) and all(services[n] for n in wanted)


def stop_stack(data_dir: Path, timeout: float = 60.0) -> None:
    pid = supervisor_pid(data_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while supervisor_pid(data_dir) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if supervisor_pid(data_dir) is not None:
            os.kill(pid, signal.SIGKILL)
    stop_leftovers(data_dir)


def _table(state: dict) -> Table:
    table = Table("process", "pid", "alive", "ready", "restarts")
    for p in state["processes"]:
        table.add_row(p["name"], str(p["pid"] or "-"), "yes" if p["alive"] else "[red]no[/red]",
                      "yes" if p["ready"] else "no", str(p["restarts"]))
    return table


@app.command()
def up(
    data_dir: DataDir = None,
    foreground: Annotated[bool, typer.Option("--foreground",
                                             help="Supervise from this terminal; Ctrl-C stops.")] = False,
    isolated: Annotated[bool, typer.Option(
        "--isolated", help="Each service, agent and the CLI on a data dir of its own "
                           "(DATA_DIR/parties/*), sharing only the bus file and the artifact "
                           "store.")] = False,
    json_out: Json = False,
) -> None:
    """Start every service (and a site agent per local site); wait until each is ready."""
    data = settings_for(data_dir).data_dir
    if foreground:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console.print(f"supervising the local stack in {data} — Ctrl-C to stop")
        try:
            ensure_local_identities(data)
            Supervisor(data, layout=IsolatedLayout(data) if isolated else None).run(stop)
        except KeyboardInterrupt:
            pass
        return
    try:
        with console.status("starting the local stack …"):
            state = start_stack(data, isolated=isolated)
    except TimeoutError as exc:
        fail(str(exc))
    if json_out:
        print_json(state)
    else:
        out.print(_table(state))
        out.print(f"logs: {data / 'logs'}   stop with: arcflare local down")
        if isolated:
            out.print(f"the CLI's own data dir: {IsolatedLayout(data).cli_dir()} (use it with "
                      f"--data-dir and ARCFLARE_BUS_FILE={data / 'bus.db'})")


@app.command()
def down(data_dir: DataDir = None) -> None:
    """Stop every service, agent and NVFlare process of the local stack."""
    data = settings_for(data_dir).data_dir
    with console.status("stopping the local stack …"):
        stop_stack(data)
    out.print("local stack stopped")


@app.command()
def ps(data_dir: DataDir = None, json_out: Json = False) -> None:
    """Each process: name, pid, alive, ready, restarts."""
    data = settings_for(data_dir).data_dir
    state = read_state(data)
    if state is None:
        if json_out:
            print_json({"running": False, "processes": []})
            return
        fail(f"no local stack in {data} (start one with: arcflare local up)")
    state["running"] = supervisor_pid(data) is not None
    if json_out:
        print_json(state)
    else:
        out.print(_table(state))


@app.command()
def parties(
    site: Annotated[list[str] | None, typer.Option(
        "--site", help="FEDERATION/SITE of a site agent to hand an identity too (repeatable).")]
    = None,
    data_dir: DataDir = None, json_out: Json = False,
) -> None:
    """Give each service, site agent and the CLI a data dir of its own with only its identity and the trust anchors (DATA_DIR/parties/*), for separate machines or containers."""
    root = settings_for(data_dir).data_dir
    ensure_local_identities(root)
    layout = IsolatedLayout(root)
    made = {name: layout.service_dir(name) for name in SERVICE_NAMES}
    made["cli"] = layout.cli_dir()
    for entry in site or []:
        federation, _, name = entry.partition("/")
        try:
            made[f"site-agent-{federation}-{name}"] = layout.agent(federation, name)[0]
        except ValueError as exc:
            fail(f"--site {entry!r}: {exc}; expected FEDERATION/SITE", code=2)
    if json_out:
        print_json({name: str(folder) for name, folder in made.items()})
    else:
        for name, folder in made.items():
            out.print(f"{name}: {folder}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="local")
