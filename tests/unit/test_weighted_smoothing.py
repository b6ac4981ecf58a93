"""Class weights together with label smoothing: each example's smoothed cross-entropy counts with
the weight of its true class (never the smoothing term's classes), and a calibration that ends at
its upper temperature bound warns that training went wrong."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neuroclass.config import load_config
from neuroclass.data.dataset import Dataset
from neuroclass.evaluation.metrics import balanced_accuracy
from neuroclass.inference.calibrate import MAX_TEMPERATURE, calibrate, upper_bound_message
from neuroclass.models.capsnet import margin_loss
from neuroclass.models.layers import cross_entropy


def smoothed_by_hand(z: list[float], y: int, e: float) -> float:
    """-(1 - e + e/K) log p_y - sum over the other classes of (e/K) log p_k, for one row of logits."""
    log_norm = math.log(sum(math.exp(v) for v in z))
    log_p = [v - log_norm for v in z]
    k = len(z)
    return -sum(((1 - e) * (j == y) + e / k) * log_p[j] for j in range(k))


def test_a_three_example_batch_matches_the_hand_computed_weighted_mean():
    rows, labels, w, e = [[2.0, 0.0], [0.5, 1.0], [1.0, -1.0]], [0, 1, 0], [1.0, 20.0], 0.1
    per_example = [smoothed_by_hand(z, y, e) for z, y in zip(rows, labels)]
    expected = sum(w[y] * loss for y, loss in zip(labels, per_example)) / sum(w[y] for y in labels)
    got = cross_entropy(torch.tensor(rows), torch.tensor(labels), e, torch.tensor(w))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.4743, abs=1e-4)  # (0.2269 + 20 * 0.4991 + 0.2269) / 22
    # torch's weighted smoothing also weighs the e/K on the rare class by 20: a larger loss
    torch_loss = F.cross_entropy(torch.tensor(rows), torch.tensor(labels), weight=torch.tensor(w),
                                 label_smoothing=e)
    assert torch_loss.item() > expected + 0.1


def test_it_is_torchs_weighted_loss_without_smoothing_and_the_smoothed_loss_with_weights_of_one():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
    weight = torch.tensor([0.3, 1.0, 5.0, 20.0])
    assert torch.allclose(cross_entropy(logits, target, 0.0, weight),
                          F.cross_entropy(logits, target, weight=weight), atol=1e-6)
    for e in (0.0, 0.1, 0.3):
        assert torch.allclose(cross_entropy(logits, target, e, torch.ones(4)),
                              F.cross_entropy(logits, target, label_smoothing=e), atol=1e-6)
    soft = torch.softmax(torch.randn(16, 4, generator=g), dim=1)  # mixup-like soft targets
    assert torch.allclose(cross_entropy(logits, soft, 0.1, torch.ones(4)),
                          F.cross_entropy(logits, soft, label_smoothing=0.1), atol=1e-6)
    one_hot = F.one_hot(target, 4).float()  # a soft target that is one class is that class
    assert torch.allclose(cross_entropy(logits, one_hot, 0.1, weight),
                          cross_entropy(logits, target, 0.1, weight), atol=1e-6)


def test_a_mixed_target_is_the_same_mix_of_each_classs_weighted_loss():
    z, w, lam, e = torch.tensor([[0.3, -0.2, 1.1]]), torch.tensor([1.0, 20.0, 3.0]), 0.7, 0.1
    mixed = torch.tensor([[lam, 1 - lam, 0.0]])  # mixup of an example of class 0 and one of class 1
    loss_0, loss_1 = (smoothed_by_hand(z[0].tolist(), y, e) for y in (0, 1))
    expected = (lam * 1.0 * loss_0 + (1 - lam) * 20.0 * loss_1) / (lam * 1.0 + (1 - lam) * 20.0)
    assert cross_entropy(z, mixed, e, w).item() == pytest.approx(expected, rel=1e-6)


def test_a_weighted_smoothed_loss_has_gradients_and_pulls_common_examples_to_their_class():
    logits = torch.zeros(1, 2, requires_grad=True)  # one common example (class 0), undecided
    cross_entropy(logits, torch.tensor([0]), 0.1, torch.tensor([0.52, 10.7])).backward()
    assert logits.grad[0, 0] < 0 < logits.grad[0, 1]  # descent raises the true class's logit
    torch_logits = torch.tensor([[3.0, 0.0]], requires_grad=True)
    F.cross_entropy(torch_logits, torch.tensor([0]), weight=torch.tensor([0.52, 10.7]),
                    label_smoothing=0.1).backward()
    assert torch_logits.grad[0, 1] < 0  # torch's: even a correct example is pushed to the rare class


def test_the_margin_loss_weighs_each_example_by_its_true_class_also_when_smoothed():
    g = torch.Generator().manual_seed(1)
    lengths, target = torch.rand(6, 2, generator=g), torch.tensor([0, 0, 0, 0, 1, 1])
    weight = torch.tensor([0.5, 10.0])
    per_example = torch.stack([margin_loss(lengths[i:i + 1], target[i:i + 1], 0.1) for i in range(6)])
    expected = (per_example * weight[target]).sum() / weight[target].sum()
    assert torch.allclose(margin_loss(lengths, target, 0.1, weight), expected, atol=1e-6)


def imbalanced_table(seed: int, n_common: int = 572, n_rare: int = 28) -> Dataset:
    """Rows of 4 features; the rare class sits 2.5 standard deviations off the common one."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(n_common, 4, generator=g)
    rare = torch.randn(n_rare, 4, generator=g) + 2.5 / math.sqrt(4) * torch.ones(4)
    y = torch.cat([torch.zeros(n_common), torch.ones(n_rare)]).long()
    return Dataset(torch.cat([common, rare]).float(), y, ["common", "rare"], name="imbalanced", kind="table")


def test_auto_class_weights_with_the_default_label_smoothing_train_a_useful_model(tmp_path):
    from neuroclass.estimator import train_in_memory

    cfg = load_config(overrides=["model.name=mlp", "train.epochs=10", "train.class_weight=auto",
                                 "train.quiet=true", "train.seed=0", "data.val_fraction=0.2",
                                 f"out={tmp_path}"])
    assert cfg.train.label_smoothing > 0  # the default smoothing is what broke the weighted loss
    data = imbalanced_table(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "upper bound" warning from calibration
        trained = train_in_memory(cfg, data)
    held_out = imbalanced_table(seed=1)  # the same distribution, other draws
    predicted = np.asarray(trained.predictor.predict_proba_tensor(held_out.x)).argmax(1)
    assert balanced_accuracy(held_out.y.numpy(), predicted) >= 0.8
    assert trained.history[-1]["loss"] < math.log(2)  # it learnt: below the loss of a coin toss


def test_a_temperature_at_its_upper_bound_warns_in_one_line_what_to_check():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=g)
    wrong = 4.0 * F.one_hot(1 - y, 2).float()  # confident and wrong on every example
    with pytest.warns(UserWarning, match="upper bound") as caught:
        result = calibrate(wrong, y)
    assert result["candidate_temperature"] == pytest.approx(MAX_TEMPERATURE)
    message = str(caught[0].message)
    assert message == upper_bound_message() and "\n" not in message
    assert "train.class_weight" in message and "training" in message
    right = 4.0 * F.one_hot(y, 2).float() + torch.randn(200, 2, generator=g) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert calibrate(right, y)["candidate_temperature"] < MAX_TEMPERATURE
