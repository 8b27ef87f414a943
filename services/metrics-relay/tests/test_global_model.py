"""Finding the global model in a downloaded NVFlare job result."""
from __future__ import annotations

import json

import numpy as np
from arcflare.metrics_relay.global_model import completed_rounds, find_global_model


def test_the_servers_persisted_model_wins_over_the_submitted_package_and_other_files(tmp_path):
    result = tmp_path / "job-1"
    (result / "job" / "app" / "custom").mkdir(parents=True)
    np.save(result / "job" / "app" / "custom" / "init.npy", np.zeros(2))  # submitted, not trained
    (result / "workspace" / "models").mkdir(parents=True)
    (result / "workspace" / "cross_site_val").mkdir()
    np.save(result / "workspace" / "cross_site_val" / "site-1.npy", np.zeros(2))
    np.save(result / "workspace" / "models" / "server.npy", np.ones(2))
    np.save(result / "workspace" / "other.npy", np.ones(2))
    (result / "workspace" / "metrics").mkdir()
    (result / "workspace" / "metrics" / "metrics_summary.json").write_text(
        json.dumps({"final_round": 4}))

    assert find_global_model(result) == result / "workspace" / "models" / "server.npy"
    assert completed_rounds(result) == 5


def test_no_model_and_no_result_folder_give_none(tmp_path):
    (tmp_path / "job-2" / "workspace").mkdir(parents=True)
    (tmp_path / "job-2" / "workspace" / "log.txt").write_text("done")

    assert find_global_model(tmp_path / "job-2") is None
    assert find_global_model(tmp_path / "missing") is None
    assert completed_rounds(tmp_path / "job-2") is None
