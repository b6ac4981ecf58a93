"""The learning-rate range test: the suggestion rule on synthetic loss curves, the sweep on a real
model, and `neuroclass lr-find` writing its curve."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from neuroclass.cli import main
from neuroclass.config import OptimConfig
from neuroclass.errors import NeuroclassError
from neuroclass.training.lr_range import DIVERGE, lr_range_test, suggest_lr

LRS = list(np.logspace(-7, 1, 120))


def valley(lowest_at: float, noise: float = 0.0, seed: int = 0) -> list[float]:
    """A range-test curve: flat, falling toward ``lowest_at`` (log-spaced rates), then exploding."""
    rng = np.random.default_rng(seed)
    out = []
    for lr in LRS:
        d = math.log10(lr) - math.log10(lowest_at)
        loss = 2.3 - 1.8 * math.exp(-(d ** 2) / 2) if d <= 0 else 0.5 + 3 * d ** 2
        out.append(loss + noise * rng.normal())
    return out


def smooth(values: list[float], beta: float = 0.05) -> list[float]:
    avg, out = 0.0, []
    for step, v in enumerate(values, start=1):
        avg = (1 - beta) * avg + beta * v
        out.append(avg / (1 - (1 - beta) ** step))
    return out


@pytest.mark.parametrize("lowest_at", [1e-4, 3e-3, 1e-1])
def test_the_suggestion_is_a_tenth_of_the_valley_floor(lowest_at):
    suggestion = suggest_lr(LRS, valley(lowest_at))
    assert suggestion.lr == pytest.approx(suggestion.lr_at_min / 10)
    assert abs(math.log10(suggestion.lr_at_min) - math.log10(lowest_at)) < 0.1


def test_a_noisy_curve_smoothed_still_lands_near_the_valley():
    suggestion = suggest_lr(LRS, smooth(valley(3e-3, noise=0.3, seed=1)))
    assert abs(math.log10(suggestion.lr) - math.log10(3e-4)) < 0.7  # the average lags a little


def test_flat_rising_or_empty_curves_suggest_nothing():
    assert suggest_lr(LRS, [2.3] * len(LRS)) is None  # the loss never fell
    assert suggest_lr(LRS, [2.3 + i for i in range(len(LRS))]) is None  # lowest at the first rate
    assert suggest_lr(LRS, [math.nan] * len(LRS)) is None
    with pytest.raises(NeuroclassError, match="one smoothed loss per rate"):
        suggest_lr(LRS, [1.0])


def test_the_sweep_grows_the_rate_and_stops_when_the_loss_diverges():
    torch.manual_seed(0)
    x = torch.randn(256, 10)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 2))
    batches = iter([(x[i:i + 32], y[i:i + 32]) for i in range(0, 256, 32)] * 40)
    curve = lr_range_test(model, batches, OptimConfig(name="sgd", momentum=0.9), steps=200, start=1e-4, end=1e3)
    assert curve.lrs[0] == pytest.approx(1e-4) and all(b > a for a, b in zip(curve.lrs, curve.lrs[1:]))
    assert curve.diverged and len(curve.lrs) < 200  # SGD at hundreds blows up before the end
    assert curve.smoothed[-1] > DIVERGE * min(curve.smoothed) or not math.isfinite(curve.smoothed[-1])
    assert suggest_lr(curve.lrs, curve.smoothed) is not None
    with pytest.raises(NeuroclassError, match="needs >= 2 steps"):
        lr_range_test(model, batches, OptimConfig(), steps=1)


def test_cli_lr_find_writes_the_curve_and_prints_the_command(tmp_path, capsys):
    code = main(["lr-find", "blocks:n=240,size=16", "--model", "mlp", "--steps", "60",
                 "--set", "model.options.hidden=[16]", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    folder = next(tmp_path.glob("lr-find-*"))
    record = json.loads((folder / "lr_find.json").read_text())
    assert {"lr_find.csv", "lr_find.png", "lr_find.json"} <= {p.name for p in folder.iterdir()}
    assert (folder / "lr_find.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (folder / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "step,lr,loss,smoothed" and len(rows) == record["steps"] + 1
    assert record["suggestion"] is not None  # the colours are learnt: the loss falls
    assert 1e-5 < record["suggestion"]["lr"] < 1.0
    assert f"--set optim.lr={record['suggestion']['lr']:.2g}" in out
