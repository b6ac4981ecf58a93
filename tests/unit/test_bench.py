import json

import pytest
import torch

from neuroclass.cli import main
from neuroclass.config import ModelConfig
from neuroclass.models import create


def test_bench_measures_speed_and_time_to_target(capsys):
    # a generous epoch cap and time limit: training must stop at the target, not at either limit
    rc = main(["bench", "blocks:n=400,size=16", "--model", "mlp", "--set", "model.options.hidden=[32]",
               "--set", "train.epochs=40", "--target", "0.9", "--max-time", "1h", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    # MLP 3x16x16 -> 32 -> 4 classes: a multiply-add counts 2
    assert r["flops_per_image"] == 2 * (3 * 16 * 16 * 32 + 32 * 4)
    model = create(ModelConfig(name="mlp", options={"hidden": [32]}), (3, 16, 16), 4,
                   torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1))
    assert r["parameters"] == sum(p.numel() for p in model.parameters())
    # training costs 3 forward passes: achieved GFLOP/s follow from the measured rates
    assert r["train_gflops"] == pytest.approx(3 * r["flops_per_image"] * r["train_examples_per_second"] / 1e9)
    assert r["inference_gflops"] == pytest.approx(r["flops_per_image"] * r["inference_examples_per_second"] / 1e9)
    curve = r["curve"]  # [epoch, seconds of training, test accuracy] after each epoch
    assert [point[0] for point in curve] == list(range(1, len(curve) + 1))
    first_hit = next(point for point in curve if point[2] >= 0.9)
    assert r["reached_epoch"] == first_hit[0] and r["seconds_to_target"] == first_hit[1]
    assert curve[-1][0] == r["reached_epoch"] < 40  # stopped by the target, with epochs to spare
    assert all(point[2] < 0.9 for point in curve[:-1])
    assert r["best_accuracy"] == max(point[2] for point in curve) == curve[-1][2]
    assert r["target"] == 0.9


def test_bench_plain_text_without_target(capsys):
    assert main(["bench", "blocks:n=200,size=16", "--model", "mlp",
                 "--set", "model.options.hidden=[8]"]) == 0
    text = capsys.readouterr().out
    assert "matmul peak" in text and "of peak" in text and "time to" not in text


def test_bench_rejects_a_target_above_one(capsys):
    assert main(["bench", "blocks:n=200", "--target", "91"]) == 2
    assert "--target must be an accuracy" in capsys.readouterr().err
