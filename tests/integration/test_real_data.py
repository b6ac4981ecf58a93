"""End to end on real data: scikit-learn's digits and a slice of Fashion-MNIST (marked slow)."""
import json

import numpy as np
import pytest
from PIL import Image

from neuroclass.cli import main
from neuroclass.config import DataConfig
from neuroclass.data import load
from neuroclass.data.download import find_local

pytestmark = pytest.mark.slow


def only_run(out):
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def write_test_pngs(run, data_cfg, count, tmp_path):
    """PNG files of the run's first test images, with their true labels."""
    dataset = load(data_cfg)
    with np.load(run / "split.npz") as split:
        test = split["test"][:count]
    paths, labels = [], []
    for i in test:
        path = tmp_path / f"test-{i}.png"
        Image.fromarray(dataset.x[i, 0].numpy()).save(path)
        paths.append(str(path))
        labels.append(dataset.classes[int(dataset.y[i])])
    return paths, labels


def test_digits_mlp_defaults_reach_96_percent_and_predict_pngs(tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "digits", "--model", "mlp", "--out", str(out), "--quiet"]) == 0
    run = only_run(out)
    accuracy = json.loads((run / "metrics.json").read_text())["accuracy"]
    assert accuracy >= 0.96
    paths, labels = write_test_pngs(run, DataConfig(source="digits"), 20, tmp_path)
    capsys.readouterr()
    assert main(["predict", str(run), *paths, "--json"]) == 0
    predicted = [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]
    assert predicted[0] == labels[0]
    assert np.mean(np.array(predicted) == np.array(labels)) >= 0.9


@pytest.mark.skipif(find_local("fashion-mnist") is None,
                    reason="Fashion-MNIST files absent: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_slice_trains_evaluates_predicts_and_reports_the_known_confusions(tmp_path, capsys):
    """A 10,000-image slice trained once: evaluate and predict agree with the run, and the report
    finds Fashion-MNIST's known structure (the upper-body garments are the classes a model mixes up)."""
    out = tmp_path / "runs"
    assert main(["train", "fashion-mnist", "--out", str(out), "--quiet", "--epochs", "3",
                 "--set", "data.limit=10000"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    run = only_run(out)
    assert last == f"report: {run / 'report.html'}"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 10000 and metrics["accuracy"] > 0.8
    assert metrics["classes"][0] == "T-shirt/top"

    report = json.loads((run / "report.json").read_text())
    upper_body = {"Shirt", "T-shirt/top", "Pullover", "Coat"}
    top = report["confusion"]["most_confused"][:3]
    assert len(top) == 3
    assert all({pair["true"], pair["predicted"]} <= upper_body for pair in top), top
    assert report["metrics"]["n"] == 10000 and report["metrics"]["accuracy"] > 0.8
    assert report["calibration"]["guard"]["n"] == 1000

    assert main(["evaluate", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(metrics["accuracy"])
    paths, labels = write_test_pngs(run, DataConfig(source="fashion-mnist", limit=10000), 10, tmp_path)
    assert main(["predict", str(run), *paths, "--json"]) == 0
    predicted = [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]
    assert np.mean(np.array(predicted) == np.array(labels)) >= 0.7
