"""Chaos: a demo-sized run while every service is SIGKILLed once at a moment drawn from a
seed (tests/chaos/run.py says what surviving means). The seed is printed; set
ARCFLARE_CHAOS_SEED to replay a failing schedule. `make bench BENCH=chaos` runs several."""
from __future__ import annotations

from pathlib import Path

import pytest
from arcflare.localstack.supervisor import SERVICES

from tests.chaos.run import chosen_seed, kill_schedule, run_chaos

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(480)]


def test_every_service_killed_once_and_the_run_still_completes(tmp_path: Path) -> None:
    seed = chosen_seed()
    print(f"chaos seed {seed} (replay with ARCFLARE_CHAOS_SEED={seed})")

    survival = run_chaos(tmp_path, seed)

    print(survival.report())
    assert survival.problems == [], survival.report()


def test_the_schedule_is_the_seeds_alone(monkeypatch) -> None:
    monkeypatch.setenv("ARCFLARE_CHAOS_SEED", "4242")
    schedule = kill_schedule(chosen_seed())

    assert schedule == kill_schedule(4242) != kill_schedule(4243)
    assert len({name for _, name in schedule}) == len(schedule) == len(SERVICES) + 1
    assert all(0 <= at <= 30 for at, _ in schedule)
