"""`neuroclass report`, the saved temperature that `predict` applies, and `predict --abstain-below`."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from neuroclass.cli import main
from neuroclass.data.blocks import make_blocks
from neuroclass.inference import NOT_SURE, Predictor


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A private copy of the shared run, free to edit, without reports other tests may have written."""
    run = shutil.copytree(trained_run.path, tmp_path / "run")
    for old in run.glob("report*"):
        old.unlink()
    return run


def set_temperature(run, value):
    meta = json.loads((run / "model.json").read_text())
    if value is None:
        meta["inference"].pop("temperature", None)
    else:
        meta["inference"]["temperature"] = value
    (run / "model.json").write_text(json.dumps(meta))


def pngs(tmp_path, n=3):
    ds = make_blocks(n=20, seed=42)
    paths = []
    for i in range(n):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(ds.x[i].numpy().transpose(1, 2, 0)).save(path)
        paths.append(str(path))
    return paths


def test_report_command_writes_html_and_json(run_copy, tmp_path, capsys):
    assert main(["report", str(run_copy)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {run_copy / 'report.html'}"
    assert (run_copy / "report.json").is_file()
    out = tmp_path / "elsewhere.html"
    assert main(["report", str(run_copy), "--data", "blocks:n=200,seed=9", "--out", str(out)]) == 0
    assert out.is_file() and json.loads(out.with_suffix(".json").read_text())["metrics"]["n"] == 200


def test_report_on_a_bad_run_path_is_one_error_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "no-such-run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuroclass: error: ") and "no-such-run" in err[0]
    assert "no such run folder" in err[0]


def test_report_into_a_missing_folder_creates_it_and_a_file_in_the_way_is_one_error_line(
        run_copy, tmp_path, capsys):
    assert main(["report", str(run_copy), "--out", str(tmp_path / "new" / "r.html")]) == 0
    assert (tmp_path / "new" / "r.html").is_file() and (tmp_path / "new" / "r.json").is_file()
    (tmp_path / "a-file").write_text("x")
    capsys.readouterr()
    assert main(["report", str(run_copy), "--out", str(tmp_path / "a-file" / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "a-file" in err[0]


def test_evaluate_on_other_data_writes_a_separate_report(run_copy, capsys):
    assert main(["evaluate", str(run_copy), "--data", "blocks:n=200,seed=9", "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # stdout stays one JSON document; the report path goes to stderr
    assert "report: " in captured.err
    assert (run_copy / "report-blocks_n_200_seed_9.html").is_file()
    assert not (run_copy / "report.html").exists()
    report = json.loads((run_copy / "report-blocks_n_200_seed_9.json").read_text())
    # the same model, data and policy: the printed metrics are the report's
    assert printed["n"] == report["metrics"]["n"] == 200  # blocks ship no test split: all of it
    assert printed["accuracy"] == report["metrics"]["accuracy"]
    assert printed["log_loss"] == pytest.approx(report["metrics"]["log_loss"])


def test_training_saves_the_temperature_fitted_on_validation(trained_run):
    from neuroclass.inference.calibrate import calibrate
    from neuroclass.runs import RunFolder

    meta = json.loads((trained_run.path / "model.json").read_text())
    run = RunFolder.open(trained_run.path)
    val = run.load_data().part("val")
    logits = Predictor.from_run(trained_run.path).predict_logits_tensor(val.x)
    assert meta["inference"]["temperature"] == pytest.approx(calibrate(logits, val.y)["temperature"], rel=1e-4)


def test_predict_applies_the_saved_temperature(run_copy):
    x = make_blocks(n=16, size=16, seed=3).x
    logits = Predictor.from_run(run_copy).predict_logits_tensor(x)
    set_temperature(run_copy, 3.0)
    np.testing.assert_allclose(Predictor.from_run(run_copy).predict_proba_tensor(x),
                               torch.softmax(logits / 3.0, dim=1).numpy(), rtol=1e-6)
    set_temperature(run_copy, None)  # a model.json from before temperatures: T = 1
    predictor = Predictor.from_run(run_copy)
    assert predictor.policy.temperature == 1.0
    np.testing.assert_allclose(predictor.predict_proba_tensor(x), torch.softmax(logits, dim=1).numpy(),
                               rtol=1e-6)
    set_temperature(run_copy, -1)
    with pytest.raises(Exception, match="temperature must be a number > 0"):
        Predictor.from_run(run_copy)


def test_predict_abstains_below_the_threshold(run_copy, tmp_path, capsys):
    paths = pngs(tmp_path)
    set_temperature(run_copy, 100.0)  # nearly uniform over 4 classes: every top probability < 0.3
    assert main(["predict", str(run_copy), *paths, "--json", "--abstain-below", "0.5"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["label"] == NOT_SURE and r["abstained"] is True and len(r["top"]) == 3 for r in rows)
    assert all(r["top"][0]["probability"] < 0.5 for r in rows)
    assert main(["predict", str(run_copy), *paths, "--json", "--abstain-below", "0"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["label"] != NOT_SURE and r["abstained"] is False for r in rows)
    assert main(["predict", str(run_copy), paths[0], "--abstain-below", "0.5"]) == 0
    assert NOT_SURE in capsys.readouterr().out
    assert main(["predict", str(run_copy), paths[0], "--abstain-below", "1.5"]) == 2
    assert "--abstain-below must be a probability" in capsys.readouterr().err
