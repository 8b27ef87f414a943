"""What the demo tells a newcomer: hospitals counted as they connect, its summary, the
timings as one line, and with --keep what to try next (snapshots at 80 and 120 columns).

Update the snapshots after an intended change with
    ARCFLARE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest shared/tests/test_demo_summary.py -q
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from arcflare.cli.demo import print_summary, timings_line
from arcflare.contracts import events as e
from arcflare.contracts.envelope import Envelope
from arcflare.localstack.demo import DemoRun

from tests.support.snapshots import assert_snapshot, recording_console

SNAPSHOTS = Path(__file__).parent / "snapshots"
FED = "hospitals-3"
SUMMARY = {
    "federation": FED, "job_id": "4be1c0de-9d55-4f1b-8c2e-61c0ffee0002",
    "status": "FINISHED:COMPLETED", "result_ref": "results/4be1c0de", "global_accuracy": 0.8713,
    "sites": [{"name": name, "health": "connected", "diagnosis": "", "server_view": "registered",
               "final_metrics": {"accuracy": acc, "train_accuracy": train}}
              for name, acc, train in (("st-marys-london", 0.861, 0.874),
                                       ("charite-berlin", 0.884, 0.879),
                                       ("karolinska-stockholm", 0.869, 0.881))],
    "server": {"lifecycle": "running", "engine": "idle"},
    "mlflow": {"tracking_uri": f"sqlite:///{Path.cwd() / '.arcflare' / 'mlflow.db'}",
               "experiment": FED, "run_id": "9f1e2d3c4b5a69788796a5b4c3d2e1f0",
               "model_name": f"{FED}-logreg", "model_version": "2"},
    "timings": {"stack_start_s": 2.14, "provision_s": 0.31, "deploy_and_connect_s": 6.32,
                "training_s": 25.34, "train_to_model_s": 26.1, "total_s": 32.4},
    "logs": str(Path.cwd() / ".arcflare" / "logs"),
}


def test_timings_read_as_one_line() -> None:
    assert timings_line(SUMMARY["timings"]) == (
        "provisioned 0.3 s · connected 6.3 s · trained 25.3 s · total 34.5 s")
    assert timings_line({"provision_s": 0.3}) == "provisioned 0.3 s"


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("keep", [True, False], ids=["keep", "stopped"])
def test_summary_matches_its_snapshot(width: int, keep: bool) -> None:
    terminal = recording_console(width)

    print_summary(SUMMARY, keep, program=".venv/bin/arcflare", to=terminal)

    name = f"demo-summary-{'keep' if keep else 'stopped'}-{width}.txt"
    assert_snapshot(SNAPSHOTS / name, terminal)


def test_with_keep_the_next_commands_name_the_data_dir_given() -> None:
    terminal = recording_console(120)

    print_summary(SUMMARY, True, program="arcflare", data_dir=Path("/tmp/demo"), to=terminal)

    text = terminal.export_text()
    assert f"arcflare status {FED} --data-dir /tmp/demo" in text
    assert "arcflare console --data-dir /tmp/demo" in text
    assert "stop it with: arcflare local down --data-dir /tmp/demo" in text


class Polls:
    """Stands in for the bus client: the server is announced, then each RefreshFederationStatus
    is answered with the next list of connected clients."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = iter(answers)

    def follow(self, types=None, federation=None, *, timeout=None, topics=()) -> Iterator[Envelope]:
        yield Envelope.wrap(e.ServerDeployed(federation=FED, endpoint="localhost:1",
                                             backend="local", handle="1", generation=1))

    def send(self, command) -> str:
        return "poll"

    def wait(self, command_id, timeout=0, *, raise_on_failure=False) -> Envelope:
        clients = [e.ClientView(name=n) for n in next(self.answers)]
        return Envelope.wrap(e.FederationStatusObserved(federation=FED, server_status="stopped",
                                                        clients=clients))


def test_hospitals_are_counted_one_by_one_even_when_they_connect_together(
        tmp_path: Path) -> None:
    lines: list[str] = []
    run = DemoRun(tmp_path, sites=3, progress=lines.append)

    run._wait_connected(Polls([[], ["charite-berlin"], ["charite-berlin", "st-marys-london",
                                                        "karolinska-stockholm"]]))

    assert [line for line in lines if "connected" in line] == [
        "site charite-berlin connected (1/3)",
        "site karolinska-stockholm connected (2/3)",
        "site st-marys-london connected (3/3)",
    ]
