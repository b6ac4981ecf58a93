"""Classical families in the one pipeline: an ordinary run folder (native model file, no pickle),
the same predictions through predict and evaluate as at training, HOG features from images, the
time budget, and one clear error for what does not fit together."""
import json

import numpy as np
import pytest
import torch

from neuroclass.classical.model import ClassicalModel
from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.data.blocks import make_blocks
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.evaluate import evaluate_run
from neuroclass.inference import Predictor
from neuroclass.pipeline import train
from neuroclass.runs import RunFolder
from neuroclass.training.families import check_family_config


def blocks_npz(path, n=160, size=16, seed=0):
    ds = make_blocks(n=n, size=size, task="colour", seed=seed)
    np.savez(path, x=ds.x.numpy(), y=ds.y.numpy())
    return path


def classical_cfg(tmp_path, model, *extra):
    data = blocks_npz(tmp_path / "blocks.npz")
    return load_config(overrides=[f"data.source={data}", f"model.name={model}", f"out={tmp_path / 'runs'}",
                                  "train.quiet=true", *extra])


@pytest.mark.parametrize("model, native", [("logreg", "model.skops"), ("xgboost", "model.ubj"),
                                           ("lightgbm", "model.lgb.txt")])
def test_a_classical_run_folder_predicts_what_training_scored(tmp_path, model, native):
    result = train(classical_cfg(tmp_path, model), report=False)
    files = {p.name for p in result.path.iterdir()}
    assert native in files and "model.json" in files
    meta = json.loads((result.path / "model.json").read_text())
    assert meta["family"] == model and meta["classical"]["file"] == native
    assert result.metrics["accuracy"] > 0.5  # colour blocks are easy; chance is lower
    predictor = Predictor.from_run(result.path)
    assert isinstance(predictor.model, ClassicalModel)
    folder = RunFolder.open(result.path)
    again, _ = evaluate_run(result.path)  # the run's own test split, through the Predictor
    assert again["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert result.timing["classical"]["family"] == model
    assert folder.history()  # metrics.csv holds at least the fit's row


def test_hog_features_of_images_reach_the_estimator_and_the_saved_model(tmp_path):
    cfg = classical_cfg(tmp_path, "logreg", "data.features=hog")
    result = train(cfg, report=False)
    predictor = Predictor.from_run(result.path)
    assert predictor.model.features == "hog"
    x = make_blocks(n=8, size=16, task="colour", seed=3).x
    proba = predictor.predict_proba_tensor(x)
    rows = predictor.model.rows(x)
    assert rows.shape[1] != 3 * 16 * 16  # features, not pixels
    assert proba.shape == (8, len(predictor.classes))
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_the_fit_stops_adding_rounds_at_the_deadline(tmp_path):
    ticks = iter(range(10**6))

    def clock():  # a second per reading: the 60-second budget ends after a few boosting rounds
        return float(next(ticks))

    cfg = classical_cfg(tmp_path, "xgboost", "train.time_budget=60", "model.options.n_estimators=500",
                        "model.options.early_stopping_rounds=500")
    result = train(cfg, report=False, clock=clock)
    assert result.timing["stop_reason"] == "time_budget"
    assert result.timing["classical"]["rounds"] < 500


@pytest.mark.parametrize("extra, words", [
    (["model.name=cnn", "data.features=hog"], "learns its own"),
    (["model.name=logreg", "model.size=l"], "model.size"),
    (["model.name=logreg", "model.pretrained=true"], "takes no starting weights"),
    (["model.name=logreg", "model.options.C=-1"], "'model.options.C'"),
    (["model.name=xgbost"], "Did you mean 'xgboost'"),
])
def test_what_does_not_fit_a_classical_family_is_one_clear_error(tmp_path, extra, words):
    data = blocks_npz(tmp_path / "blocks.npz")
    cfg = load_config(overrides=[f"data.source={data}", f"out={tmp_path / 'runs'}", "train.quiet=true", *extra])
    with pytest.raises(NeuroclassError, match=words):
        check_family_config(cfg.model)
        train(cfg, report=False)


def test_a_damaged_model_file_is_named(tmp_path):
    result = train(classical_cfg(tmp_path, "xgboost"), report=False)
    (result.path / "model.ubj").write_bytes(b"not a model")
    with pytest.raises(NeuroclassError, match="model.ubj"):
        Predictor.from_run(result.path)


def test_cli_trains_a_classical_family_and_says_what_the_fit_did(tmp_path, capsys):
    data = blocks_npz(tmp_path / "blocks.npz")
    code = main(["train", str(data), "--model", "knn", "--out", str(tmp_path / "runs"), "--quiet", "--no-report"])
    out = capsys.readouterr().out
    assert code == 0
    assert "knn:" in out and "fitting" in out and "epoch" not in out


def test_an_unfitted_model_refuses_to_predict():
    with pytest.raises(RuntimeError, match="not fitted"):
        ClassicalModel("logreg")(torch.zeros(2, 3))


@pytest.mark.parametrize("features", [None, "hog"])
def test_images_as_uint8_or_as_floats_in_0_1_give_the_same_rows(features):
    x = make_blocks(n=4, size=16, task="colour", seed=1).x  # uint8 (4, 3, 16, 16)
    model = ClassicalModel("logreg", features=features)
    np.testing.assert_allclose(model.rows(x), model.rows(x.float() / 255.0), atol=1e-6)


def test_the_report_of_a_classical_run_speaks_of_rounds_and_the_model_file(tmp_path):
    result = train(classical_cfg(tmp_path, "xgboost"), report=True)
    report = json.loads((result.path / "report.json").read_text())
    summary, training = report["summary"], report["training"]
    assert summary["parameters"] is None and summary["flops_per_example"] is None
    assert summary["model_file_bytes"] == (result.path / "model.ubj").stat().st_size + \
        (result.path / "model.safetensors").stat().st_size
    assert training["classical"]["family"] == "xgboost" and training["classical"]["rounds"] >= 1
    page = (result.path / "report.html").read_text()
    assert "model file" in page and "FLOPs per example" not in page and "optimizer" not in page
    # the robustness curves feed float images in [0, 1]: the clean level scores the test accuracy
    clean = report["robustness"]["noise"][0]
    assert clean["level"] == 0.0 and clean["accuracy"] > 0.5
