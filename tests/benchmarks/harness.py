"""The benchmark harness behind `make bench`.

Each `bench_*.py` module here defines `run(results: Results) -> None` and adds
figures with `results.add(...)`. Figures are reported beside a baseline run in
the same process or script, as ratios, because these machines are shared and
noisy. Output: bench-results.json at the repo root and a table on stdout.
"""
from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Results:
    benchmarks: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        name: str,
        value: float,
        unit: str,
        *,
        baseline: float | None = None,
        ratio: float | None = None,
        target: str | None = None,
        ok: bool | None = None,
    ) -> None:
        if ratio is None and baseline:
            ratio = value / baseline
        self.benchmarks[name] = {
            "value": round(value, 6),
            "unit": unit,
            "baseline": None if baseline is None else round(baseline, 6),
            "ratio": None if ratio is None else round(ratio, 4),
            "target": target,
            "ok": ok,
        }


def main(argv: list[str]) -> int:
    only = set(argv)
    results = Results()
    modules = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in modules:
        if only and name not in only and name.removeprefix("bench_") not in only:
            continue
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            importlib.import_module(f"tests.benchmarks.{name}").run(results)
        except Exception:  # noqa: BLE001 - a failed benchmark is reported, and the others still run
            results.errors[name] = traceback.format_exc()
            print(results.errors[name], file=sys.stderr)
        print(f"   {time.monotonic() - started:.1f} s", flush=True)
    (ROOT / "bench-results.json").write_text(json.dumps(
        {"benchmarks": results.benchmarks, "errors": results.errors}, indent=2))
    print(f"\n{'benchmark':58} {'value':>12} {'unit':8} {'baseline':>10} {'ratio':>7} target")
    for name, b in results.benchmarks.items():
        base = "" if b["baseline"] is None else f"{b['baseline']:.4g}"
        ratio = "" if b["ratio"] is None else f"{b['ratio']:.3f}"
        mark = {True: "ok", False: "MISSED", None: ""}[b["ok"]]
        print(f"{name:58} {b['value']:>12.4g} {b['unit']:8} {base:>10} {ratio:>7} "
              f"{b['target'] or ''} {mark}")
    missed = [n for n, b in results.benchmarks.items() if b["ok"] is False]
    return 1 if results.errors or missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
