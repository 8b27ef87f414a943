"""The harness's own rules: how runs alternate, what "best" means, how a target is judged,
how results merge. No benchmark runs here."""
from __future__ import annotations

import json

import pytest

from tests.benchmarks import harness
from tests.benchmarks.harness import Results, meets
from tests.benchmarks.noise import alternate, percentile, runs, seeded


def test_runs_alternate_which_side_goes_first() -> None:
    order: list[str] = []

    samples = alternate(3, ours=lambda i: order.append(f"ours{i}") or i,
                        theirs=lambda i: order.append(f"theirs{i}") or 10 + i)

    assert order == ["ours0", "theirs0", "theirs1", "ours1", "ours2", "theirs2"]
    assert samples == {"ours": [0, 1, 2], "theirs": [10, 11, 12]}


def test_a_comparison_is_judged_on_the_best_run_of_each_side() -> None:
    results = Results(module="bench_x")

    # times: the least of each; the noisy 9.0 does not decide
    ratio = results.compare("x.seconds", [9.0, 1.05], [1.0, 1.2], "s", target="<= 1.1")
    # rates: the most of each
    results.compare("x.rate", [80.0, 95.0], [100.0, 90.0], "msg/s", target=">= 0.9",
                    higher_is_better=True)

    assert ratio == pytest.approx(1.05)
    seconds, rate = results.benchmarks["x.seconds"], results.benchmarks["x.rate"]
    assert (seconds["value"], seconds["baseline"], seconds["ok"], seconds["runs"]) == (
        1.05, 1.0, True, 2)
    assert (rate["value"], rate["baseline"], rate["ratio"], rate["ok"]) == (95.0, 100.0, 0.95, True)
    assert seconds["module"] == "bench_x"


def test_a_target_reads_its_operator_number_and_unit() -> None:
    assert meets("<= 20 ms", 20.0) and not meets("<= 20 ms", 20.1)
    assert meets(">= 0.5", 0.5) and not meets(">= 0.5", 0.49)


def test_a_module_run_alone_replaces_only_its_own_figures(tmp_path, monkeypatch) -> None:
    # Prepare: an earlier full run
    monkeypatch.setattr(harness, "RESULTS_FILE", tmp_path / "bench-results.json")
    earlier = Results(module="bench_a")
    earlier.add("a.one", 1.0, "s")
    earlier.module = "bench_b"
    earlier.add("b.old", 2.0, "s")
    harness._write(earlier, {"bench_a": {"seconds": 1}, "bench_b": {"seconds": 2}})

    # Execute: bench_b alone
    now = Results(module="bench_b")
    now.add("b.new", 3.0, "s")
    harness._write(now, {"bench_b": {"seconds": 3}})

    # Assert
    written = json.loads((tmp_path / "bench-results.json").read_text())
    assert set(written["benchmarks"]) == {"a.one", "b.new"}
    assert written["modules"]["bench_b"] == {"seconds": 3}
    assert {"cpu", "cores", "ram_gb", "os", "python"} <= set(written["machine"])


def test_the_number_of_runs_is_settable_per_module_and_for_all(monkeypatch) -> None:
    assert runs(3, "scale") == 3
    monkeypatch.setenv("ARCFLARE_BENCH_RUNS", "2")
    assert runs(3, "scale") == 2
    monkeypatch.setenv("ARCFLARE_BENCH_SCALE_RUNS", "5")
    assert runs(3, "scale") == 5
    monkeypatch.setenv("ARCFLARE_BENCH_SCALE_RUNS", "many")
    with pytest.raises(SystemExit, match="ARCFLARE_BENCH_SCALE_RUNS must be a whole number"):
        runs(3, "scale")


def test_a_seed_is_printed_and_repeats_the_draws(monkeypatch, capsys) -> None:
    monkeypatch.setenv("ARCFLARE_BENCH_SEED", "1234")

    first, second = seeded("a test").random(), seeded("a test").random()

    assert first == second
    assert "seed for a test: 1234" in capsys.readouterr().out


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50, 99, 100)
    assert percentile([7.0], 95) == 7.0
