"""The NumPy glass-box network against other ways of training the same small network: seconds per
epoch and test accuracy on scikit-learn's digits and on Fashion-MNIST.

Contenders, one after the other in this process, on the same pixels (in [0, 1]), split, threads and seed;
every network has one hidden layer of 200 units:
  classic   neuroclass.glassbox, preset classic: sigmoid everywhere, squared error, one example per
            update, learning rate 0.1
  modern    neuroclass.glassbox, preset modern: ReLU, softmax cross-entropy, Adam 1e-3, batches of 128
  loop      the explainers' from-scratch network (Rashid 2016), written below: a loop over the
            examples, np.dot per layer, float64 column vectors, no biases
  nn_digits the PyPI package neural-network-digits: its NeuralNetwork's train_step on batches of 32 as
            its training loop calls it (its CLI defaults: lr 0.05 with cosine decay, momentum 0.9,
            l2 1e-4), without its rotation/shift augmentation of 28x28 digit photos
  sklearn   scikit-learn's MLPClassifier (ReLU, Adam 1e-3, batches of 128, its alpha 1e-4), one
            partial_fit per epoch
  torch_mlp neuroclass's torch mlp (model.options.hidden=[200], no dropout, no batch norm) through the
            pipeline (prepare -> build -> fit) with the training defaults otherwise, batches of 128
Time is training only: each epoch's test accuracy is measured off the clock. "time to X" is the end
of the first epoch at or above X.

    python benchmarks/glassbox.py [--data digits,fashion-mnist] [--epochs 20] [--example-epochs 3]
                                  [--only classic,modern,...] [--threads 1] [--quick]

--quick: digits only, 2 epochs each (1 for the one-example contenders): checks the script in
seconds; its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from bench_table import format_table, machine_summary, settings_note

HIDDEN = 200
TARGETS = {"digits": 0.95, "fashion-mnist": 0.88}
NAMES = ("classic", "modern", "loop", "nn_digits", "sklearn", "torch_mlp")
PER_EXAMPLE = ("classic", "loop")  # one update per example: fewer epochs


@dataclass
class Data:
    name: str
    x_train: np.ndarray  # (N, D) float32 in [0, 1]
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    dataset: object  # the neuroclass Dataset with parts train / test, for the pipeline contender


@dataclass
class Outcome:
    name: str
    curve: list = field(default_factory=list)  # (epoch, cumulative training seconds, test accuracy)
    error: str = ""


# ----------------------------------------------------------------------------- the explainers' loop

class ExplainersNetwork:
    """The classic from-scratch network as the explainers write it (Rashid 2016, "Make Your Own
    Neural Network"): one example at a time as a column vector, np.dot per layer, float64."""

    def __init__(self, inputnodes: int, hiddennodes: int, outputnodes: int, learningrate: float, seed: int):
        rng = np.random.default_rng(seed)
        self.wih = rng.normal(0.0, pow(inputnodes, -0.5), (hiddennodes, inputnodes))
        self.who = rng.normal(0.0, pow(hiddennodes, -0.5), (outputnodes, hiddennodes))
        self.lr = learningrate
        self.activation_function = lambda x: 1.0 / (1.0 + np.exp(-x))

    def train(self, inputs_list, targets_list) -> None:
        inputs = np.array(inputs_list, ndmin=2).T
        targets = np.array(targets_list, ndmin=2).T
        hidden_outputs = self.activation_function(np.dot(self.wih, inputs))
        final_outputs = self.activation_function(np.dot(self.who, hidden_outputs))
        output_errors = targets - final_outputs
        hidden_errors = np.dot(self.who.T, output_errors)
        self.who += self.lr * np.dot((output_errors * final_outputs * (1.0 - final_outputs)), hidden_outputs.T)
        self.wih += self.lr * np.dot((hidden_errors * hidden_outputs * (1.0 - hidden_outputs)), inputs.T)

    def query(self, inputs_list) -> np.ndarray:
        inputs = np.array(inputs_list, ndmin=2).T
        hidden_outputs = self.activation_function(np.dot(self.wih, inputs))
        return self.activation_function(np.dot(self.who, hidden_outputs))


def run_loop(data: Data, epochs: int, seed: int) -> Outcome:
    net = ExplainersNetwork(data.x_train.shape[1], HIDDEN, 10, 0.1, seed)
    scaled = data.x_train.astype(np.float64) * 0.99 + 0.01  # the explainers' inputs: 0.01 .. 1.0
    test = data.x_test.astype(np.float64) * 0.99 + 0.01
    order_rng = np.random.default_rng(seed)

    def one_epoch(_epoch: int) -> None:
        for i in order_rng.permutation(len(scaled)):
            targets = np.zeros(10) + 0.01
            targets[data.y_train[i]] = 0.99
            net.train(scaled[i], targets)

    def accuracy() -> float:
        return float(np.mean([np.argmax(net.query(row)) == label for row, label in zip(test, data.y_test)]))

    with np.errstate(over="ignore"):  # exp(-x) of a very negative x: inf, and a sigmoid of 0
        return timed("loop", epochs, one_epoch, accuracy)


# ----------------------------------------------------------------------------- contenders

def timed(name: str, epochs: int, one_epoch: Callable[[int], None], accuracy: Callable[[], float],
          max_seconds: float = math.inf) -> Outcome:
    """Run ``one_epoch(epoch)`` ``epochs`` times, timing only it, and ``accuracy()`` after each."""
    outcome, total = Outcome(name), 0.0
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        one_epoch(epoch)
        total += time.perf_counter() - start
        outcome.curve.append((epoch, total, accuracy()))
        if total > max_seconds:
            break
    return outcome


def run_glassbox(preset: str, data: Data, epochs: int, seed: int) -> Outcome:
    from neuroclass.glassbox import Network, fit, glassbox_options

    net = Network(glassbox_options({"preset": preset, "hidden": [HIDDEN]}), data.x_train.shape[1], 10, seed=seed)
    history = fit(net, data.x_train, data.y_train, data.x_test, data.y_test, epochs=epochs, seed=seed)
    seconds = np.cumsum([r.seconds for r in history.epochs])
    return Outcome(preset, [(r.epoch, float(s), r.val_accuracy) for r, s in zip(history.epochs, seconds)])


def run_nn_digits(data: Data, epochs: int, seed: int) -> Outcome:
    from nn_digits.neural_net.network import NeuralNetwork

    net = NeuralNetwork((data.x_train.shape[1], HIDDEN, 10), "relu", seed=seed)
    onehot = np.eye(10, dtype=np.float32)[data.y_train]
    rng = np.random.default_rng(seed)

    def one_epoch(epoch: int) -> None:  # as nn_digits' CLI: cosine decay of lr 0.05, batches of 32
        lr = 0.05 * 0.5 * (1 + np.cos(np.pi * (epoch - 1) / epochs))
        order = rng.permutation(len(onehot))
        for k in range(0, len(order), 32):
            group = order[k:k + 32]
            net.train_step(data.x_train[group], onehot[group], lr, momentum=0.9, l2=1e-4, dropout=0.0, rng=rng)

    return timed("nn_digits", epochs, one_epoch,
                 lambda: float(np.mean(net.predict(data.x_test).argmax(1) == data.y_test)))


def run_sklearn(data: Data, epochs: int, seed: int) -> Outcome:
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", solver="adam", batch_size=128,
                        learning_rate_init=1e-3, random_state=seed)
    classes = np.arange(10)
    return timed("sklearn", epochs, lambda _: clf.partial_fit(data.x_train, data.y_train, classes=classes),
                 lambda: float(np.mean(clf.predict(data.x_test) == data.y_test)))


def run_torch_mlp(data: Data, epochs: int, seed: int, threads: int) -> Outcome:
    """neuroclass's mlp through the pipeline, with a callback that scores the test split after
    every epoch off the clock."""
    from neuroclass.config import load_config
    from neuroclass.inference import predict_logits
    from neuroclass.pipeline import build, fit, prepare, process_state
    from neuroclass.training.callbacks import Callback

    class TestAccuracy(Callback):
        def on_fit_start(self, state, model) -> None:
            self.start, self.excluded, self.curve = time.perf_counter(), 0.0, []

        def on_epoch_end(self, state, model) -> None:
            eval_start = time.perf_counter()
            logits = predict_logits(model, self.test.x, self.device)
            accuracy = float((logits.argmax(1) == self.test.y).float().mean())
            self.curve.append((state.epoch, eval_start - self.start - self.excluded, accuracy))
            self.excluded += time.perf_counter() - eval_start

    cfg = load_config(overrides=[
        f"data.source={data.name}", "data.val_fraction=0", "model.name=mlp", f"model.options.hidden=[{HIDDEN}]",
        "model.options.dropout=0", "model.options.batch_norm=false", f"train.epochs={epochs}",
        "train.batch_size=128", "train.quiet=true", "train.device=cpu", f"train.seed={seed}",
        f"train.threads={threads}", "augment.auto=false"])
    with process_state(cfg):
        prep = prepare(cfg, dataset=data.dataset)
        model, tuning = build(prep)
        clock = TestAccuracy()
        clock.test, clock.device = prep.splits.test, prep.device
        fit(prep, model, tuning, callbacks=[clock])
    return Outcome("torch_mlp", clock.curve)


# ----------------------------------------------------------------------------- data, table, main

def load(name: str, seed: int) -> Data:
    """The pixels in [0, 1] as (N, D) float32 rows, split as the neuroclass Dataset is: Fashion-MNIST's
    official 60k / 10k, digits 80 / 20 stratified by ``seed``."""
    from sklearn.model_selection import train_test_split

    from neuroclass import data as data_mod
    from neuroclass.config import DataConfig

    ds = data_mod.load(DataConfig(source=name))
    if "test" not in ds.parts:
        train, test = train_test_split(np.arange(len(ds)), test_size=0.2, random_state=seed, stratify=ds.y.numpy())
        ds.parts = {"train": np.sort(train), "test": np.sort(test)}
    x = ds.x.numpy().reshape(len(ds), -1).astype(np.float32) / 255.0
    y = ds.y.numpy().astype(np.int64)
    train, test = ds.parts["train"], ds.parts["test"]
    return Data(name, x[train], y[train], x[test], y[test], ds)


def time_to(curve: list, target: float) -> str:
    for epoch, seconds, accuracy in curve:
        if accuracy >= target:
            return f"{seconds:.1f} s (epoch {epoch})"
    return "not reached"


def table(outcomes: list[Outcome], target: float) -> str:
    """One row per contender; speed-ups against the explainers' loop and MLPClassifier per epoch."""
    per_epoch = {o.name: o.curve[-1][1] / len(o.curve) for o in outcomes if o.curve}
    headers = ["contender", "epochs", "s/epoch", "loop's s/epoch / this", "this / sklearn's", "test acc (last)",
               "best", f"time to {100 * target:.0f}%"]
    rows = []
    for o in outcomes:
        if not o.curve:
            rows.append([o.name, "-", "-", "-", "-", "-", "-", f"NOT RUN: {o.error}"])
            continue
        speed = per_epoch[o.name]
        vs_loop = f"{per_epoch['loop'] / speed:.1f}x" if "loop" in per_epoch else "-"
        vs_sklearn = f"{speed / per_epoch['sklearn']:.2f}" if "sklearn" in per_epoch else "-"
        last, best = o.curve[-1][2], max(a for _, _, a in o.curve)
        rows.append([o.name, str(len(o.curve)), f"{speed:.3f}", vs_loop, vs_sklearn, f"{100 * last:.2f}%",
                     f"{100 * best:.2f}%", time_to(o.curve, target)])
    return format_table(headers, rows)


def run_one(name: str, data: Data, opts) -> Outcome:
    epochs = opts.example_epochs if name in PER_EXAMPLE else opts.epochs
    with threadpool_limits(limits=opts.threads, user_api="blas"):
        if name in ("classic", "modern"):
            return run_glassbox(name, data, epochs, opts.seed)
        if name == "loop":
            return run_loop(data, epochs, opts.seed)
        if name == "nn_digits":
            return run_nn_digits(data, epochs, opts.seed)
        if name == "sklearn":
            return run_sklearn(data, epochs, opts.seed)
        return run_torch_mlp(data, epochs, opts.seed, opts.threads)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--data", default=None, help="comma-separated: digits, fashion-mnist (default both)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the batch contenders (default 20)")
    parser.add_argument("--example-epochs", type=int, default=3,
                        help="epochs of the one-example-per-update contenders, classic and loop (default 3)")
    parser.add_argument("--only", default=",".join(NAMES), help=f"comma-separated contenders (default all: "
                        f"{', '.join(NAMES)})")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS / torch threads for every contender (default 1, as the glassbox family trains "
                             "in a run: these products are too small to share among threads)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: digits, 2 epochs (1 per example)")
    opts = parser.parse_args(argv)
    opts.only = [c.strip() for c in opts.only.split(",") if c.strip()]
    unknown = [c for c in opts.only if c not in NAMES]
    if unknown:
        parser.error(f"--only: unknown contender(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    opts.data = [d.strip() for d in (opts.data or ("digits" if opts.quick else "digits,fashion-mnist")).split(",")]
    if opts.quick:
        opts.epochs, opts.example_epochs = 2, 1
    return opts


def main(argv=None) -> None:
    opts = parse_args(argv)
    print(machine_summary())
    print(f"threads {opts.threads} | seed {opts.seed} | {opts.epochs} epochs, {opts.example_epochs} for "
          f"{' and '.join(PER_EXAMPLE)} | hidden layer {HIDDEN}" + settings_note(quick=opts.quick))
    for name in opts.data:
        data = load(name, opts.seed)
        print(f"\n{name}: {len(data.y_train):,} train / {len(data.y_test):,} test rows of "
              f"{data.x_train.shape[1]} pixels")
        outcomes = []
        for contender in opts.only:
            print(f"running {contender} ...", flush=True)
            try:
                outcomes.append(run_one(contender, data, opts))
            except Exception as exc:  # one contender failing must not hide the others' numbers
                outcomes.append(Outcome(contender, error=f"{type(exc).__name__}: {exc}"))
        print(table(outcomes, TARGETS[name]))


if __name__ == "__main__":
    main()
