"""Living with a shared, noisy machine: alternating runs, best of N, printed seeds.

Each comparison runs both sides N times, alternating which goes first (a b, b a, a b,
...), so drifting load falls on both; a target is judged on the best run of each side,
the figure least disturbed by other work. N is the module's default unless
ARCFLARE_BENCH_<MODULE>_RUNS (e.g. ARCFLARE_BENCH_SCALE_RUNS) sets it for one module or
ARCFLARE_BENCH_RUNS for every module. Anything random draws from a seed that
is printed and can be set again with ARCFLARE_BENCH_SEED.
"""
from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence

RUNS_ENV = "ARCFLARE_BENCH_RUNS"
SEED_ENV = "ARCFLARE_BENCH_SEED"


def runs(default: int, module: str | None = None) -> int:
    """Alternating runs per side: ARCFLARE_BENCH_<MODULE>_RUNS, else ARCFLARE_BENCH_RUNS,
    else the module's default."""
    names = ([f"ARCFLARE_BENCH_{module.upper()}_RUNS"] if module else []) + [RUNS_ENV]
    name = next((n for n in names if os.environ.get(n)), None)
    if name is None:
        return default
    raw = os.environ[name]
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number of runs, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


def alternate(n: int, **sides: Callable[[int], float]) -> dict[str, list[float]]:
    """Run every side n times, reversing the order on every other run; each side is
    called with the run's index and returns its figure."""
    names = list(sides)
    samples: dict[str, list[float]] = {name: [] for name in names}
    print(f"   {n} alternating run(s) per side: {', '.join(names)}", flush=True)
    for i in range(n):
        for name in names if i % 2 == 0 else reversed(names):
            started = time.monotonic()
            samples[name].append(sides[name](i))
            print(f"   run {i + 1}/{n} {name}: {samples[name][-1]:.4g} "
                  f"({time.monotonic() - started:.1f} s)", flush=True)
    return samples


def seeded(purpose: str) -> random.Random:
    """A random generator whose seed is printed (and set again with ARCFLARE_BENCH_SEED)."""
    raw = os.environ.get(SEED_ENV)
    seed = int(raw) if raw else random.SystemRandom().randrange(2**32)
    print(f"   seed for {purpose}: {seed} (repeat with {SEED_ENV}={seed})", flush=True)
    return random.Random(seed)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile: the smallest value with p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
