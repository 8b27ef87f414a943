"""The CLI starts one trace per command it sends, and says which."""
from __future__ import annotations

import json

from arcflare.cli.main import app
from typer.testing import CliRunner


def test_a_cli_command_is_the_root_of_its_trace_and_prints_its_id(settings, recorded) -> None:
    done = CliRunner().invoke(app, ["job", "submit", "fed", "--recipe", "fedavg-logreg",
                                    "--json", "--data-dir", str(settings.data_dir)])

    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    root, = [s for s in recorded.get_finished_spans() if s.parent is None]
    send, = [s for s in recorded.get_finished_spans() if s.name == "send job-controller"]
    assert root.name == "arcflare job submit"
    assert root.attributes["arcflare.command.type"] == "SubmitJob"
    assert send.parent.span_id == root.context.span_id
    assert send.attributes["messaging.message.id"] == printed["command_id"]
    assert printed["trace_id"] == f"{root.context.trace_id:032x}"
