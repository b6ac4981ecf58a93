"""Training the glass-box network: both presets learn scikit-learn's digits, the same seed gives the
same weights, a fake clock's deadline stops training between batches, and float32 stays float32."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import FitStop, Network, fit, glassbox_options


@pytest.fixture(scope="module")
def digits():
    """(x_train, y_train, x_test, y_test): 1,300 / 497 rows of 64 pixels in [0, 1], float32."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    x, y = (x[order] / 16).astype(np.float32), y[order]
    return x[:1300], y[:1300], x[1300:], y[1300:]


class FakeClock:
    """Reads 0, 1, 2, ...: one second more at every call."""

    def __init__(self) -> None:
        self.now = -1.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_classic_preset_learns_digits(digits):
    x, y, x_test, y_test = digits
    net = Network(glassbox_options({"preset": "classic"}), 64, 10, seed=0)
    assert (net.options.batch_size, net.options.output, net.options.loss) == (1, "sigmoid", "mse")
    history = fit(net, x, y, x_test, y_test, epochs=5, threads=1)
    assert history.stop is FitStop.EPOCHS and [r.examples for r in history.epochs] == [1300] * 5
    assert (net.predict(x_test) == y_test).mean() > 0.90
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss


def test_modern_preset_learns_digits(digits):
    x, y, x_test, y_test = digits
    net = Network(glassbox_options({"preset": "modern"}), 64, 10, seed=0)
    history = fit(net, x, y, x_test, y_test, epochs=20, threads=1)
    assert (net.predict(x_test) == y_test).mean() > 0.90
    assert history.epochs[-1].val_accuracy == pytest.approx((net.predict(x_test) == y_test).mean())
    assert history.epochs[0].train_accuracy < history.epochs[-1].train_accuracy and history.epochs[-1].train_accuracy > 0.9


@pytest.mark.parametrize("options", [
    {"preset": "modern", "dropout": 0.3, "batch_norm": True, "l1": 1e-4, "l2": 1e-3, "batch_size": 64},
    {"preset": "classic", "optimizer": "momentum", "hidden": [32, 16], "activation": "tanh", "batch_size": 16},
    {"optimizer": "rmsprop", "init": "xavier", "loss": "mse", "batch_size": 32},
])
def test_same_seed_gives_bit_identical_weights(digits, options):
    x, y = digits[0][:400], digits[1][:400]

    def trained(seed):
        net = Network(glassbox_options(options), 64, 10, seed=seed)
        fit(net, x.astype(np.float64), y, epochs=2, seed=seed, threads=1)  # float64 in: converted once
        return net.state_dict()

    first, again, other = trained(0), trained(0), trained(1)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not all(np.array_equal(first[name], other[name]) for name in first)
    assert {a.dtype for a in first.values()} == {np.dtype(np.float32)}


def test_everything_stays_float32_after_training(digits):
    x, y = digits[0][:256], digits[1][:256]
    net = Network(glassbox_options({"dropout": 0.2, "batch_norm": True, "l1": 1e-4, "l2": 1e-4, "batch_size": 32}),
                  64, 10, seed=0)
    fit(net, x, y, epochs=1, threads=1)
    arrays = [p.value for p in net.params] + [p.grad for p in net.params]
    arrays += list(net.optimizer.m.values()) + list(net.optimizer.v.values())
    arrays += [net.predict_proba(x), net.logits(x, train=True)]
    arrays += [a for layer in net.layers for a in vars(layer).values() if isinstance(a, np.ndarray)]
    assert {a.dtype for a in arrays} == {np.dtype(np.float32)}


def test_deadline_of_a_fake_clock_stops_training_between_batches(digits):
    x, y = digits[0], digits[1]
    net = Network(glassbox_options({"batch_size": 100}), 64, 10, seed=0)
    history = fit(net, x, y, epochs=50, deadline=5.0, clock=FakeClock(), threads=1)
    assert history.stop is FitStop.DEADLINE and len(history.epochs) == 1
    examples = history.epochs[0].examples
    assert 0 < examples < len(x) and examples % 100 == 0


def test_deadline_already_past_trains_nothing(digits):
    net = Network(glassbox_options({}), 64, 10, seed=0)
    before = net.state_dict()
    history = fit(net, digits[0], digits[1], epochs=3, deadline=0.0, clock=FakeClock(), threads=1)
    assert history.stop is FitStop.DEADLINE and history.epochs == []
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())


def test_on_epoch_sees_each_record_and_can_stop(digits):
    seen = []
    net = Network(glassbox_options({}), 64, 10, seed=0)
    history = fit(net, digits[0], digits[1], digits[2], digits[3], epochs=5, clock=FakeClock(),
                  on_epoch=lambda record: seen.append(record) or len(seen) == 2, threads=1)
    assert history.stop is FitStop.CALLBACK and seen == history.epochs and len(seen) == 2
    assert all(0 <= r.val_accuracy <= 1 and r.val_loss > 0 for r in seen)
    # without a deadline the clock is read once before and once after each epoch's training
    # (0 and 1, then 2 and 3): one second each, validation left out
    assert [r.seconds for r in seen] == [1.0, 1.0]


def test_fit_rejects_bad_arguments(digits):
    net = Network(glassbox_options({}), 64, 10, seed=0)
    with pytest.raises(NeuroclassError, match="x_val and y_val together"):
        fit(net, digits[0], digits[1], x_val=digits[2])
    with pytest.raises(NeuroclassError, match="batch_size must be >= 1"):
        fit(net, digits[0], digits[1], batch_size=0)
