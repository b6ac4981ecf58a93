"""`neuroclass bench`: images/s for training and inference, achieved GFLOP/s against a matmul peak
measured in the same run, and optionally the training time to a target test accuracy.

It prepares and builds through the training pipeline (pipeline/), so it measures exactly the
model and data a run would train."""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn

from neuroclass.config import Config
from neuroclass.training.throughput import (count_flops, matmul_peak_gflops, measure_inference,
                                              measure_training)
from neuroclass.inference import predict_logits
from neuroclass.pipeline import Prepared, build, fit, prepare, process_state
from neuroclass.training.callbacks import Callback
from neuroclass.training.finetune import FineTuning
from neuroclass.training.state import StopReason, TrainState
from neuroclass.training.trainer import resolve_batch_size


@dataclass
class TargetAccuracy(Callback):
    """Checks test accuracy after each epoch; stops once ``target`` is reached. The check's own
    duration is kept off the training clock it reports."""

    x: torch.Tensor
    y: torch.Tensor
    target: float
    device: torch.device
    max_seconds: float  # of training; checked after each epoch

    def on_fit_start(self, state: TrainState, model: nn.Module) -> None:
        self.eval_seconds, self.reached, self.curve = 0.0, None, []

    def on_epoch_end(self, state: TrainState, model: nn.Module) -> None:
        start = time.perf_counter()
        accuracy = float((predict_logits(model, self.x, self.device).argmax(1) == self.y).float().mean())
        self.eval_seconds += time.perf_counter() - start
        train_clock = state.elapsed - self.eval_seconds
        self.curve.append((state.epoch, train_clock, accuracy))
        if accuracy >= self.target and self.reached is None:
            self.reached = (state.epoch, train_clock)
            state.request_stop(StopReason.TARGET_REACHED, f"target accuracy {self.target:.2%} reached")
        elif train_clock >= self.max_seconds:
            state.request_stop(StopReason.TARGET_NOT_REACHED, f"target not reached in {self.max_seconds:.0f} s")


def run_bench(cfg: Config, target: float | None = None, max_seconds: float = 300.0,
              steps: int = 20) -> dict:
    """Measure cfg's model on cfg's data: parameters, FLOPs per image, training and inference
    images/s and GFLOP/s against a matmul peak measured in the same process; with ``target``, also
    the training seconds (at most ``max_seconds``) until the test accuracy reaches it. Raises
    NeuroclassError when the data has no test split.

    Example::

        run_bench(load_config(), target=0.91)
    """
    with process_state(cfg):
        prep = prepare(cfg)
        model, tuning = build(prep)
        splits, shape, device = prep.splits, prep.input_shape, prep.device
        batch = resolve_batch_size(prep.cfg.train.batch_size, len(splits.train))
        result = {"data": cfg.data.source, "model": prep.cfg.model.name, "kind": prep.dataset.kind,
                  "device": str(device),
                  "threads": prep.threads, "parameters": sum(p.numel() for p in model.parameters()),
                  "train_examples": len(splits.train), "test_examples": len(splits.test),
                  "batch_size": batch, "flops_per_image": count_flops(model, shape),
                  "matmul_peak_gflops": matmul_peak_gflops(device=device)}
        train_speed = measure_training(copy.deepcopy(model), shape, batch, steps, device,
                                       channels_last=prep.cfg.train.channels_last)
        infer_speed = measure_inference(copy.deepcopy(model), shape, prep.cfg.train.eval_batch_size, steps,
                                        device, channels_last=prep.cfg.train.channels_last)
        result["train_examples_per_second"], result["inference_examples_per_second"] = train_speed, infer_speed
        # training costs ~3x the forward pass (backward for activations and for weights)
        result["train_gflops"] = 3 * result["flops_per_image"] * train_speed / 1e9
        result["inference_gflops"] = result["flops_per_image"] * infer_speed / 1e9
        if target is not None:
            result.update(_time_to_target(prep, model, tuning, target, max_seconds))
    return result


def _time_to_target(prep: Prepared, model: nn.Module, tuning: FineTuning, target: float,
                    max_seconds: float) -> dict:
    """Train with the config's own schedule (not a budget-shaped one) until the target is met."""
    test = prep.splits.test
    check = TargetAccuracy(test.x, test.y, target, prep.device, max_seconds)
    fit(prep, model, tuning, callbacks=[check])
    best = max((acc for _, _, acc in check.curve), default=0.0)
    return {"target": target, "reached_epoch": check.reached[0] if check.reached else None,
            "seconds_to_target": check.reached[1] if check.reached else None,
            "best_accuracy": best, "curve": check.curve}


def format_bench(r: dict) -> str:
    peak = r["matmul_peak_gflops"]
    unit = "examples/s" if r.get("kind") == "table" else "images/s"  # a table row is no image
    lines = [f"data {r['data']} ({r['train_examples']:,} train, {r['test_examples']:,} test), model "
             f"{r['model']} ({r['parameters']:,} parameters, {r['flops_per_image'] / 1e6:.2f} MFLOP/image "
             f"forward), batch {r['batch_size']}",
             f"matmul peak   {peak:8.1f} GFLOP/s  (2048x2048 fp32, {r['threads']} threads, {r['device']})",
             f"training      {r['train_examples_per_second']:8,.0f} {unit}  {r['train_gflops']:6.1f} GFLOP/s"
             f"  {r['train_gflops'] / peak:6.1%} of peak",
             f"inference     {r['inference_examples_per_second']:8,.0f} {unit}  "
             f"{r['inference_gflops']:6.1f} GFLOP/s  {r['inference_gflops'] / peak:6.1%} of peak"]
    if "target" in r:
        if r["seconds_to_target"] is not None:
            lines.append(f"time to {r['target']:.1%}  {r['seconds_to_target']:8.1f} s of training "
                         f"(epoch {r['reached_epoch']})")
        else:
            lines.append(f"time to {r['target']:.1%}  not reached (best {r['best_accuracy']:.2%})")
    return "\n".join(lines)
