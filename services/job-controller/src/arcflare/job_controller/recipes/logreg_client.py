"""Built-in recipe client: logistic regression in NumPy with NVFlare's Client API.

Each site generates its own synthetic, non-IID data, seeded by its site name: the
same labelling rule everywhere (one true separating hyperplane, seed 0), but a
different feature shift and class balance per site, so no site alone sees the
whole picture. Per round: evaluate the received global model on the local
validation split (logged with NVFlare's tracking writer), train `local_epochs`
of full-batch gradient descent, send the new weights back.

The model is one flat float32 vector: n_features weights then the bias.
"""
from __future__ import annotations

import argparse
import hashlib

import numpy as np

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
    args = parser.parse_args()

    flare.init()
    site = flare.get_site_name()
    (x_train, y_train), (x_val, y_val) = split(*site_dataset(site, args.n_features, args.samples))
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
