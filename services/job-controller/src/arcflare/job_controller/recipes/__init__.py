"""Built-in recipes: a name, parameters from the command, and an exported NVFlare job folder."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from arcflare.job_controller.recipes.fedavg_logreg import build_fedavg_logreg

#: build(name, parameters, min_clients, destination) -> the exported job folder
Recipe = Callable[[str, dict[str, Any], int, Path], Path]

RECIPES: dict[str, Recipe] = {"fedavg-logreg": build_fedavg_logreg}
