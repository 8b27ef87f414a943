"""Built-in recipe client: logistic regression in NumPy with NVFlare's Client API.

With `--data <input>` each site trains on its own CSV files: every *.csv under the folder
the deployer bound to that input (ARCFLARE_INPUT_<NAME>), with a 0/1 `--label` column and
the `--features` columns (default: all others). Rows are shuffled with the site's seed
before the 80/20 split, so a file sorted by label still gives both splits both classes.

Without it, each site generates synthetic, non-IID data seeded by its site name: the
same labelling rule everywhere (one true separating hyperplane, seed 0), but a
different feature shift and class balance per site, so no site alone sees the
whole picture. Per round: evaluate the received global model on the local
validation split (logged with NVFlare's tracking writer), train `local_epochs`
of full-batch gradient descent, send the new weights back.

The model is one flat float32 vector: n_features weights then the bias.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import math
import os
from pathlib import Path

import numpy as np
from arcflare.contracts.fields import input_variable

TRUE_SEED = 0


def site_seed(site: str) -> int:
    return int.from_bytes(hashlib.sha256(site.encode()).digest()[:4], "big")


def site_dataset(site: str, n_features: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    truth = np.random.default_rng(TRUE_SEED)
    w_true = truth.normal(size=n_features)
    rng = np.random.default_rng(site_seed(site))
    shift = rng.normal(scale=1.0, size=n_features)
    x = rng.normal(size=(samples, n_features)) + shift
    margin = x @ w_true - shift @ w_true * rng.uniform(0.3, 0.9)
    y = (margin + rng.normal(scale=0.3, size=samples) > 0).astype(np.float32)
    return x.astype(np.float32), y


class SiteDataError(ValueError):
    """The site's data cannot be trained on; the message says what to fix, naming no value."""


def input_folder(name: str) -> Path:
    variable = input_variable(name)
    folder = os.environ.get(variable)
    if not folder:
        raise SiteDataError(f"this site has no data input {name!r} ({variable} is not set): "
                            "add it to the site's data in the federation spec and redeploy")
    return Path(folder)


def csv_dataset(folder: Path, label: str, features: list[str] | None,
                n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Every *.csv under the folder, as one feature matrix and a 0/1 label vector."""
    files = sorted(folder.rglob("*.csv"))
    if not files:
        raise SiteDataError(f"no *.csv file in {folder}")
    columns = features
    rows: list[list[float]] = []
    labels: list[float] = []
    for path in files:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h for h in (reader.fieldnames or []) if h is not None]
            columns = columns or [h for h in header if h != label]
            missing = [c for c in (label, *columns) if c not in header]
            if missing:
                raise SiteDataError(f"{path.name} has no column {', '.join(missing)}")
            if len(columns) != n_features:
                raise SiteDataError(f"{path.name} has {len(columns)} feature columns but the "
                                    f"model has {n_features}; name them with the recipe's "
                                    "features parameter")
            for record in reader:
                where = f"{path.name} line {reader.line_num}"
                rows.append([_number(record[c], c, where) for c in columns])
                labels.append(_label(record[label], label, where))
    if len(labels) < 2:
        raise SiteDataError(f"the CSV files in {folder} hold fewer than 2 rows")
    return np.asarray(rows, dtype=np.float32), np.asarray(labels, dtype=np.float32)


def _number(text: str | None, column: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise SiteDataError(f"{where}: column {column} is not a number")
    return value


def _label(text: str | None, column: str, where: str) -> float:
    value = _number(text, column, where)
    if value not in (0.0, 1.0):
        raise SiteDataError(f"{where}: label column {column} must be 0 or 1")
    return value


def shuffled(x: np.ndarray, y: np.ndarray, site: str) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(site_seed(site)).permutation(len(y))
    return x[order], y[order]


def site_split(site: str, args: argparse.Namespace) -> tuple[tuple, tuple]:
    if not args.data:
        return split(*site_dataset(site, args.n_features, args.samples))
    features = args.features.split(",") if args.features else None
    x, y = csv_dataset(input_folder(args.data), args.label, features, args.n_features)
    return split(*shuffled(x, y, site))


def split(x: np.ndarray, y: np.ndarray) -> tuple[tuple, tuple]:
    cut = int(len(y) * 0.8)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def predict(model: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(x @ model[:-1] + model[-1])))


def accuracy(model: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((predict(model, x) >= 0.5) == (y >= 0.5)))


def train(model: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float, epochs: int) -> np.ndarray:
    model = model.astype(np.float64).copy()
    for _ in range(epochs):
        error = predict(model, x) - y
        model[:-1] -= lr * (x.T @ error) / len(y)
        model[-1] -= lr * float(np.mean(error))
    return model.astype(np.float32)


def main() -> None:
    import nvflare.client as flare
    from nvflare.app_common.np.constants import NPConstants
    from nvflare.client.tracking import SummaryWriter

    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--local_epochs", type=int, default=5)
    parser.add_argument("--n_features", type=int, default=10)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--data", default=None, help="the site data input to train on")
    parser.add_argument("--label", default="label")
    parser.add_argument("--features", default=None, help="comma-separated CSV columns")
    args = parser.parse_args()

    flare.init()
    site = flare.get_site_name()
    (x_train, y_train), (x_val, y_val) = site_split(site, args)
    writer = SummaryWriter()
    while flare.is_running():
        incoming = flare.receive()
        global_model = np.asarray(incoming.params[NPConstants.NUMPY_KEY], dtype=np.float32).reshape(-1)
        round_no = incoming.current_round or 0
        global_accuracy = accuracy(global_model, x_val, y_val)
        writer.add_scalar("accuracy", global_accuracy, global_step=round_no)
        local = train(global_model, x_train, y_train, args.lr, args.local_epochs)
        writer.add_scalar("train_accuracy", accuracy(local, x_train, y_train), global_step=round_no)
        flare.send(
            flare.FLModel(
                params={NPConstants.NUMPY_KEY: local},
                metrics={"accuracy": global_accuracy},
                meta={"NUM_STEPS_CURRENT_ROUND": len(y_train)},
            )
        )


if __name__ == "__main__":
    main()
