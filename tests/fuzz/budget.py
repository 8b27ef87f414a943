"""How much the fuzz tier does: bounded so `make test` stays fast, derandomized so every run
draws the same examples (a failure replays as it is).

ARCFLARE_FUZZ_SEED=<n> draws other examples, from that seed; ARCFLARE_FUZZ_SCALE=<x>
multiplies every example count (say 10 for a long exploratory run). A failure prints the
example and the blob that reproduces it; keep what it found as a regression case.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from hypothesis import HealthCheck, seed, settings

SCALE = float(os.environ.get("ARCFLARE_FUZZ_SCALE") or 1)
SEED = os.environ.get("ARCFLARE_FUZZ_SEED")


def fuzz(examples: int) -> Callable:
    """Hypothesis settings for a fuzz test: `examples` of them (times the scale)."""
    chosen = settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        derandomize=SEED is None,
        database=None,
        print_blob=True,
        # the hostile inputs are large and slow to draw on purpose; service tests reuse one
        # running service across examples
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
    )

    def apply(test: Callable) -> Callable:
        test = chosen(test)
        return seed(int(SEED))(test) if SEED is not None else test

    return apply
