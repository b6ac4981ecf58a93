import pytest
import torch
from torch import nn

from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.blocks import make_blocks
from neuroclass.models import create
from neuroclass.training.ema import WeightAverage, ema_decay
from neuroclass.inference import predict_logits
from neuroclass.training.trainer import Trainer


def filled(module: nn.Module, value: float) -> nn.Module:
    with torch.no_grad():
        for tensor in list(module.parameters()) + [module.running_mean]:
            tensor.fill_(value)
    return module


def test_decay_ramps_up_then_holds():
    decays = [ema_decay(0.99, n) for n in range(2000)]
    assert decays[0] == pytest.approx(0.1)
    assert all(a <= b for a, b in zip(decays, decays[1:]))
    assert decays[-1] == 0.99 and max(decays) == 0.99


def test_average_blends_parameters_and_buffers():
    live = filled(nn.BatchNorm1d(3), 0.0)
    average = WeightAverage(live, decay=0.5)
    average.update(filled(live, 0.0))  # the first update copies
    average.update(filled(live, 1.0))  # then: decay(1) = 2/11 of the old, 9/11 of the new
    average.update(filled(live, 2.0))  # decay(2) = 3/12, capped by 0.5
    expected = 0.25 * (9 / 11) + 0.75 * 2.0
    for name in ("weight", "bias", "running_mean"):
        tensor = average.module.state_dict()[name]
        assert torch.allclose(tensor, torch.full_like(tensor, expected)), name
    assert torch.equal(average.module.running_var, torch.ones(3))  # ones blended with ones
    assert not any(p.requires_grad for p in average.module.parameters())
    assert all(p.requires_grad for p in live.parameters())  # the live model still trains


def test_copy_to_puts_the_average_into_the_model():
    live = filled(nn.BatchNorm1d(3), 1.0)
    average = WeightAverage(live, decay=0.9)
    average.update(live)
    average.copy_to(filled(live, 5.0))
    assert torch.equal(live.weight, torch.ones(3)) and torch.equal(live.running_mean, torch.ones(3))


def fit_blocks(ema: float):
    train, val = make_blocks(n=256, seed=0), make_blocks(n=128, seed=1)
    torch.manual_seed(0)
    model = create(ModelConfig(name="mlp", options={"hidden": [32]}), train.input_shape, len(train.classes),
                   torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    trainer = Trainer(TrainConfig(epochs=3, batch_size=32, quiet=True, ema=ema), OptimConfig(lr=0.02),
                      AugmentConfig(), torch.device("cpu"))
    state = trainer.fit(model, train, val)
    return model, trainer, state, val


@pytest.fixture(scope="module")
def fit_with_ema():
    """One fit with ema=0.9, which the tests below only read."""
    return fit_blocks(ema=0.9)


def test_training_returns_the_averaged_weights_that_validation_saw(fit_with_ema):
    model, trainer, state, val = fit_with_ema
    assert trainer.average.updates == state.step
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, trainer.average.module.state_dict()[name]), name
    acc = float((predict_logits(model, val.x, torch.device("cpu")).argmax(1) == val.y).float().mean())
    assert acc == state.history[-1]["val_accuracy"] and acc > 0.9


def test_ema_zero_returns_the_last_step_weights(fit_with_ema):
    averaged, _, _, _ = fit_with_ema
    last, trainer, _, _ = fit_blocks(ema=0.0)
    assert trainer.average is None
    weights = [name for name, p in last.named_parameters()]
    assert any(not torch.equal(last.state_dict()[n], averaged.state_dict()[n]) for n in weights)
