"""The glass-box network as a model family of the pipeline: an ordinary run folder (weights in
model.safetensors under the network's own names) that predict and evaluate read, the time budget,
and `neuroclass models` (the config's settings: test_glassbox_settings.py)."""
import json

import numpy as np
import pytest
import safetensors.numpy
from PIL import Image

from neuroclass.api import load_run
from neuroclass.api import train as api_train
from neuroclass.cli import main
from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.evaluate import evaluate_run
from neuroclass.runs import RunFolder
from neuroclass.runs.glassbox_module import GlassboxModule
from neuroclass.training.families import check_family_config, family_names
from neuroclass.training.throughput import count_flops


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    """digits, the modern preset, a time budget of 3 s, no epoch count and no early stopping (given):
    the budget ends training."""
    out = tmp_path_factory.mktemp("glassbox-runs")
    return api_train("digits", model="glassbox", time_budget="3s", out=out, quiet=True, report=False,
                     overrides=["train.threads=1", "train.patience=0"])


def test_a_budgeted_run_stops_at_the_budget_and_scores_what_evaluate_scores(budget_run):
    assert budget_run.timing["stop_reason"] == "time_budget" and budget_run.timing["epochs"] > 1
    metrics, _ = evaluate_run(budget_run.path)
    recorded = json.loads((budget_run.path / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(recorded["accuracy"], abs=1e-12)
    assert recorded["accuracy"] > 0.9
    rows = (budget_run.path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy")
    assert len(rows) == budget_run.timing["epochs"] + 1


def test_the_run_folder_holds_the_networks_weights_and_options(budget_run):
    meta = json.loads((budget_run.path / "model.json").read_text())
    assert meta["family"] == "glassbox" and meta["options"]["preset"] == "modern"
    assert meta["input_shape"] == [1, 8, 8]
    weights = safetensors.numpy.load_file(budget_run.path / "model.safetensors")
    assert sorted(weights) == ["dense0.bias", "dense0.weight", "dense1.bias", "dense1.weight"]
    assert weights["dense0.weight"].shape == (64, 200) and weights["dense0.weight"].dtype == np.float32
    predictor = load_run(budget_run.path)
    assert isinstance(predictor.model, GlassboxModule)
    assert count_flops(predictor.model, (1, 8, 8)) == 2 * (64 * 200 + 200 * 10)  # counted, not seen by torch
    np.testing.assert_array_equal(predictor.model.network.state_dict()["dense1.weight"], weights["dense1.weight"])


def test_predict_reads_an_image_file(budget_run, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    path = tmp_path / "seven.png"
    Image.fromarray(np.round(digits.images[7] * 255 / 16).astype(np.uint8)).save(path)
    (prediction,) = load_run(budget_run.path).predict_files([path])
    assert prediction.label == str(digits.target[7])


def test_classic_preset_through_the_cli(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "digits", "--model", "glassbox", "--set", "model.options.preset=classic", "--set",
                 "optim.lr=0.2", "--set", "train.epochs=1", "--set", "train.threads=1", "--out", str(out),
                 "--no-report"]) == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    options = json.loads((run / "model.json").read_text())["options"]
    shown = (options["activation"], options["loss"], options["lr"], options["batch_size"])
    assert shown == ("sigmoid", "mse", 0.2, 1)
    assert main(["evaluate", str(run), "--json", "--no-report"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["accuracy"] == pytest.approx(RunFolder.open(run).read_json("metrics.json")["accuracy"])


def test_models_lists_glassbox(capsys):
    assert main(["models"]) == 0
    assert "glassbox" in capsys.readouterr().out and "glassbox" in family_names()


# ----------------------------------------------------------------------------- the family check

def test_family_check_refuses_starting_weights_and_sizes():
    with pytest.raises(NeuroclassError, match="model.pretrained: glassbox is fitted from scratch"):
        check_family_config(ModelConfig(name="glassbox", pretrained=True))
    with pytest.raises(NeuroclassError, match="model.size"):
        check_family_config(ModelConfig(name="glassbox", size="large"))
    check_family_config(ModelConfig(name="glassbox", options={"preset": "classic", "hidden": [64]}))
