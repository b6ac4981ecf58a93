"""explain on tiny glassbox runs: the weighted sums shown are the NumPy network's W x + b, the
probabilities the Predictor's, the update a copy of the network after one step of the run's
optimiser, the classic preset's squared error, attribution maps through the network's own backward
pass (checked against torch autograd), the page's sections and the CLI's summary."""
import copy
import json

import numpy as np
import pytest
import torch
from explain_formulas import check_formulas
from PIL import Image

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.evaluation.explain import explain_run, summary_lines, write_explanation
from neuroclass.evaluation.explain_steps import Loss
from neuroclass.glassbox.layers import Dense
from neuroclass.inference import Predictor
from neuroclass.pipeline import train
from neuroclass.runs import RunFolder
from neuroclass.runs.glassbox_module import GlassboxModule, input_rows

QUICK = ["data.source=digits", "model.name=glassbox", "train.quiet=true", "train.threads=1", "train.tta=none"]


def run_of(tmp, *extra):
    cfg = load_config(overrides=[f"out={tmp / 'runs'}", *QUICK, *extra])
    return train(cfg, report=False).path


@pytest.fixture(scope="module")
def modern_run(tmp_path_factory):
    """The modern preset (ReLU, softmax cross-entropy, Adam), one hidden layer of 16."""
    return run_of(tmp_path_factory.mktemp("gbx-modern"), "train.epochs=3", "model.options.hidden=[16]")


@pytest.fixture(scope="module")
def classic_run(tmp_path_factory):
    """The classic preset: sigmoid everywhere, squared error against 0.01 / 0.99, plain SGD, batches of one."""
    return run_of(tmp_path_factory.mktemp("gbx-classic"), "train.epochs=1", "model.options.preset=classic",
                  "model.options.hidden=[16]")


@pytest.fixture(scope="module")
def norm_run(tmp_path_factory):
    """Two tanh layers with batch normalisation and dropout."""
    return run_of(tmp_path_factory.mktemp("gbx-norm"), "train.epochs=2", "model.options.hidden=[16,8]",
                  "model.options.activation=tanh", "model.options.batch_norm=true", "model.options.dropout=0.1")


def example_of(run, index):
    """(x (1, 1, 8, 8) uint8, label, the network's input row (64,) float32)."""
    test = RunFolder.open(run).load_data(quiet=True).part("test")
    x = test.x[index:index + 1]
    return x, int(test.y[index]), input_rows(x)[0]


def network_of(run):
    return Predictor.from_run(run, device="cpu").model.network


@pytest.mark.parametrize("run_name", ["modern_run", "norm_run"])
def test_the_weighted_sums_shown_are_w_x_plus_b_of_the_network(run_name, request):
    run = request.getfixturevalue(run_name)
    found = explain_run(run, index=0, device="cpu")
    network = network_of(run)
    _, _, row = example_of(run, 0)
    traces = network.trace(row)
    dense = [layer for layer in network.layers if isinstance(layer, Dense)]
    assert [d.step.name for d in found.dense] == [layer.name for layer in dense] == [t.name for t in traces]
    np.testing.assert_array_equal(found.dense[0].step.x, row)  # the pixels / 255 the network takes in
    for shown, layer, trace in zip(found.dense, dense, traces):
        expected = trace.inputs.astype(np.float64) @ layer.weight.astype(np.float64) + layer.bias  # W x + b
        np.testing.assert_allclose(shown.step.z, expected, rtol=1e-5, atol=1e-6)
        assert [n.index for n in shown.step.neurons] == trace.most_active(len(shown.step.neurons)).tolist()
        for neuron in shown.step.neurons:
            assert neuron.weighted_sum + neuron.bias == pytest.approx(expected[neuron.index], rel=1e-5, abs=1e-6)
            assert neuron.weighted_sum == pytest.approx(float(trace.weighted_sum[neuron.index]), rel=1e-4, abs=1e-5)
    # each hidden layer's activations (batch norm folded in) are what the next layer received
    assert [d.matches for d in found.dense] == [True] * (len(dense) - 1) + [None]
    assert found.dense[0].step.activation == network.options.activation


@pytest.mark.parametrize("run_name", ["modern_run", "classic_run"])
def test_the_probabilities_are_the_predictors(run_name, request):
    run = request.getfixturevalue(run_name)
    found = explain_run(run, index=4, device="cpu")
    predictor = Predictor.from_run(run, device="cpu")
    x, label, _ = example_of(run, 4)
    expected = predictor.predict_proba_tensor(x)[0]
    np.testing.assert_allclose(found.output.probabilities, expected, rtol=1e-5, atol=1e-6)
    assert found.output.temperature == predictor.policy.temperature
    assert found.output.predicted == int(np.argmax(expected)) and found.output.label == label


@pytest.mark.parametrize("run_name", ["modern_run", "classic_run"])
def test_the_update_is_a_copy_of_the_network_after_one_optimiser_step(run_name, request):
    run = request.getfixturevalue(run_name)
    found = explain_run(run, index=1, device="cpu")
    predictor = Predictor.from_run(run, device="cpu")
    x, label, row = example_of(run, 1)
    stepped = copy.deepcopy(predictor.model.network)
    before = stepped.state_dict()
    stepped.train_step(row[None], np.array([label]))  # the network's own step: forward, loss, backward, optimiser
    after = predictor.probabilities(GlassboxModule(stepped)(x))[0]  # through the run's inference path
    u = found.update
    np.testing.assert_allclose(u.new_probabilities, after, rtol=1e-4, atol=1e-6)
    options = stepped.options
    assert (u.lr, u.optimizer, u.every_layer) == (options.lr, options.optimizer, True)
    head = found.head
    np.testing.assert_allclose(u.weight_change, (stepped.state_dict()[f"{head}.weight"] - before[f"{head}.weight"]).T,
                               rtol=1e-4, atol=1e-7)
    assert u.new_loss == pytest.approx(stepped.evaluate(row[None], np.array([label]))[0], rel=1e-5)
    assert u.new_loss < u.loss
    assert sorted(c.name for c in u.changes) == sorted(before)
    assert any("running averages" in n for n in found.notes) == (options.optimizer == "adam")


def test_the_classic_preset_shows_its_squared_error_and_sigmoid_outputs(classic_run, tmp_path):
    found = explain_run(classic_run, index=2, device="cpu")
    out = found.output
    _, label, row = example_of(classic_run, 2)
    a = network_of(classic_run).trace(row)[-1].a.astype(np.float64)  # the output sigmoids
    target = np.full(10, 0.01)
    target[label] = 0.99
    assert (out.output, out.loss_kind, out.targets) == ("sigmoid", Loss.SQUARED_ERROR, (0.01, 0.99))
    np.testing.assert_allclose(out.outputs, a, rtol=1e-6)
    assert out.loss == pytest.approx(0.5 * np.sum((a - target) ** 2), rel=1e-5)
    np.testing.assert_allclose(found.update.grad_logits, (a - target) * a * (1 - a), rtol=1e-4, atol=1e-7)
    assert found.dense[-1].step.activation == "sigmoid"
    assert any("1/2 sum_k (sigmoid(z_k) - target_k)^2" in line for line in summary_lines(found))
    assert any(line.startswith("one sgd step on every layer (lr 0.1)") for line in summary_lines(found))
    document = write_explanation(found, tmp_path).read_text()
    assert "loss (squared error" in document and "a / sum" in document
    assert "(a - target) a (1 - a)" in document and "cross-entropy" not in document


@pytest.mark.parametrize("run_name", ["modern_run", "classic_run", "norm_run"])
def test_every_number_follows_the_formula_printed_beside_it(run_name, request, tmp_path):
    found = explain_run(request.getfixturevalue(run_name), index=6, device="cpu")
    check_formulas(found, write_explanation(found, tmp_path).read_text())


def _torch_logit(network, row: np.ndarray, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The modern run's one-hidden-layer network written in torch: (input with its gradient, logit)."""
    w = {k: torch.from_numpy(v).double() for k, v in network.state_dict().items()}
    x = torch.from_numpy(row).double().requires_grad_(True)
    z = torch.relu(x @ w["dense0.weight"] + w["dense0.bias"]) @ w["dense1.weight"] + w["dense1.bias"]
    return x, z[target]


def test_saliency_is_the_gradient_torch_autograd_finds(modern_run):
    found = explain_run(modern_run, index=3, attribution="saliency", device="cpu")
    _, _, row = example_of(modern_run, 3)
    (saliency,) = [a for a in found.attributions if a.role == "predicted"]
    x, logit = _torch_logit(network_of(modern_run), row, saliency.target)
    logit.backward()
    assert saliency.method == "saliency" and saliency.values.shape == (1, 8, 8)
    np.testing.assert_allclose(saliency.values.reshape(-1), x.grad.abs().numpy(), rtol=1e-4, atol=1e-6)


def test_integrated_gradients_add_up_to_the_logits_change(modern_run):
    found = explain_run(modern_run, index=3, device="cpu")
    _, _, row = example_of(modern_run, 3)
    for ig in found.attributions:
        assert ig.method == "integrated gradients" and ig.values.shape == found.seen.shape == (1, 8, 8)
        _, at_input = _torch_logit(network_of(modern_run), row, ig.target)
        _, at_black = _torch_logit(network_of(modern_run), np.zeros_like(row), ig.target)
        assert ig.values.sum() == pytest.approx((at_input - at_black).item(), abs=0.05)
        assert "NumPy" in ig.detail


def test_the_page_holds_every_section_and_the_json_its_numbers(modern_run, tmp_path):
    found = explain_run(modern_run, index=0, device="cpu")
    assert found.first.weight.shape == (16, 64) and len(found.first.shown) == 16  # 8x8 templates of 16 units
    assert found.stages == [] and found.numpy_network and not found.standardized
    document = write_explanation(found, tmp_path / "page.html").read_text()
    for anchor in ("summary", "input", "dense", "output", "gradient", "weights", "attribution", "method"):
        assert f'id="{anchor}"' in document, anchor
    assert "own backward pass" in document and "needs torch autograd" in document
    assert "What the step changed in each layer" in document and "dense0.weight" in document
    assert "http://" not in document and "https://" not in document
    record = json.loads((tmp_path / "page.json").read_text())
    assert record["family"] == "glassbox" and record["loss_kind"] == "cross_entropy"
    assert record["update"]["optimizer"] == "adam" and record["update"]["every_layer"] is True


def test_the_cli_prints_a_summary_and_writes_the_page(modern_run, tmp_path, capsys):
    assert main(["explain", str(modern_run), "--index", "0", "--out", str(tmp_path / "pages/")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("explained test example 0 of digits with glassbox from")
    assert lines[1].startswith("prediction: ") and "softmax of the logits" in lines[1]
    assert any(line.startswith("true label: ") and "-log softmax(z)" in line for line in lines)
    assert any(line.startswith("one adam step on every layer (lr 0.001)") for line in lines)
    assert any(line.startswith("layer dense0: most active unit") for line in lines)
    assert lines[-2:] == [f"numbers: {tmp_path / 'pages' / 'explain-test-0.json'}",
                          f"page: {tmp_path / 'pages' / 'explain-test-0.html'}"]
    assert (tmp_path / "pages" / "explain-test-0.json").is_file()


def test_a_file_without_a_label_shows_no_update(modern_run, tmp_path):
    x, label, _ = example_of(modern_run, 5)
    Image.fromarray(x[0, 0].numpy()).save(tmp_path / "digit.png")
    predictor = Predictor.from_run(modern_run, device="cpu")
    found = explain_run(modern_run, tmp_path / "digit.png", device="cpu")
    expected = predictor.predict_files([tmp_path / "digit.png"], top_k=1)[0]
    assert found.classes[found.output.predicted] == expected.label
    assert found.update is None and found.output.loss is None and any("--label" in n for n in found.notes)
    labelled = explain_run(modern_run, tmp_path / "digit.png", label=predictor.classes[label], device="cpu")
    assert labelled.update is not None and labelled.output.label == label
