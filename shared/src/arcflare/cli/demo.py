"""`arcflare demo`: provision, deploy, train and register a model, all on this machine."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from arcflare.cli.common import DataDir, Json, console, fail, out, print_json, settings_for
from arcflare.cli.console import console_url
from arcflare.cli.durations import span
from arcflare.cli.local import start_stack, stop_stack
from arcflare.client import Client
from arcflare.localstack.demo import ADMIN, FIRST_SERVICES, DemoFailed, DemoRun
from rich.console import Console
from rich.table import Table


def demo(
    data_dir: DataDir = None,
    sites: Annotated[int, typer.Option("--sites", min=2, max=8, help="Hospitals (2–8).")] = 3,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=50, help="FedAvg rounds.")] = 5,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the stack running afterwards.")] = False,
    json_out: Json = False,
) -> None:
    """Run a whole federation: hospitals join, train FedAvg together, the model lands in MLflow.

    Exits 0 only when the model is registered.
    """
    settings = settings_for(data_dir)
    data = settings.data_dir
    run = DemoRun(data, sites=sites, rounds=rounds,
                  progress=lambda line: console.print(f"  {line}", highlight=False),
                  stack_ready=lambda: start_stack(data))
    t = time.monotonic()
    summary = None
    try:
        with console.status("starting the local stack (one process per service) …"):
            start_stack(data, only=FIRST_SERVICES)
        run.timings["stack_start_s"] = round(time.monotonic() - t, 2)
        console.print(f"[green]✓[/green] {', '.join(FIRST_SERVICES)} up in "
                      f"{run.timings['stack_start_s']} s; the rest of the stack is starting")
        with Client(settings, issued_by=ADMIN) as client:
            summary = run.run(client)
        console.print(f"operator console: {console_url(data)}", highlight=False, soft_wrap=True)
    except (DemoFailed, TimeoutError) as exc:
        fail(f"{exc}\n  logs: {data / 'logs'}")
    finally:
        if not keep:
            with console.status("stopping the local stack …"):
                stop_stack(data)
    if json_out:
        print_json(summary)
        return
    print_summary(summary, keep, program=invoked_as(), data_dir=data_dir)


#: the demo's steps, in the order they happen
STEPS = [("provision_s", "provisioned"), ("deploy_and_connect_s", "connected"),
         ("training_s", "trained")]


def timings_line(timings: dict[str, float]) -> str:
    """provisioned 0.3 s · connected 6.3 s · trained 25.3 s · total 34.5 s (with the stack's
    own start, which the steps leave out)"""
    parts = [f"{label} {span(timings[key])}" for key, label in STEPS
             if timings.get(key) is not None]
    if timings.get("total_s") is not None:
        parts.append(f"total {span(timings['total_s'] + timings.get('stack_start_s', 0))}")
    return " · ".join(parts)


def next_commands(summary: dict, program: str = "arcflare",
                  data_dir: Path | None = None) -> list[str]:
    """What to try on the running stack, as one would type it here; the last one stops it."""
    where = f" --data-dir {data_dir}" if data_dir else ""
    federation, site = summary["federation"], summary["sites"][0]["name"]
    return [f"{program} status {federation}{where}",
            f"{program} logs {federation} {site}{where}",
            f"{program} audit {federation}{where}",
            f"{program} console{where}",
            f"{program} local down{where}"]


def _here(path: str) -> str:
    """A path as short as it can be typed from here."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def print_summary(summary: dict, keep: bool, *, program: str = "arcflare",
                  data_dir: Path | None = None, to: Console = out) -> None:
    table = Table("hospital", "health", "accuracy", "train accuracy",
                  caption="accuracy: the global model on each hospital's data, last round",
                  caption_justify="left")
    for site in summary["sites"]:
        fm = site["final_metrics"]
        table.add_row(site["name"], site["health"], _pct(fm.get("accuracy")),
                      _pct(fm.get("train_accuracy")))
    to.print(table)
    ml = summary["mlflow"]
    to.print(f"job {summary['job_id'][:8]} [bold]{summary['status']}[/bold] · "
             f"mean accuracy {_pct(summary['global_accuracy'])}", highlight=False)
    to.print(f"model {ml['model_name']} v{ml['model_version']} · MLflow run {ml['run_id'][:8]} "
             f"in experiment {ml['experiment']}", highlight=False)
    to.print(timings_line(summary["timings"]), highlight=False)
    store = ml["tracking_uri"].removeprefix("sqlite:///")
    to.print(f"MLflow: .venv/bin/mlflow ui --backend-store-uri sqlite:///{_here(store)}",
             highlight=False, markup=False)
    to.print(f"logs: {_here(summary['logs'])}", highlight=False, markup=False)
    if keep:
        *commands, stop = next_commands(summary, program, data_dir)
        to.print("the stack is still running; try:")
        for command in commands:
            to.print(f"  {command}", highlight=False, markup=False)
        to.print(f"stop it with: {stop}", highlight=False, markup=False)


def invoked_as() -> str:
    """`.venv/bin/arcflare` when run that way (as `make demo` does), else `arcflare`."""
    program = Path(sys.argv[0])
    if program.name != "arcflare":
        return "arcflare"
    try:
        return str(program.absolute().relative_to(Path.cwd()))
    except ValueError:
        return "arcflare"  # from elsewhere on PATH


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
