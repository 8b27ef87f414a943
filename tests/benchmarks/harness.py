"""The benchmark harness behind `make bench`.

Each `bench_*.py` module here defines `run(results: Results) -> None` and adds
figures with `results.add(...)` or, for a figure beside its baseline, with
`results.compare(...)`: both sides run N times, alternating (see noise.py), and the
target is judged on the best run of each. Output: bench-results.json at the repo
root (merged: a module run alone replaces only its own figures) and a table on
stdout. The exit code is 1 when a module failed or a target was missed in this run.
"""
from __future__ import annotations

import importlib
import json
import operator
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.benchmarks import machine

ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = ROOT / "bench-results.json"
_COMPARISONS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def meets(target: str, figure: float) -> bool:
    """'<= 1.1', '>= 0.9', '< 1 s' (a unit may follow the number) applied to a figure."""
    op, limit, *_ = target.split()
    return _COMPARISONS[op](figure, float(limit))


@dataclass
class Results:
    benchmarks: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    #: the module now running: every figure it adds is filed under it
    module: str = ""

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        baseline: float | None = None,
        target: str | None = None,
        on: str = "value",
        samples: Sequence[float] | None = None,
        baseline_samples: Sequence[float] | None = None,
        note: str | None = None,
    ) -> None:
        """A figure; with a target, `on` says whether the value or value/baseline is judged."""
        ratio = value / baseline if baseline else None
        judged = ratio if on == "ratio" else value
        ok = None if target is None or judged is None else meets(target, judged)
        self.benchmarks[name] = {
            "module": self.module,
            "value": round(value, 6),
            "unit": unit,
            "baseline": None if baseline is None else round(baseline, 6),
            "ratio": None if ratio is None else round(ratio, 4),
            "target": target,
            "on": on if target else None,
            "ok": ok,
            "runs": len(samples) if samples else None,
            "samples": [round(s, 6) for s in samples] if samples else None,
            "baseline_samples": [round(s, 6) for s in baseline_samples]
            if baseline_samples else None,
            "note": note,
        }

    def compare(self, name: str, ours: Sequence[float], theirs: Sequence[float], unit: str, *,
                target: str | None = None, higher_is_better: bool = False,
                note: str | None = None) -> float:
        """Ours beside the baseline, each side's best run (least time, most throughput);
        the target applies to best(ours) / best(theirs). Returns that ratio."""
        best = max if higher_is_better else min
        value, baseline = best(ours), best(theirs)
        self.add(name, value, unit, baseline=baseline, target=target, on="ratio",
                 samples=ours, baseline_samples=theirs, note=note)
        print(f"   {name}: best of {len(ours)} {value:.4g} vs {baseline:.4g} {unit}, "
              f"ratio {value / baseline:.3f} (target {target or '-'})", flush=True)
        return value / baseline


def main(argv: list[str]) -> int:
    only = set(argv)
    modules = [name for name in sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
               if not only or name in only or name.removeprefix("bench_") in only]
    unknown = only - {m for name in modules for m in (name, name.removeprefix("bench_"))}
    if unknown:
        print(f"no benchmark module named {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results, ran = Results(), {}
    for name in modules:
        results.module = name
        started, load_before = time.monotonic(), machine.load_average()
        print(f"== {name} (load average {load_before})", flush=True)
        try:
            importlib.import_module(f"tests.benchmarks.{name}").run(results)
        except Exception:  # noqa: BLE001 - a failed benchmark is reported, and the others still run
            results.errors[name] = traceback.format_exc()
            print(results.errors[name], file=sys.stderr)
        seconds = time.monotonic() - started
        ran[name] = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "seconds": round(seconds, 1), "load_before": load_before,
                     "load_after": machine.load_average()}
        print(f"   {seconds:.1f} s", flush=True)
    _write(results, ran)
    _print_table(results)
    missed = [n for n, b in results.benchmarks.items() if b["ok"] is False]
    return 1 if results.errors or missed else 0


def _write(results: Results, ran: dict[str, dict]) -> None:
    """Merge into bench-results.json: this run's modules replace their earlier figures."""
    try:
        earlier = json.loads(RESULTS_FILE.read_text())
    except (OSError, ValueError):
        earlier = {}
    keep = {n: b for n, b in earlier.get("benchmarks", {}).items() if b.get("module") not in ran}
    errors = {n: e for n, e in earlier.get("errors", {}).items()
              if not any(n == m or n.startswith(f"{m} ") for m in ran)}
    RESULTS_FILE.write_text(json.dumps({
        "generated_by": "make bench (python -m tests.benchmarks.harness)",
        "machine": machine.describe(),
        "modules": {**earlier.get("modules", {}), **ran},
        "benchmarks": {**keep, **results.benchmarks},
        "errors": {**errors, **results.errors},
    }, indent=2))


def _print_table(results: Results) -> None:
    print(f"\n{'benchmark':66} {'value':>12} {'unit':8} {'baseline':>10} {'ratio':>7} "
          f"{'runs':>4} target")
    for name, b in results.benchmarks.items():
        base = "" if b["baseline"] is None else f"{b['baseline']:.4g}"
        ratio = "" if b["ratio"] is None else f"{b['ratio']:.3f}"
        runs = "" if b["runs"] is None else str(b["runs"])
        mark = {True: "ok", False: "MISSED", None: ""}[b["ok"]]
        print(f"{name:66} {b['value']:>12.4g} {b['unit']:8} {base:>10} {ratio:>7} {runs:>4} "
              f"{b['target'] or ''} {mark}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
