import pytest
import torch
from torch import nn

from neuroclass.evaluation.tta import MIN_GAIN, choose_tta, inference_policy, judge_flip, tta_logits

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
    assert choice["val_accuracy_flip"] > choice["val_accuracy_plain"]
    assert choice["policy"] == "flip"


def test_flip_is_rejected_where_mirroring_changes_the_label():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (200,), generator=g)
    x = torch.zeros(200, 1, 8, 8, dtype=torch.uint8)
    x[y == 1, :, :, :4] = 200  # class 1: bright left half; class 0: bright right half
    x[y == 0, :, :, 4:] = 200
    choice = choose_tta(HalfReader(contrast=True), x, y, CPU, channels_last=False)
    assert choice["val_accuracy_plain"] == 1.0 and choice["val_accuracy_flip"] < 1.0
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
    from neuroclass.run import train_run
    from neuroclass.serving.predictor import Predictor

    result = train_run(quick_config(tmp_path, model="cnn", **{"train.tta": "flip",
                                                               "model.options.channels": "[8]",
                                                               "model.options.hidden": 16}))
    meta = json.loads((result.path / "model.json").read_text())
    assert meta["tta"] == "flip"
    predictor = Predictor.from_run(result.path)
    x = torch.randint(0, 256, (6, *meta["input_shape"]), dtype=torch.uint8)
    model = predictor.model.eval()
    with torch.inference_mode():
        expected = (model(x) + model(x.flip(-1))) / 2
    assert torch.allclose(predictor.predict_logits_tensor(x), expected, atol=1e-5)
    expected_proba = torch.softmax(expected / meta["temperature"], dim=1).numpy()
    assert abs(predictor.predict_proba_tensor(x) - expected_proba).max() < 1e-5


def test_auto_policy_is_recorded_for_a_default_run(trained_run):
    import json

    meta = json.loads((trained_run.path / "model.json").read_text())
    assert meta["tta"] in ("none", "flip")  # chosen on the validation split, never missing


def test_a_model_trained_with_flips_keeps_the_flip_without_the_margin():
    # both halves carry the class far above the noise: every image is right either way, so the
    # flip gains no accuracy (below MIN_GAIN) but averages out noise (lower log loss)
    x, y = symmetric_noisy(400, seed=2)
    x = (x.float() - 128 + 60 * (2 * y.float() - 1).view(-1, 1, 1, 1) + 128).clamp(0, 255).to(torch.uint8)
    model = nn.Sequential(HalfReader(), Scale(0.05))  # margins of a few logits: a finite log loss
    untrained = inference_policy(model, x, y, CPU, channels_last=False)
    trained = inference_policy(model, x, y, CPU, channels_last=False, flip_trained=True)
    choice = trained["tta_choice"]
    assert choice["val_accuracy_plain"] == choice["val_accuracy_flip"] == 1.0
    assert choice["val_log_loss_flip"] < choice["val_log_loss_plain"]
    assert untrained["tta"] == "none" and trained["tta"] == "flip"
    assert untrained["tta_choice"]["min_gain"] == MIN_GAIN and choice["min_gain"] == 0.0


def test_the_judged_logits_are_those_of_the_chosen_policy():
    x, y = symmetric_noisy()
    choice, logits = judge_flip(HalfReader(), x, y, CPU, channels_last=False)
    assert choice["policy"] == "flip"
    assert torch.allclose(logits, tta_logits(HalfReader(), x, CPU, "flip", channels_last=False))
    choice, logits = judge_flip(HalfReader(), x, y, CPU, channels_last=False, min_gain=1.0)
    assert choice["policy"] == "none"
    assert torch.allclose(logits, tta_logits(HalfReader(), x, CPU, "none", channels_last=False))
