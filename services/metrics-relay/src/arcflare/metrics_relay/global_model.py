"""Finding the aggregated model in a downloaded NVFlare job result.

`download_job_result` gives `<job_id>/job/...` (the submitted package) and
`<job_id>/workspace/...` (the server's run folder). The server's persistor saves
the global model there: `workspace/models/server.npy` for the numpy recipes,
`FL_global_model.pt` for the PyTorch ones; older layouts keep it under
`app_server/`. The submitted package and cross-site results are never the model.
"""
from __future__ import annotations

import json
from pathlib import Path

MODEL_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".safetensors", ".ckpt", ".h5", ".keras", ".pkl")
#: file names persistors use for the final global model, best first
KNOWN_NAMES = ("server.npy", "FL_global_model.pt", "FL_global_model.pth", "global_model.npy")
_NOT_MODELS = ("job", "cross_site_val", "cross_val_results", "custom")


def find_global_model(result_dir: Path) -> Path | None:
    """The global model file in a job result folder, or None if there is none."""
    if not result_dir.is_dir():
        return None
    candidates = [p for p in sorted(result_dir.rglob("*"))
                  if p.is_file() and p.suffix in MODEL_SUFFIXES
                  and not set(p.relative_to(result_dir).parts[:-1]) & set(_NOT_MODELS)]
    if not candidates:
        return None
    return min(candidates, key=_rank)


def _rank(path: Path) -> tuple[int, int, str]:
    named = KNOWN_NAMES.index(path.name) if path.name in KNOWN_NAMES else len(KNOWN_NAMES)
    in_models = 0 if path.parent.name == "models" else 1
    return (named, in_models, str(path))


def completed_rounds(result_dir: Path) -> int | None:
    """Rounds the server ran, from NVFlare's metrics summary (final_round is 0-based)."""
    for summary in result_dir.rglob("metrics_summary.json"):
        try:
            final = json.loads(summary.read_text()).get("final_round")
        except (OSError, ValueError):
            continue
        if isinstance(final, int):
            return final + 1
    return None
