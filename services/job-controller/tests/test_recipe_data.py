"""The built-in recipe on a site's own CSV files: its parameters, the job it exports, and how
the client reads the folder the deployer bound (and says what is wrong with it)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from arcflare.job_controller.packages import InvalidPackage
from arcflare.job_controller.recipes.fedavg_logreg import build_fedavg_logreg, parameters
from arcflare.job_controller.recipes.logreg_client import (
    SiteDataError,
    csv_dataset,
    input_folder,
    shuffled,
    split,
)

HEADER = "patient_id,age,bmi,outcome\n"


def records(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_data_label_and_features_reach_the_client_and_size_the_model(tmp_path: Path):
    job = build_fedavg_logreg("records", {"data": "records", "label": "outcome",
                                          "features": "age,bmi"}, 2, tmp_path)

    client = json.loads((job / "app" / "config" / "config_fed_client.json").read_text())
    server = json.loads((job / "app" / "config" / "config_fed_server.json").read_text())
    args = client["executors"][0]["executor"]["args"]["task_script_args"]
    assert args.endswith("--n_features 2 --samples 500 --data records --label outcome "
                         "--features age,bmi")
    initial = json.dumps(server)
    assert "[0.0, 0.0, 0.0]" in initial  # two weights and the bias


def test_without_data_the_recipe_keeps_its_synthetic_arguments(tmp_path: Path):
    job = build_fedavg_logreg("synthetic", {"rounds": 2}, 2, tmp_path)

    client = json.loads((job / "app" / "config" / "config_fed_client.json").read_text())
    args = client["executors"][0]["executor"]["args"]["task_script_args"]
    assert args == "--lr 0.5 --local_epochs 5 --n_features 10 --samples 500"


@pytest.mark.parametrize(("raw", "message"), [
    ({"features": "age"}, "features name CSV columns, so they need data"),
    ({"data": "records", "features": "age,bmi", "n_features": 3}, "n_features is 3 but 2"),
    ({"data": "records", "label": "age", "features": ["age"]}, "'age' is also named"),
    ({"data": "my records"}, "package.parameters.data"),
    ({"data": "records", "label": "out come"}, "package.parameters.label"),
])
def test_parameters_that_cannot_work_are_refused_naming_them(raw, message):
    with pytest.raises(InvalidPackage, match=message):
        parameters(raw)


def test_every_csv_under_the_folder_is_read_with_only_the_named_columns(tmp_path: Path):
    folder = records(tmp_path, {"2023.csv": HEADER + "a,61,27.5,1\nb,45,22.1,0\n",
                                "2024/more.csv": HEADER + "c,70,31.0,1\n",
                                "notes.txt": "not a table"})

    x, y = csv_dataset(folder, "outcome", ["age", "bmi"], 2)

    np.testing.assert_allclose(x, [[61, 27.5], [45, 22.1], [70, 31.0]], rtol=1e-6)
    assert y.tolist() == [1, 0, 1]


def test_without_features_every_column_but_the_label_is_one(tmp_path: Path):
    folder = records(tmp_path, {"a.csv": "age,outcome,bmi\n61,1,27.5\n45,0,22.1\n"})

    x, y = csv_dataset(folder, "outcome", None, 2)

    np.testing.assert_allclose(x, [[61, 27.5], [45, 22.1]], rtol=1e-6)
    assert y.tolist() == [1, 0]


@pytest.mark.parametrize(("files", "problem"), [
    ({}, "no *.csv file in"),
    ({"a.csv": "age,bmi\n61,27\n"}, "a.csv has no column outcome"),
    ({"a.csv": HEADER + "a,61,,1\n"}, "a.csv line 2: column bmi is not a number"),
    ({"a.csv": HEADER + "a,61,nan,1\n"}, "a.csv line 2: column bmi is not a number"),
    ({"a.csv": HEADER + "a,61,27,yes\n"}, "a.csv line 2: column outcome is not a number"),
    ({"a.csv": HEADER + "a,61,27,2\n"}, "label column outcome must be 0 or 1"),
    ({"a.csv": HEADER + "a,61,27,1\n"}, "fewer than 2 rows"),
])
def test_data_that_cannot_be_trained_on_says_what_is_wrong_without_its_values(tmp_path, files,
                                                                               problem):
    folder = records(tmp_path / "records", files)
    folder.mkdir(exist_ok=True)

    with pytest.raises(SiteDataError) as failed:
        csv_dataset(folder, "outcome", ["age", "bmi"], 2)

    message = str(failed.value)
    assert problem in message
    outside_the_path = message.replace(str(folder), "")
    assert "27" not in outside_the_path and "nan" not in outside_the_path  # no cell value


def test_a_column_count_other_than_the_model_s_asks_for_features(tmp_path: Path):
    folder = records(tmp_path, {"a.csv": HEADER + "a,61,27,1\nb,45,22,0\n"})

    with pytest.raises(SiteDataError, match="a.csv has 3 feature columns but the model has 2"):
        csv_dataset(folder, "outcome", None, 2)


def test_the_folder_comes_from_the_input_s_variable_and_its_absence_is_explained(
        tmp_path, monkeypatch):
    monkeypatch.setenv("ARCFLARE_INPUT_CT_SCANS", str(tmp_path))
    monkeypatch.delenv("ARCFLARE_INPUT_RECORDS", raising=False)

    assert input_folder("ct-scans") == tmp_path
    with pytest.raises(SiteDataError, match="no data input 'records' .ARCFLARE_INPUT_RECORDS"):
        input_folder("records")


def test_a_file_sorted_by_label_still_gives_both_classes_to_both_splits():
    x = np.arange(200, dtype=np.float32).reshape(100, 2)
    y = np.array([0.0] * 50 + [1.0] * 50, dtype=np.float32)

    (_, y_train), (_, y_val) = split(*shuffled(x, y, "st-marys"))

    assert 0 < y_val.mean() < 1 and 0 < y_train.mean() < 1
