"""Chaos survivals: the chaos run (tests/chaos/run.py: every service SIGKILLed once during a
demo-sized federation) over several seeds, and how many of them it survived.

Seeds: ARCFLARE_CHAOS_SEEDS="11,12,13" runs exactly those; otherwise
ARCFLARE_BENCH_CHAOS_RUNS (default 3) seeds drawn from ARCFLARE_CHAOS_SEED (default: a
fresh base, printed). Each failed seed is reported with what broke, among the harness's
errors, so `make bench BENCH=chaos` fails on it; replay one with ARCFLARE_CHAOS_SEED=<seed>
and the chaos test.
"""
from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from tests.benchmarks.harness import Results
from tests.chaos.run import SEED_VARIABLE, Survival, chosen_seed, run_chaos

RUNS = int(os.environ.get("ARCFLARE_BENCH_CHAOS_RUNS", "3"))


def seeds() -> list[int]:
    listed = os.environ.get("ARCFLARE_CHAOS_SEEDS")
    if listed:
        return [int(s) for s in listed.replace(",", " ").split()]
    base = chosen_seed()
    print(f"chaos seeds drawn from base {base} ({SEED_VARIABLE}={base} draws them again)")
    rng = random.Random(base)
    return [rng.randrange(10**6) for _ in range(RUNS)]


def survive(seed: int) -> tuple[Survival, float]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"arcflare-chaos-{seed}-"))
    started = time.monotonic()
    try:
        return run_chaos(data_dir, seed), time.monotonic() - started
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(results: Results) -> None:
    chosen = seeds()
    runs = []
    for seed in chosen:
        survival, took = survive(seed)
        print(f"{survival.report()}\n  ({took:.0f} s)", flush=True)
        runs.append((survival, took))
        if not survival.survived:
            results.errors[f"bench_chaos seed {seed}"] = survival.report()
    survived = sum(s.survived for s, _ in runs)
    results.add("chaos: seeds run", len(runs), "seeds")
    results.add("chaos: seeds survived", survived, "seeds", target=f">= {len(runs)}")
    results.add("chaos: run time, slowest seed", max(t for _, t in runs), "s")
    print(f"chaos: survived {survived} of {len(runs)} seeds: "
          + ", ".join(f"{s.seed} {'ok' if s.survived else 'BROKE'}" for s, _ in runs))
