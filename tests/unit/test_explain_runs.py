"""explain on tiny trained runs: the numbers shown are the model's (W x + b, the Predictor's
probabilities, a torch SGD step on the head), the maps have the input's shape, a cnn shows its
filters and a map per stage, a table run its features, and bad input is one error line, exit 2."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from explain_formulas import check_formulas
from torch import nn

import neuroclass
from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.evaluation.explain import explain_run, summary_lines, write_explanation
from neuroclass.evaluation.explain_page import _input_names_of
from neuroclass.evaluation.explain_steps import softmax
from neuroclass.inference import Predictor
from neuroclass.pipeline import train
from neuroclass.runs import RunFolder

QUICK = ["train.epochs=2", "train.quiet=true", "train.batch_size=32", "train.threads=1", "train.tta=none"]


def run_of(tmp, source, model, *extra):
    cfg = load_config(overrides=[f"data.source={source}", f"model.name={model}", f"out={tmp / 'runs'}",
                                 *QUICK, *extra])
    return train(cfg, report=False).path


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """An mlp with two hidden layers (BatchNorm, ReLU, Dropout) on 16x16 colour blocks."""
    return run_of(tmp_path_factory.mktemp("explain-mlp"), "blocks:n=240,size=16", "mlp",
                  "model.options.hidden=[24,12]")


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    return run_of(tmp_path_factory.mktemp("explain-cnn"), "blocks:n=240,size=16", "cnn",
                  "model.options.channels=[8,16]", "model.options.hidden=16")


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain-table")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"noise": rng.normal(size=240), "signal": rng.normal(size=240),
                          "colour": rng.choice(["red", "green"], size=240)})
    frame["label"] = np.where(frame["signal"] > 0, "yes", "no")
    frame.to_csv(tmp / "rows.csv", index=False)
    return tmp / "rows.csv"


@pytest.fixture(scope="module")
def table_run(table_csv):
    return run_of(table_csv.parent, table_csv, "mlp", "data.label_column=label", "model.options.hidden=[8]")


def example_of(run, index):
    test = RunFolder.open(run).load_data(quiet=True).part("test")
    return test.x[index:index + 1], int(test.y[index])


def test_the_dense_steps_are_the_models_own_numbers(mlp_run):
    found = explain_run(mlp_run, index=2, device="cpu")
    model = Predictor.from_run(mlp_run, device="cpu").model.eval()
    x, label = example_of(mlp_run, 2)
    seen = model.standardize(x).flatten(1)
    first = model.net.get_submodule(found.dense[0].step.name)
    assert isinstance(first, nn.Linear) and first.in_features == seen.shape[1] == 3 * 16 * 16
    np.testing.assert_allclose(found.dense[0].step.x, seen[0].numpy(), rtol=1e-6)
    expected = first(seen)[0].detach().double().numpy()  # W x + b of the model
    np.testing.assert_allclose(found.dense[0].step.z, expected, rtol=1e-5, atol=1e-6)
    for neuron in found.dense[0].step.neurons:
        assert neuron.weighted_sum + neuron.bias == pytest.approx(expected[neuron.index], rel=1e-5, abs=1e-6)
    assert len(found.dense) == 3 and [d.matches for d in found.dense] == [True, True, None]
    with torch.no_grad():
        logits = model(x)[0].double().numpy()
    np.testing.assert_allclose(found.dense[-1].step.z, logits, rtol=1e-5, atol=1e-6)
    assert found.output.label == label and found.first.kind == "dense" and found.stages == []
    assert found.input_names[0] == "(channel 0, row 0, col 0)"


def test_the_probabilities_are_the_predictors(mlp_run):
    found = explain_run(mlp_run, index=5, device="cpu")
    x, _ = example_of(mlp_run, 5)
    expected = Predictor.from_run(mlp_run, device="cpu").predict_proba_tensor(x)[0]
    np.testing.assert_allclose(found.output.probabilities, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(found.predictor_probabilities, expected, rtol=1e-6)
    assert found.output.temperature == Predictor.from_run(mlp_run).policy.temperature


@pytest.mark.parametrize("run_name", ["mlp_run", "cnn_run"])
def test_the_update_is_a_torch_sgd_step_on_the_head(run_name, request):
    run = request.getfixturevalue(run_name)
    found = explain_run(run, index=1, device="cpu")
    predictor = Predictor.from_run(run, device="cpu")
    model = predictor.model.eval()
    x, label = example_of(run, 1)
    head = model.net.get_submodule(found.head)
    lr = RunFolder.open(run).config().optim.lr
    optimizer = torch.optim.SGD(head.parameters(), lr=lr)
    F.cross_entropy(model(x), torch.tensor([label])).backward()
    optimizer.step()
    with torch.no_grad():
        after = torch.softmax(model(x).double() / predictor.policy.temperature, 1)[0].numpy()
    assert found.update.lr == lr
    np.testing.assert_allclose(found.update.new_probabilities, after, rtol=1e-4, atol=1e-6)
    assert found.update.new_loss < found.update.loss


@pytest.mark.parametrize("run_name", ["mlp_run", "cnn_run"])
def test_attribution_maps_have_the_inputs_shape_and_are_finite(run_name, request):
    found = explain_run(request.getfixturevalue(run_name), index=0, device="cpu")
    gradients = [a for a in found.attributions if a.method == "integrated gradients"]
    assert gradients and {a.role for a in gradients} <= {"predicted", "true"}
    for a in found.attributions:
        expected = found.seen.shape if a.method != "Grad-CAM" else found.seen.shape[1:]
        assert a.values.shape == expected and np.isfinite(a.values).all() and a.detail
    assert gradients[0].target == found.output.predicted


def test_saliency_is_the_absolute_gradient(mlp_run):
    found = explain_run(mlp_run, index=0, attribution="saliency", device="cpu")
    model = Predictor.from_run(mlp_run, device="cpu").model.eval()
    seen = torch.from_numpy(found.seen)[None].requires_grad_(True)
    model.net(seen)[0, found.output.predicted].backward()
    (saliency,) = [a for a in found.attributions if a.role == "predicted"]
    assert saliency.method == "saliency"
    np.testing.assert_allclose(saliency.values, seen.grad[0].abs().numpy(), rtol=1e-5, atol=1e-7)


def test_a_cnn_shows_its_filters_a_map_per_stage_and_grad_cam(cnn_run, tmp_path):
    found = explain_run(cnn_run, index=3, device="cpu")
    conv = Predictor.from_run(cnn_run, device="cpu").model.net.get_submodule(found.first.name)
    assert found.first.kind == "conv" and found.first.weight.shape == tuple(conv.weight.shape) == (8, 3, 3, 3)
    assert [s.maps.shape[1:] for s in found.stages] == [(16, 16), (8, 8), (4, 4)]  # one per resolution
    assert all(s.maps.shape[0] >= 1 and np.isfinite(s.maps).all() for s in found.stages)
    cams = [a for a in found.attributions if a.method == "Grad-CAM"]
    assert cams and all(a.values.shape == (16, 16) and (a.values >= 0).all() for a in cams)
    # the head's dense layers, hidden then the one giving the logits, which the step moves; not the conv layers
    assert [d.step.name for d in found.dense] == ["head.2", "head.5"] and found.head == "head.5"
    assert [d.matches for d in found.dense] == [True, None] and found.dense[0].step.units == 16
    document = write_explanation(found, tmp_path / "cnn.html").read_text()
    for anchor in ("summary", "input", "dense", "output", "gradient", "weights", "stages", "attribution"):
        assert f'id="{anchor}"' in document, anchor
    assert "Grad-CAM" in document and "http://" not in document and "https://" not in document


def test_a_head_whose_inputs_are_as_many_as_the_pixels_is_not_named_by_pixels(cnn_run):
    """A conv network's head may take as many numbers as the image has pixels (8x8 digits, 64
    channels of 1x1): its inputs are the features, "unit i", not "(row r, col c)"."""
    found = explain_run(cnn_run, index=0, device="cpu")
    head = found.dense[-1].step
    other = (head.x + 1.0).astype(np.float32)  # an input of as many numbers as the head takes, other ones
    names, _ = _input_names_of(replace(found, seen=other, input_names=["pixel"] * other.size), 0, head)
    assert names is None
    same = replace(found, seen=head.x.astype(np.float32), input_names=[f"p{i}" for i in range(head.inputs)])
    assert _input_names_of(same, 0, head)[0] == same.input_names  # a layer that takes the input: its names


def test_a_table_run_shows_its_features(table_run, tmp_path):
    found = explain_run(table_run, index=0, device="cpu")
    assert found.kind == "table" and found.stages == [] and found.first is None
    names = found.input_names
    assert "signal" in names and "colour=red" in names and len(names) == found.seen.shape[0]
    first = found.dense[0].step
    assert first.inputs == len(names)
    (ig,) = [a for a in found.attributions if a.role == "predicted"]
    assert ig.values.shape == found.seen.shape and np.isfinite(ig.values).all()
    # completeness: the features' shares add up to the logit's change from the baseline, the row
    # of zeros after the run's preprocessing, standardized as the model does
    model = Predictor.from_run(table_run, device="cpu").model.eval()
    with torch.no_grad():
        baseline = model.standardize(torch.zeros(1, len(names)))
        change = (model.net(torch.from_numpy(found.seen)[None]) - model.net(baseline))[0, ig.target]
    assert ig.values.sum() == pytest.approx(change.item(), abs=0.02)
    document = write_explanation(found, tmp_path).read_text()
    assert "<img" not in document and "colour=red" in document and "signal" in document
    assert json.loads((tmp_path / "explain-test-0.json").read_text())["family"] == "mlp"


def test_a_file_is_decoded_as_predict_decodes_it(mlp_run, tmp_path):
    x, label = example_of(mlp_run, 4)
    Image.fromarray(x[0].permute(1, 2, 0).numpy()).save(tmp_path / "my block.png")
    predictor = Predictor.from_run(mlp_run, device="cpu")
    found = explain_run(mlp_run, tmp_path / "my block.png", label=predictor.classes[label], device="cpu")
    expected = predictor.predict_files([tmp_path / "my block.png"], top_k=1)[0]
    assert found.classes[found.output.predicted] == expected.label
    assert found.output.probabilities[found.output.predicted] == pytest.approx(expected.probability, rel=1e-5)
    assert found.output.label == label and found.slug == "my_block" and found.update is not None
    unlabelled = explain_run(mlp_run, tmp_path / "my block.png", device="cpu")
    assert unlabelled.update is None and unlabelled.output.loss is None
    assert any("--label" in n for n in unlabelled.notes)


def test_the_cli_prints_a_summary_and_writes_the_page(mlp_run, tmp_path, capsys):
    assert main(["explain", str(mlp_run), "--index", "3", "--out", str(tmp_path / "pages/")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("explained test example 3 of blocks")
    assert any(line.startswith("one step W -= lr * dL/dW") for line in lines)
    assert lines[-2:] == [f"numbers: {tmp_path / 'pages' / 'explain-test-3.json'}",
                          f"page: {tmp_path / 'pages' / 'explain-test-3.html'}"]
    assert (tmp_path / "pages" / "explain-test-3.json").is_file()


def test_out_replaces_an_existing_page_atomically_and_says_where(mlp_run, tmp_path, capsys):
    page = tmp_path / "mine.html"
    page.write_text("an older page")
    page.with_suffix(".json").write_text("{}")
    assert main(["explain", str(mlp_run), "--index", "2", "--out", str(page)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2:] == [f"numbers: {tmp_path / 'mine.json'}", f"page: {page}"]
    assert page.read_text().startswith("<!DOCTYPE html>")  # replaced, as report --out replaces its file
    assert json.loads(page.with_suffix(".json").read_text())["source"].startswith("test example 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.html", "mine.json"]  # no temporary files left


@pytest.mark.parametrize("run_name, index", [("mlp_run", 1), ("cnn_run", 3), ("table_run", 0)])
def test_every_number_follows_the_formula_printed_beside_it(run_name, index, request, tmp_path):
    found = explain_run(request.getfixturevalue(run_name), index=index, device="cpu")
    assert found.update is not None
    check_formulas(found, write_explanation(found, tmp_path).read_text())


def test_a_calibrated_run_states_its_loss_with_and_without_the_temperature(mlp_run, tmp_path):
    found = explain_run(mlp_run, index=1, device="cpu")
    out = replace(found.output, temperature=2.0, probabilities=softmax(found.output.logits, 2.0),
                  calibrated_loss=-float(np.log(softmax(found.output.logits, 2.0)[found.output.label])))
    found = replace(found, output=out, update=replace(found.update,
                                                      new_probabilities=softmax(found.update.new_logits, 2.0)))
    document = write_explanation(found, tmp_path).read_text()
    check_formulas(found, document)
    assert "p_T = softmax(z / 2.0000)" in document and "softmax(z) (T = 1)" in document
    assert out.loss != pytest.approx(out.calibrated_loss)
    line = next(line for line in summary_lines(found) if line.startswith("true label: "))
    assert f"training loss -log softmax(z)[{found.classes[out.label]}] = " in line and "-log p_T[" in line


def test_the_python_api(mlp_run, tmp_path):
    found = neuroclass.explain(mlp_run, index=1, out=tmp_path / "one.html", device="cpu")
    assert found.page == tmp_path / "one.html" and found.page.is_file()
    assert summary_lines(found)[-1] == f"page: {found.page}"
    assert neuroclass.explain(mlp_run, index=1, page=False, device="cpu").page is None


@pytest.fixture(scope="module")
def classical_run(table_csv):
    return run_of(table_csv.parent, table_csv, "logreg", "data.label_column=label")


@pytest.mark.parametrize("argv, field", [
    (["explain", "{tmp}/no-such-run"], "RUN '"),
    (["explain", "{mlp}", "--index", "999"], "--index 999"),
    (["explain", "{mlp}", "--index", "-1"], "--index -1"),
    (["explain", "{mlp}", "{tmp}/a.png", "--index", "0"], "FILE and --index"),
    (["explain", "{mlp}", "--label", "red"], "--label"),
    (["explain", "{mlp}", "--attribution", "shap"], "--attribution 'shap'"),
    (["explain", "{mlp}", "{tmp}/missing.png"], "missing.png"),
])
def test_bad_input_is_one_error_line_and_exit_2(argv, field, mlp_run, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, mlp=mlp_run) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroclass: error: ") and field in err[0], err


def test_a_label_that_is_not_a_class_names_the_classes(mlp_run, tmp_path, capsys):
    x, _ = example_of(mlp_run, 0)
    Image.fromarray(x[0].permute(1, 2, 0).numpy()).save(tmp_path / "a.png")
    assert main(["explain", str(mlp_run), str(tmp_path / "a.png"), "--label", "purple"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--label 'purple'" in err and "red" in err and "\n" not in err


def test_a_classical_run_is_pointed_at_the_reports_permutation_importance(classical_run, capsys):
    assert main(["explain", str(classical_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "logreg" in err and "neural families" in err and "permutation importance" in err and "\n" not in err


def test_a_table_file_explains_its_first_row(table_run, table_csv, tmp_path):
    pd.read_csv(table_csv).head(3).to_csv(tmp_path / "three.csv", index=False)
    predictor = Predictor.from_run(table_run, device="cpu")
    found = explain_run(table_run, tmp_path / "three.csv", label="yes", device="cpu")
    expected = predictor.predict_files([tmp_path / "three.csv"], top_k=1)[0]
    assert found.source == "row 0 of three.csv (counted from 0; the file has 3 data rows)"
    assert found.slug == "three-row0" and found.row == 0
    assert found.classes[found.output.predicted] == expected.label
    assert found.output.probabilities[found.output.predicted] == pytest.approx(expected.probability, rel=1e-5)
    assert found.output.label == found.classes.index("yes") and found.update is not None


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["explain", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # as one line, whatever the terminal's width
    assert info.value.code == 0 and "--index" in out and "--row N" in out and "counted from 0" in out


def test_an_ensemble_is_pointed_at_its_members(mlp_run, cnn_run, tmp_path, capsys):
    assert main(["ensemble", str(mlp_run), str(cnn_run), "--out", str(tmp_path / "ensembles"), "--no-report"]) == 0
    (folder,) = (tmp_path / "ensembles").iterdir()
    capsys.readouterr()
    assert main(["explain", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neuroclass: error: RUN '") and "explain one of its members" in err and "\n" not in err
