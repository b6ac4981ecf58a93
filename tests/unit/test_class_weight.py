"""Imbalanced classes: train.class_weight (per-class loss weights, scikit-learn's "balanced") and
data.sampler=balanced (each class drawn about equally often)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight

from neuroclass.config import load_config
from neuroclass.data.dataset import Dataset
from neuroclass.models.capsnet import margin_loss
from neuroclass.models.layers import cross_entropy
from neuroclass.training.trainer import Batches, class_weights, sampling_weights


def test_auto_weights_are_scikit_learns_balanced_and_absent_classes_get_one():
    y = torch.tensor([0] * 8 + [1] * 2 + [3] * 2)
    weight = class_weights(y, 4, "auto", torch.device("cpu"))
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=y.numpy())
    assert weight.dtype == torch.float32 and weight.shape == (4,)
    assert np.allclose(weight.numpy()[[0, 1, 3]], expected) and weight[2] == 1.0
    assert weight[1] == pytest.approx(12 / (3 * 2))  # N / (K present * n_k)
    assert class_weights(y, 4, "none", torch.device("cpu")) is None


def test_weighted_losses_count_each_class_by_its_weight():
    torch.manual_seed(0)
    logits, target = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    weight = torch.tensor([0.5, 2.0, 2.0])
    per_example = F.cross_entropy(logits, target, reduction="none")
    expected = (per_example * weight[target]).sum() / weight[target].sum()
    assert torch.allclose(cross_entropy(logits, target, 0.0, weight), expected)
    assert torch.allclose(cross_entropy(logits, target, 0.0, None), per_example.mean())
    lengths = torch.rand(6, 3)
    unweighted = margin_loss(lengths, target, 0.0)
    ones = margin_loss(lengths, target, 0.0, torch.ones(3))
    assert torch.allclose(unweighted, ones)  # equal weights: the plain mean
    assert not torch.allclose(margin_loss(lengths, target, 0.0, weight), unweighted)


def imbalanced(n_major: int = 360, n_minor: int = 24) -> Dataset:
    """Rows of 2 features: the rare class sits a little off the common one, overlapping it."""
    g = torch.Generator().manual_seed(0)
    major = torch.randn(n_major, 2, generator=g)
    minor = torch.randn(n_minor, 2, generator=g) + torch.tensor([1.6, 1.6])
    x = torch.cat([major, minor]).float()
    y = torch.cat([torch.zeros(n_major), torch.ones(n_minor)]).long()
    return Dataset(x, y, ["common", "rare"], name="imbalanced", kind="table")


@pytest.mark.parametrize("setting", ["train.class_weight=auto", "data.sampler=balanced"])
def test_each_remedy_raises_the_recall_of_a_rare_class(tmp_path, setting):
    from neuroclass.estimator import train_in_memory

    recalls = {}
    for how in ("none", "remedy"):
        chosen = [setting] if how == "remedy" else []
        cfg = load_config(overrides=["model.name=mlp", "model.options.hidden=[16]", "train.epochs=30",
                                     "train.quiet=true", "train.seed=0", "data.val_fraction=0.2",
                                     f"out={tmp_path}", *chosen])
        data = imbalanced()
        trained = train_in_memory(cfg, data)
        proba = trained.predictor.predict_proba_tensor(data.x)
        predicted = np.asarray(proba).argmax(1)
        rare = data.y.numpy() == 1
        recalls[how] = float((predicted[rare] == 1).mean())
    assert recalls["remedy"] > recalls["none"] + 0.2


def test_a_balanced_epoch_draws_each_class_about_equally_and_reproducibly():
    y = torch.tensor([0] * 900 + [1] * 100)
    weights = sampling_weights(y, "balanced")
    assert sampling_weights(y, "shuffle") is None
    draws = [Batches(torch.zeros(1000, 2), y, 50, torch.Generator().manual_seed(3), weights).order()
             for _ in range(2)]
    assert torch.equal(draws[0], draws[1]) and len(draws[0]) == 1000
    share = float((y[draws[0]] == 1).float().mean())
    assert 0.45 < share < 0.55  # 10% of the examples, half of the draws
    plain = Batches(torch.zeros(1000, 2), y, 50, torch.Generator().manual_seed(3)).order()
    assert sorted(plain.tolist()) == list(range(1000))  # the shuffle: each example once
