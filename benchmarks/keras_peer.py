"""Keras 3 (torch backend) peer for time_to_accuracy.py: trains the reference CNN, prints one JSON line.

Runs inside benchmarks/.venv-keras (keras + torch only; neuroclass is not importable there), started
by time_to_accuracy.py with KERAS_BACKEND=torch. Reads the IDX .gz files itself.

    KERAS_BACKEND=torch benchmarks/.venv-keras/bin/python benchmarks/keras_peer.py \
        --data-dir /usr/share/datasets/fashion-mnist --epochs 1 --train-limit 3000 --test-limit 1000
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (.gz or raw) -> uint8 array; images (N, 28, 28), labels (N,)."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no {stem}[.gz]")


def load_split(folder: Path, prefix: str, limit: int | None, mean: float, std: float):
    x = read_idx(find(folder, f"{prefix}-images-idx3-ubyte"))[:limit]
    y = read_idx(find(folder, f"{prefix}-labels-idx1-ubyte"))[:limit].astype("int64")
    x = ((x.astype("float32") / 255.0 - mean) / std)[..., None]  # (N, 28, 28, 1), channels last
    return x, y


def build_model(keras, padding: str):
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, padding=padding, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, padding=padding, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--padding", type=int, choices=(0, 1), default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--mean", type=float, default=0.2860)
    parser.add_argument("--std", type=float, default=0.3530)
    parser.add_argument("--targets", default="", help="comma-separated accuracies: stop once all are reached")
    args = parser.parse_args()

    import keras
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    x, y = load_split(args.data_dir, "train", args.train_limit, args.mean, args.std)
    xt, yt = load_split(args.data_dir, "t10k", args.test_limit, args.mean, args.std)
    model = build_model(keras, "same" if args.padding else "valid")
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    targets = [float(t) for t in args.targets.split(",") if t]
    epochs, train_seconds = [], 0.0
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.fit(x, y, batch_size=args.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                  shuffle=True, verbose=0)
        train_seconds += time.perf_counter() - start
        _, accuracy = model.evaluate(xt, yt, batch_size=1000, verbose=0)  # not timed
        epochs.append({"epoch": epoch + 1, "train_seconds": train_seconds, "accuracy": float(accuracy)})
        if targets and accuracy >= max(targets):
            break
    print(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend(),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "params": int(model.count_params()), "train_size": len(y), "test_size": len(yt),
                      "epochs": epochs}))


if __name__ == "__main__":
    main()
