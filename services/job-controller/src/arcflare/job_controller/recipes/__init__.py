"""Built-in recipes: a name, parameters from the command, and an exported NVFlare job folder."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from arcflare.job_controller.recipes.fedavg_logreg import build_fedavg_logreg

#: build(name, parameters, min_clients, destination) -> the exported job folder
Recipe = Callable[[str, dict[str, Any], int, Path], Path]

RECIPES: dict[str, Recipe] = {"fedavg-logreg": build_fedavg_logreg}


def warm_up(stop) -> None:
    """A background task: import NVFlare's Recipe API now (about a second of CPU, three on a
    busy machine) rather than when the first SubmitJob is being handled; then idle."""
    from nvflare.app_common.np.recipes.fedavg import NumpyFedAvgRecipe  # noqa: F401

    stop.wait()


def before_warm_up() -> None:
    """numpy is imported in the thread that builds the service, before the warm-up starts: a
    module another thread is half-way through importing is visible in sys.modules, and code
    that looks there without importing (hypothesis does) would find it half-made."""
    import numpy  # noqa: F401
