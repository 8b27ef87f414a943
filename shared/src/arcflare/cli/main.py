"""The `arcflare` command. Each area registers its commands here; nothing is discovered."""
from __future__ import annotations

import importlib

import typer
from arcflare.cli import bus, bus_azure, events, schema
from arcflare.cli.common import fail
from arcflare.observability import tracing
from arcflare.runtime.files import private_umask

app = typer.Typer(
    name="arcflare",
    help="ArcFlare: run NVIDIA FLARE federations from commands and events.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@app.callback()
def _private_files() -> None:
    """Everything the CLI and the processes it starts write is its owner's alone. Traces, when
    the OTEL_* variables ask for them, are the CLI's own."""
    private_umask()
    try:
        tracing.configure("arcflare-cli")
    except ValueError as exc:  # an OTEL_* variable asks for what we cannot do: say which
        fail(str(exc), code=2)


app.add_typer(bus.app, name="bus")
app.add_typer(schema.app, name="schema")
events.register(app)

# areas that register(app) themselves; each is a module of arcflare.cli
AREAS = ["federation", "deploy", "job", "status", "local", "demo", "identity", "console"]
for area in AREAS:
    importlib.import_module(f"arcflare.cli.{area}").register(app)
bus_azure.register(bus.app)


if __name__ == "__main__":
    app()
