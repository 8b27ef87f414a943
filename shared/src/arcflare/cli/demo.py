"""`arcflare demo`: provision, deploy, train and register a model, all on this machine."""
from __future__ import annotations

import time
from typing import Annotated

import typer
from arcflare.cli.common import DataDir, Json, console, fail, out, print_json, settings_for
from arcflare.cli.local import start_stack, stop_stack
from arcflare.client import Client
from arcflare.localstack.demo import ADMIN, FIRST_SERVICES, DemoFailed, DemoRun
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
    except (DemoFailed, TimeoutError) as exc:
        fail(f"{exc}\n  logs: {data / 'logs'}")
    finally:
        if not keep:
            with console.status("stopping the local stack …"):
                stop_stack(data)
    if json_out:
        print_json(summary)
        return
    _print_summary(summary, keep)


def _print_summary(summary: dict, keep: bool) -> None:
    table = Table("hospital", "health", "accuracy (global model, last round)", "train accuracy")
    for site in summary["sites"]:
        fm = site["final_metrics"]
        table.add_row(site["name"], site["health"], _pct(fm.get("accuracy")),
                      _pct(fm.get("train_accuracy")))
    out.print(table)
    ml = summary["mlflow"]
    out.print(f"status: [bold]{summary['status']}[/bold]   job: {summary['job_id']}   "
              f"mean global accuracy: {_pct(summary['global_accuracy'])}")
    out.print(f"model: {ml['model_name']} v{ml['model_version']} (run {ml['run_id']}, "
              f"experiment {ml['experiment']})")
    out.print(f"open MLflow: .venv/bin/mlflow ui --backend-store-uri {ml['tracking_uri']}")
    out.print(f"logs: {summary['logs']}   timings: {summary['timings']}")
    if keep:
        out.print("the stack is still running: try arcflare status, arcflare logs "
                  f"{summary['federation']} {summary['sites'][0]['name']}, arcflare audit; "
                  "stop it with arcflare local down")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
