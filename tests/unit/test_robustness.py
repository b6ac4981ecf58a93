import json
import math

import pytest
import torch

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.robustness import CORRUPTIONS, NOISE_SIGMAS, _subsample, robustness_curves


def halves_model(x):
    """Class 0 when the left half is brighter, class 1 when the right half is: mirror-sensitive."""
    w = x.shape[-1] // 2
    left, right = x[..., :w].mean((1, 2, 3)), x[..., w:].mean((1, 2, 3))
    return torch.stack([left - right, right - left], 1) * 20


def brightness_model(x):
    """Class 1 when the mean pixel is above 0.5: unchanged by a mirror image."""
    m = x.mean((1, 2, 3))
    return torch.stack([0.5 - m, m - 0.5], 1) * 50


@pytest.fixture(scope="module")
def halves():
    """300 images 2x12x12 with a bright left (label 0) or right (label 1) half; 10% of the labels
    flipped. Two channels, because torchvision's brightness op takes only 1 or 3."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (300,), generator=g)
    x = torch.full((300, 2, 12, 12), 40, dtype=torch.uint8)
    for i, label in enumerate(y.tolist()):
        x[i, :, :, (6 if label else 0):(12 if label else 6)] = 180
    y[:30] = 1 - y[:30]  # make plain accuracy 0.9, not 1
    return x, y


def test_curves_have_the_levels_and_level_zero_is_the_plain_accuracy(halves):
    x, y = halves
    curves = robustness_curves(halves_model, x, y)
    for name, (levels, identity, _) in CORRUPTIONS.items():
        assert [p["level"] for p in curves[name]] == list(levels)
        assert [p for p in curves[name] if p["level"] == identity][0]["accuracy"] == curves["tta"]["plain"]
    direct = float((halves_model(x.float() / 255).argmax(1) == y).float().mean())
    assert curves["tta"]["plain"] == pytest.approx(direct) == pytest.approx(0.9)
    assert curves["examples"] == 300 and set(curves["units"]) == set(CORRUPTIONS)
    assert json.loads(json.dumps(curves)) == curves


def test_corruptions_are_applied(halves):
    x, y = halves
    tta = robustness_curves(halves_model, x, y)["tta"]
    # the mirror image swaps the halves: averaging it with the original leaves no signal
    assert tta["flip"] < 0.7 and tta["gain"] < -0.2
    corner = robustness_curves(lambda b: brightness_model(b[..., :1, :1]), *_bright_and_dark())
    acc = {name: {p["level"]: p["accuracy"] for p in corner[name]} for name in CORRUPTIONS}
    assert acc["brightness"][1.0] == 1.0 and acc["brightness"][0.5] == 0.5  # bright turns dark
    assert acc["noise"][0.05] == 1.0 and acc["noise"][0.3] < 0.95  # a dark pixel + 0.3 sigma > 0.5
    assert acc["rotation"][45.0] == 0.5  # the corner is filled black
    assert set(acc["blur"].values()) == {1.0}  # blurring a flat image changes nothing


def _bright_and_dark():
    x = torch.cat([torch.full((20, 1, 8, 8), 60), torch.full((20, 1, 8, 8), 200)]).to(torch.uint8)
    return x, torch.tensor([0] * 20 + [1] * 20)


def test_flip_tta_on_a_flip_invariant_model_gains_nothing():
    x, y = _bright_and_dark()
    tta = robustness_curves(brightness_model, x, y)["tta"]
    assert tta == {"plain": 1.0, "flip": 1.0, "gain": 0.0}


def test_same_seed_same_curves_and_the_model_sees_floats_in_0_1(halves):
    x, y = halves
    first = robustness_curves(halves_model, x, y, seed=3, max_examples=100)
    assert first == robustness_curves(halves_model, x, y, seed=3, max_examples=100)
    assert first["examples"] == 100
    seen = []
    robustness_curves(lambda b: seen.append(b.clone()) or halves_model(b), x, y, seed=3, max_examples=100)
    assert all(b.dtype == torch.float32 and 0 <= b.min() and b.max() <= 1 for b in seen)


def test_subsample_keeps_class_proportions():
    y = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    kept = y[_subsample(y, 100, seed=0)]
    assert torch.bincount(kept).tolist() == [90, 9, 1]
    assert torch.equal(_subsample(y, 100, seed=0), _subsample(y, 100, seed=0))
    assert len(_subsample(torch.tensor([0] * 50 + [1]), 10, seed=0)) == 10  # a class of one


def test_accuracy_falls_as_noise_grows_on_a_noise_sensitive_model():
    """One pixel at 0.4 (class 0) or 0.6 (class 1), read against 0.5: noise of std s flips a label
    with probability Phi(-0.1 / s), so the accuracy at s is about Phi(0.1 / s)."""
    n = 1000
    y = torch.arange(n) % 2
    x = torch.where(y == 1, 153, 102).to(torch.uint8).reshape(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()

    def pixel_model(b):
        p = b[:, 0, 0, 0]
        return torch.stack([0.5 - p, p - 0.5], 1)

    curves = robustness_curves(pixel_model, x, y)
    accuracy = [p["accuracy"] for p in curves["noise"]]
    assert [p["level"] for p in curves["noise"]] == list(NOISE_SIGMAS)
    assert accuracy[0] == curves["tta"]["plain"] == 1.0
    assert all(a > b for a, b in zip(accuracy, accuracy[1:])), accuracy
    for sigma, got in zip(NOISE_SIGMAS[1:], accuracy[1:]):
        expected = 0.5 * (1 + math.erf(0.1 / sigma / math.sqrt(2)))
        assert abs(got - expected) < 4 * math.sqrt(expected * (1 - expected) / n) + 1e-3, (sigma, got)


def test_blur_works_on_tiny_images():
    """A lone bright pixel on 4x4 images: blur with the kernel cut to the image spreads it below 0.5
    from sigma 1 on (centre weight ~0.4 per axis), so only the dark images stay right."""
    x = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    x[5:, 0, 1, 1] = 255
    y = torch.tensor([0] * 5 + [1] * 5)

    def centre_model(b):
        p = b[:, 0, 1, 1]
        return torch.stack([0.5 - p, p - 0.5], 1)

    blur = {p["level"]: p["accuracy"] for p in robustness_curves(centre_model, x, y)["blur"]}
    assert blur == {0.0: 1.0, 0.5: 1.0, 1.0: 0.5, 1.5: 0.5, 2.0: 0.5}


@pytest.mark.parametrize("x, y, match", [
    (torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long), "uint8"),
    (torch.zeros(4, 64, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), "uint8"),
    (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(3, dtype=torch.long), "one label"),
    (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4), "integers"),
])
def test_bad_input_raises_one_clear_error(x, y, match):
    with pytest.raises(NeuroclassError, match=match):
        robustness_curves(brightness_model, x, y)


def test_a_model_returning_the_wrong_shape_is_named():
    x, y = _bright_and_dark()
    with pytest.raises(NeuroclassError, match="predict_logits_fn"):
        robustness_curves(lambda b: b.mean((1, 2, 3)), x, y)
