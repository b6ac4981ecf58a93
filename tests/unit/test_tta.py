import pytest
import torch
from torch import nn

from neuroclass.data.augment import random_shift
from neuroclass.inference.policy import InferencePolicy, choose_policy
from neuroclass.inference.views import MIN_GAIN, judge, shifted, tta_logits, views


def choose_tta(*args, **kwargs) -> dict:
    """The policy ``judge`` chooses, with what it was judged on."""
    return judge(*args, **kwargs)[0]

CPU = torch.device("cpu")


class HalfReader(nn.Module):
    """Logits from the left half of the image only: (left mean - 128) for class 1, minus for 0;
    with ``contrast`` the right half's mean is subtracted (an orientation-dependent model)."""

    def __init__(self, contrast: bool = False) -> None:
        super().__init__()
        self.contrast = contrast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        w = x.shape[-1] // 2
        left = x[..., :w].mean(dim=(1, 2, 3))
        m = left - (x[..., w:].mean(dim=(1, 2, 3)) if self.contrast else 128.0)
        return torch.stack([-m, m], dim=1)


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def symmetric_noisy(n: int = 400, seed: int = 0):
    """Both halves carry the class (bright or dark), under heavy per-pixel noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 128 + 6 * (2 * y.float() - 1).view(-1, 1, 1, 1) + 40 * torch.randn(n, 1, 8, 8, generator=g)
    return x.clamp(0, 255).to(torch.uint8), y


def test_flip_averages_the_logits_of_the_mirror_image():
    x, _ = symmetric_noisy(16)
    model = HalfReader()
    plain = tta_logits(model, x, CPU, "none", channels_last=False)
    flip = tta_logits(model, x, CPU, "flip", channels_last=False)
    expected = (model(x) + model(x.flip(-1))) / 2
    assert torch.allclose(plain, model(x))
    assert torch.allclose(flip, expected)


def test_flip_is_kept_when_it_helps_on_validation():
    x, y = symmetric_noisy()
    choice = choose_tta(HalfReader(), x, y, CPU, channels_last=False)
    assert choice["val_accuracy"]["flip"] > choice["val_accuracy"]["none"]
    assert choice["policy"] == "flip"


def test_flip_is_rejected_where_mirroring_changes_the_label():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (200,), generator=g)
    x = torch.zeros(200, 1, 8, 8, dtype=torch.uint8)
    x[y == 1, :, :, :4] = 200  # class 1: bright left half; class 0: bright right half
    x[y == 0, :, :, 4:] = 200
    choice = choose_tta(HalfReader(contrast=True), x, y, CPU, channels_last=False)
    assert choice["val_accuracy"]["none"] == 1.0 and choice["val_accuracy"]["flip"] < 1.0
    assert choice["policy"] == "none"


def test_tables_and_missing_validation_get_no_test_time_augmentation():
    rows = torch.randn(10, 4)
    assert choose_tta(nn.Linear(4, 2), rows, torch.zeros(10, dtype=torch.int64), CPU)["policy"] == "none"
    empty = torch.zeros(0, 1, 8, 8, dtype=torch.uint8)
    assert choose_tta(HalfReader(), empty, torch.zeros(0, dtype=torch.int64), CPU)["policy"] == "none"


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        tta_logits(HalfReader(), torch.zeros(2, 1, 8, 8), CPU, "rotate")


def test_a_run_saves_its_policy_and_predict_uses_it(tmp_path):
    import json

    from conftest import quick_config
    from neuroclass.pipeline import train as train_run
    from neuroclass.inference import Predictor

    result = train_run(quick_config(tmp_path, model="cnn", **{"train.tta": "flip",
                                                               "model.options.channels": "[8]",
                                                               "model.options.hidden": 16}), report=False)
    meta = json.loads((result.path / "model.json").read_text())
    assert meta["inference"]["tta"] == "flip"
    predictor = Predictor.from_run(result.path)
    x = torch.randint(0, 256, (6, *meta["input_shape"]), dtype=torch.uint8)
    model = predictor.model.eval()
    with torch.inference_mode():
        expected = (model(x) + model(x.flip(-1))) / 2
    assert torch.allclose(predictor.predict_logits_tensor(x), expected, atol=1e-5)
    expected_proba = torch.softmax(expected / meta["inference"]["temperature"], dim=1).numpy()
    assert abs(predictor.predict_proba_tensor(x) - expected_proba).max() < 1e-5


def test_auto_policy_is_recorded_for_a_default_run(trained_run):
    import json

    meta = json.loads((trained_run.path / "model.json").read_text())
    policy = InferencePolicy.from_dict(meta["inference"])  # chosen on validation, never missing
    assert policy.tta in ("none", "flip", "shift", "flip+shift") and policy.tta_shift >= 1


def test_a_model_trained_with_flips_keeps_the_flip_without_the_margin():
    # both halves carry the class far above the noise: every image is right either way, so the
    # flip gains no accuracy (below MIN_GAIN) but averages out noise (lower log loss)
    x, y = symmetric_noisy(400, seed=2)
    x = (x.float() - 128 + 60 * (2 * y.float() - 1).view(-1, 1, 1, 1) + 128).clamp(0, 255).to(torch.uint8)
    model = nn.Sequential(HalfReader(), Scale(0.05))  # margins of a few logits: a finite log loss
    untrained, untrained_record, _ = choose_policy(model, x, y, CPU, channels_last=False)
    trained, record, _ = choose_policy(model, x, y, CPU, channels_last=False, flip_trained=True)
    choice = record["tta"]
    assert choice["val_accuracy"]["none"] == choice["val_accuracy"]["flip"] == 1.0
    assert choice["val_log_loss"]["flip"] < choice["val_log_loss"]["none"]
    assert untrained.tta == "none" and trained.tta == "flip"
    assert untrained_record["tta"]["min_gain"]["flip"] == MIN_GAIN and choice["min_gain"]["flip"] == 0.0


def test_the_judged_logits_are_those_of_the_chosen_policy():
    x, y = symmetric_noisy()
    choice, logits = judge(HalfReader(), x, y, CPU, channels_last=False)
    assert choice["policy"] == "flip"
    assert torch.allclose(logits, tta_logits(HalfReader(), x, CPU, "flip", channels_last=False))
    choice, logits = judge(HalfReader(), x, y, CPU, channels_last=False, min_gain=1.0)
    assert choice["policy"] == "none"
    assert torch.allclose(logits, tta_logits(HalfReader(), x, CPU, "none", channels_last=False))


class WindowReader(nn.Module):
    """Logits from the mean of a 4x4 window left of the centre (of a 12x12 image): a small window,
    so averaging it over shifted and mirrored views reads more of a noisy image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[..., 4:8, 2:6].float().mean(dim=(1, 2, 3)) - 128.0
        return torch.stack([-m, m], dim=1) * 0.05


def test_shifted_views_match_the_training_shift_and_keep_the_dtype():
    x = torch.randint(1, 256, (64, 1, 6, 5), dtype=torch.uint8)
    moved = shifted(x, 1, -2)
    assert moved.dtype == torch.uint8
    assert torch.equal(moved[..., 1:, :3], x[..., :5, 2:])
    assert (moved[..., 0, :] == 0).all() and (moved[..., -2:] == 0).all()
    # every randomly shifted training image is one of the nine views shifted() gives
    out = random_shift(x.float(), 1, torch.Generator().manual_seed(0))
    candidates = [shifted(x, dy, dx).float() for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for sample, original_views in zip(out, zip(*candidates)):
        assert any(torch.equal(sample, v) for v in original_views)
    assert torch.equal(shifted(x, 6, 0), torch.zeros_like(x))


def test_view_sets_and_their_average():
    assert views("none") == [(False, 0, 0)]
    both = views("flip+shift", 2)
    assert len(set(both)) == 10 and {abs(dy) + abs(dx) for _, dy, dx in both} == {0, 2}
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        views("shift+rotate")
    x, _ = symmetric_noisy(16)
    model = WindowReader()
    expected = torch.stack([model(shifted(x, dy, dx)) for dy, dx in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))]).mean(0)
    assert torch.allclose(tta_logits(model, x, CPU, "shift", channels_last=False), expected, atol=1e-6)
    rows, linear = torch.randn(5, 4), nn.Linear(4, 2)  # tables: one pass whatever the policy
    with torch.no_grad():
        assert torch.allclose(tta_logits(linear, rows, CPU, "flip+shift"), linear(rows))


def test_shifted_views_are_judged_only_for_a_model_trained_with_shifts():
    x, y = symmetric_noisy(600, seed=3)
    x = torch.nn.functional.interpolate(x.float(), size=(12, 12)).to(torch.uint8)
    without = choose_tta(WindowReader(), x, y, CPU, channels_last=False, flip_trained=True)
    assert without["policy"] == "flip" and "shift" not in without["val_accuracy"]
    trained = choose_tta(WindowReader(), x, y, CPU, channels_last=False, flip_trained=True, shift=1)
    acc = trained["val_accuracy"]
    assert acc["flip+shift"] > acc["flip"] > acc["none"]
    assert trained["policy"] == "flip+shift" and trained["shift"] == 1
    policy, record, _ = choose_policy(WindowReader(), x, y, CPU, channels_last=False, flip_trained=True, shift=2)
    assert policy.tta_shift == 2 and record["tta"]["shift"] == 2


def test_a_run_trained_with_shifts_predicts_with_its_saved_shift(tmp_path):
    import json

    from conftest import quick_config
    from neuroclass.errors import NeuroclassError
    from neuroclass.pipeline import train as train_run
    from neuroclass.inference import Predictor

    result = train_run(quick_config(tmp_path, model="cnn", **{"train.tta": "flip+shift", "augment.enabled": True,
                                                               "augment.shift": 2, "augment.rotation": 0,
                                                               "model.options.channels": "[8]",
                                                               "model.options.hidden": 16}), report=False)
    meta = json.loads((result.path / "model.json").read_text())
    assert meta["inference"]["tta"] == "flip+shift" and meta["inference"]["tta_shift"] == 2
    predictor = Predictor.from_run(result.path)
    x = torch.randint(0, 256, (6, *meta["input_shape"]), dtype=torch.uint8)
    model = predictor.model.eval()
    with torch.inference_mode():
        expected = torch.stack([model(shifted(v, dy, dx)) for v in (x, x.flip(-1))
                                for dy, dx in ((0, 0), (2, 0), (-2, 0), (0, 2), (0, -2))]).mean(0)
    assert torch.allclose(predictor.predict_logits_tensor(x), expected, atol=1e-5)
    with pytest.raises(NeuroclassError, match="tta_shift"):
        InferencePolicy.from_dict({**meta["inference"], "tta_shift": 0})
