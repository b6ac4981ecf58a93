"""The glass-box network as a learner and a program see it: one example's numbers layer by layer,
its gradients and the update they would make, weights saved and loaded, the options and their
rules, and one clear error line for bad input."""
import dataclasses

import numpy as np
import pytest
import safetensors.numpy

from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import PRESETS, GlassboxOptions, Network, fit, glassbox_options
from neuroclass.rules import build_dataclass

RNG = np.random.default_rng(0)
X = RNG.random((64, 12), dtype=np.float32)
Y = (X[:, 0] * 3).astype(np.int64)  # three classes


def trained(options: dict, epochs: int = 2) -> Network:
    net = Network(glassbox_options(options), 12, 3, seed=0)
    fit(net, X, Y, epochs=epochs, threads=1)
    return net


# ----------------------------------------------------------------------------- one example

def test_trace_gives_each_layers_sums_biases_and_activations():
    net = trained({"hidden": [16, 8]})
    layers = net.trace(X[5])
    assert [(t.name, t.activation) for t in layers] == [("dense0", "relu"), ("dense1", "relu"),
                                                        ("dense2", "softmax")]
    for t, dense in zip(layers, [net.layers[0], net.layers[2], net.layers[4]]):
        np.testing.assert_allclose(t.weighted_sum, t.inputs @ dense.weight, rtol=1e-6)
        np.testing.assert_allclose(t.z, t.weighted_sum + t.bias, rtol=1e-5, atol=1e-6)
        assert t.normalized is None and t.z.dtype == t.a.dtype == np.float32
    np.testing.assert_array_equal(layers[0].inputs, X[5])
    np.testing.assert_allclose(layers[0].a, np.maximum(layers[0].z, 0))
    np.testing.assert_array_equal(layers[1].inputs, layers[0].a)
    np.testing.assert_allclose(layers[-1].a, net.predict_proba(X[5:6])[0], rtol=1e-6)
    top = layers[0].most_active(3)
    assert list(top) == list(np.argsort(-layers[0].a)[:3]) and layers[0].a[top[0]] == layers[0].a.max()


def test_trace_with_batch_norm_shows_the_normalised_sums():
    net = trained({"hidden": [8], "batch_norm": True, "activation": "tanh", "batch_size": 16})
    first = net.trace(X[0])[0]
    bn = net.layers[1]
    expected = (first.z - bn.running_mean) / np.sqrt(bn.running_var + 1e-5) * bn.weight + bn.bias
    np.testing.assert_allclose(first.normalized, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first.a, np.tanh(first.normalized), rtol=1e-6)


def test_gradients_of_one_example_leave_the_network_as_it_was():
    net = trained({"hidden": [8]})  # adam: its first step is about lr * sign(g)
    before, t_before = net.state_dict(), net.optimizer.t
    m_before = {k: v.copy() for k, v in net.optimizer.m.items()}
    step = net.gradients(X[3], int(Y[3]))
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before) and net.optimizer.t == t_before
    assert all(np.array_equal(m_before[k], net.optimizer.m[k]) for k in m_before)
    onehot = np.eye(3, dtype=np.float32)[Y[3]]
    np.testing.assert_allclose(step.output_delta, step.probabilities - onehot, rtol=1e-5, atol=1e-7)
    assert step.loss == pytest.approx(-np.log(step.probabilities[Y[3]]), rel=1e-5)
    # the last layer's weight gradient is the outer product of its inputs and the error signal
    hidden = net.trace(X[3])[-1].inputs
    np.testing.assert_allclose(step.gradients["dense1.weight"], np.outer(hidden, step.output_delta), atol=1e-6)
    assert set(step.updates) == set(step.gradients) and step.updates["dense1.weight"].dtype == np.float32
    assert np.any(step.updates["dense1.weight"] != 0)


def test_sgd_update_is_minus_the_learning_rate_times_the_gradient():
    net = Network(glassbox_options({"preset": "classic", "hidden": [8]}), 12, 3, seed=0)
    step = net.gradients(X[0], 2)
    for name, grad in step.gradients.items():
        np.testing.assert_allclose(step.updates[name], -0.1 * grad, rtol=1e-5, atol=1e-7, err_msg=name)
    a = step.outputs  # sigmoid outputs, squared error against 0.01 / 0.99 targets
    target = np.array([0.01, 0.01, 0.99], np.float32)
    np.testing.assert_allclose(step.output_delta, (a - target) * a * (1 - a), rtol=1e-5, atol=1e-7)
    assert step.probabilities.sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------- weights

def test_state_dict_names_are_stable():
    net = Network(glassbox_options({"hidden": [8, 4], "batch_norm": True}), 12, 3)
    assert sorted(net.state_dict()) == sorted(
        [f"dense{i}.{p}" for i in range(3) for p in ("weight", "bias")]
        + [f"bn{i}.{p}" for i in range(2) for p in ("weight", "bias", "running_mean", "running_var")])
    assert net.state_dict()["dense0.weight"].shape == (12, 8)


def test_save_and_load_round_trip(tmp_path):
    net = trained({"hidden": [8], "batch_norm": True, "dropout": 0.2, "batch_size": 16})
    path = net.save(tmp_path / "net.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["net.safetensors"]  # no temporary file left
    loaded = Network.load(path)
    assert loaded.options == net.options and (loaded.n_inputs, loaded.n_classes) == (12, 3)
    theirs = loaded.state_dict()
    assert all(np.array_equal(v, theirs[k]) and theirs[k].dtype == np.float32 for k, v in net.state_dict().items())
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert safetensors.numpy.load_file(path).keys() == net.state_dict().keys()


def test_load_refuses_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(NeuroclassError, match="does not exist"):
        Network.load(tmp_path / "none.safetensors")
    foreign = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, foreign)
    with pytest.raises(NeuroclassError, match="not a glass-box network file"):
        Network.load(foreign)
    net = Network(glassbox_options({"hidden": [8]}), 12, 3)
    with pytest.raises(NeuroclassError, match="missing"):
        net.load_state_dict({"dense0.weight": np.zeros((12, 8), np.float32)})


def test_load_of_a_run_folders_weights_names_load_run(tmp_path):
    """A run's model.safetensors holds the weights without the options (model.json has them)."""
    net = Network(glassbox_options({"hidden": [8]}), 12, 3)
    run = tmp_path / "digits-glassbox-1"
    run.mkdir()
    safetensors.numpy.save_file(net.state_dict(), run / "model.safetensors")
    (run / "model.json").write_text('{"family": "glassbox"}')
    for path in (run / "model.safetensors", run):
        with pytest.raises(NeuroclassError, match=r"run folder's.*neuroclass.load_run\('.*digits-glassbox-1'\)") as info:
            Network.load(path)
        assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- probabilities

def far_apart(output: str) -> Network:
    """A network whose output layer's weighted sums are 0, -900 and -1000 for every input: the
    second and third classes' probabilities underflow float32 (and float64) to 0."""
    loss = "cross_entropy" if output == "softmax" else "mse"
    net = Network(glassbox_options({"hidden": [], "output": output, "loss": loss}), 12, 3)
    dense = net.layers[0]
    dense.weight[...] = 0
    dense.bias[...] = [0.0, -900.0, -1000.0]
    return net


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_log_proba_keeps_classes_far_below_the_top_finite_and_apart(output):
    net = far_apart(output)
    log_p = net.log_proba(X[:4])
    assert log_p.dtype == np.float32 and np.isfinite(log_p).all()
    # softmax: z - logsumexp(z); sigmoid: log s = -softplus(-z), less the log of the sum of the s
    # (s = 1/2, e^-900, e^-1000: the sum is 1/2 to float precision)
    top = 0.0 if output == "softmax" else np.log(2)
    np.testing.assert_allclose(log_p[0], [0.0, -900.0 + top, -1000.0 + top], rtol=1e-6, atol=1e-6)
    assert log_p[0, 1] - log_p[0, 2] == pytest.approx(100.0)
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(net.predict_proba(X[:4]), np.exp(log_p))


def test_log_proba_of_sigmoid_outputs_is_the_log_of_their_share():
    net = trained({"hidden": [8], "output": "sigmoid", "loss": "mse", "targets": [0.01, 0.99]})
    s = 1 / (1 + np.exp(-net.logits(X).astype(np.float64)))
    np.testing.assert_allclose(net.log_proba(X), np.log(s / s.sum(axis=1, keepdims=True)), rtol=1e-5, atol=1e-6)


def test_the_run_module_gives_the_networks_log_probabilities():
    import torch

    from neuroclass.runs.glassbox_module import GlassboxModule

    net = far_apart("softmax")
    out = GlassboxModule(net)(torch.from_numpy(X[:2]))
    assert torch.isfinite(out).all() and out[0, 1] - out[0, 2] == pytest.approx(100.0)
    # a calibration temperature divides them: the two low classes stay apart, not tied at a floor
    calibrated = torch.softmax(out / 0.5, dim=1)
    assert torch.isfinite(torch.log_softmax(out / 0.5, dim=1)).all() and calibrated.sum(dim=1).allclose(
        torch.ones(2))
    np.testing.assert_array_equal(out.numpy(), net.log_proba(X[:2]))


# ----------------------------------------------------------------------------- options

def test_presets_are_only_option_values():
    assert set(PRESETS) == {"classic", "modern"}
    fields = {f.name for f in dataclasses.fields(GlassboxOptions)}
    assert all(set(values) <= fields for values in PRESETS.values())
    classic = glassbox_options({"preset": "classic"})
    assert (classic.hidden, classic.activation, classic.output, classic.loss, classic.targets, classic.optimizer,
            classic.lr, classic.batch_size) == ([200], "sigmoid", "sigmoid", "mse", [0.01, 0.99], "sgd", 0.1, 1)
    assert glassbox_options({}) == GlassboxOptions()  # the defaults are the modern preset


@pytest.mark.parametrize("values, message", [
    ({"activation": "relux"}, "Did you mean 'relu'"),
    ({"optimiser": "adam"}, "unknown config key 'model.options.optimiser'. Did you mean 'model.options.optimizer'"),
    ({"preset": "clasic"}, "Did you mean 'classic'"),
    ({"lr": -1}, "The 'model.options.lr' parameter must be > 0. Got -1.0 instead."),
    ({"hidden": [0]}, "model.options.hidden"),
    ({"dropout": 1.0}, "model.options.dropout"),
    ({"output": "sigmoid"}, "loss=cross_entropy needs output=softmax"),
    ({"loss": "mse", "targets": [0.9, 0.1]}, "low < high"),
    ({"batch_norm": True, "batch_size": 1}, "batch_norm needs batch_size >= 2"),
])
def test_bad_options_fail_with_one_line_naming_the_field(values, message):
    with pytest.raises(NeuroclassError, match=message.replace(".", r"\.").replace("(", r"\(")) as info:
        glassbox_options(values)
    assert "\n" not in str(info.value)


def test_every_field_rule_rejects_a_value_outside_it():
    """Each field with a rule refuses a value that breaks it: the rules are really attached."""
    bad = {"preset": "x", "hidden": [-1], "activation": "x", "output": "x", "loss": "x", "targets": [2.0],
           "optimizer": "x", "lr": 0.0, "momentum": 1.0, "l1": -1.0, "l2": -1.0, "dropout": -0.1, "init": "x",
           "batch_size": 0}
    ruled = {f.name for f in dataclasses.fields(GlassboxOptions) if "rule" in f.metadata}
    assert ruled == set(bad)
    for name, value in bad.items():
        with pytest.raises(NeuroclassError, match=f"model.options.{name}"):
            build_dataclass(GlassboxOptions, {name: value}, "model.options.")


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("x, y, message", [
    (np.zeros((4, 11), np.float32), np.zeros(4, np.int64), "x_train: rows of 11 values, but the network takes 12"),
    (np.zeros((4, 3, 4), np.float32), np.zeros(4, np.int64), "x_train: expected a 2-D array"),
    (np.where(np.eye(4, 12) > 0, np.nan, 0).astype(np.float32), np.zeros(4, np.int64),
     "x_train: 4 values are NaN or infinite .the first in row 0."),
    (np.zeros((4, 12), np.float32), np.array([0, 1, 3, 0]), "y_train: labels must be 0..2 .* got 3 in row 2"),
    (np.zeros((4, 12), np.float32), np.array([0.0, 1.0, 2.0, 0.0]), "y_train: labels must be whole numbers"),
    (np.zeros((4, 12), np.float32), np.zeros(5, np.int64), "y_train: expected 4 labels"),
    (np.array([["a"] * 12] * 4), np.zeros(4, np.int64), "x_train: values of type <U1 are not numbers"),
])
def test_bad_input_fails_with_one_line_naming_the_argument(x, y, message):
    net = Network(glassbox_options({"hidden": [4]}), 12, 3)
    with pytest.raises(NeuroclassError, match=message) as info:
        fit(net, x, y, epochs=1)
    assert "\n" not in str(info.value)


def test_prediction_and_trace_check_their_input():
    net = Network(glassbox_options({"hidden": [4]}), 12, 3)
    with pytest.raises(NeuroclassError, match="x: rows of 5 values"):
        net.predict(np.zeros((2, 5)))
    with pytest.raises(NeuroclassError, match="x: expected one example of 12 values; got 2 rows"):
        net.trace(np.zeros((2, 12)))
    with pytest.raises(NeuroclassError, match="y: labels must be 0..2"):
        net.gradients(np.zeros(12), 7)
    with pytest.raises(NeuroclassError, match="needs at least 1 input and 2 classes"):
        Network(glassbox_options({}), 12, 1)
