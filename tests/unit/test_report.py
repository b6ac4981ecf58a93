"""The run report: report.json's numbers against scikit-learn, the page's sections and self-containment."""
import base64
import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn import metrics as skm

from conftest import quick_config
from neuroclass.config import DataConfig
from neuroclass.data import load
from neuroclass.evaluation.report import report_path, try_write_report, write_report
from neuroclass.evaluation.robustness import CORRUPTIONS
from neuroclass.inference import Predictor, predict_logits
from neuroclass.pipeline import train as train_run
from neuroclass.runs import RunFolder

SECTION_IDS = ["summary", "data", "training", "metrics", "confusion", "mistakes", "calibration",
               "abstention", "robustness", "importance", "doctor", "reproduce"]


@pytest.fixture(scope="module")
def imperfect_run(tmp_path_factory):
    """A run that makes mistakes (shape task, tiny MLP, 3 epochs), so every metric is informative."""
    cfg = quick_config(tmp_path_factory.mktemp("imperfect"), source="blocks:n=300,size=16,task=shape")
    return train_run(cfg, report=False).path


@pytest.fixture(scope="module")
def written(imperfect_run, tmp_path_factory):
    html = write_report(imperfect_run, out=tmp_path_factory.mktemp("report") / "report.html")
    return html, json.loads(html.with_suffix(".json").read_text())


def test_report_metrics_equal_scikit_learn_on_the_same_predictions(imperfect_run, written):
    _, report = written
    m = report["metrics"]
    dataset = load(DataConfig(source="blocks:n=300,size=16,task=shape"))
    with np.load(imperfect_run / "split.npz") as split:
        test = split["test"]
    predictor = Predictor.from_run(imperfect_run)
    proba = predictor.predict_proba_tensor(dataset.x[torch.as_tensor(test)]).astype(np.float64)
    proba /= proba.sum(axis=1, keepdims=True)
    y, pred, labels = dataset.y[torch.as_tensor(test)].numpy(), proba.argmax(1), np.arange(4)
    assert 0.3 < m["accuracy"] < 1.0, "the fixture should make some mistakes"
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    for k, value in m["top_k_accuracy"].items():
        assert value == pytest.approx(skm.top_k_accuracy_score(y, proba, k=int(k), labels=labels), abs=1e-12)
    assert set(m["top_k_accuracy"]) == {"1", "3"}
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels), rel=1e-9)
    assert m["roc_auc_ovr_macro"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels), abs=1e-12)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for i, name in enumerate(report["summary"]["classes"]):
        row = m["per_class"][name]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (p[i], r[i], f[i], s[i]), abs=1e-12)
    for average in ("macro", "weighted"):
        expected = skm.precision_recall_fscore_support(y, pred, labels=labels, average=average,
                                                       zero_division=0)[:3]
        got = m["averages"][average]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(expected, abs=1e-12)
        assert m[f"{average}_f1"] == pytest.approx(
            skm.f1_score(y, pred, labels=labels, average=average, zero_division=0), abs=1e-12)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()
    assert report["confusion"]["counts"] == m["confusion_matrix"]


def test_confusion_mistakes_calibration_and_abstention_are_consistent(written):
    _, report = written
    counts = np.array(report["confusion"]["counts"])
    top = report["confusion"]["most_confused"][0]
    classes = report["confusion"]["classes"]
    off_diagonal = counts - np.diag(np.diag(counts))
    assert top["count"] == off_diagonal.max()
    assert counts[classes.index(top["true"]), classes.index(top["predicted"])] == top["count"]
    np.testing.assert_allclose(np.array(report["confusion"]["normalized"]).sum(1), 1.0)
    mistakes = report["mistakes"]
    assert mistakes["count_wrong"] == off_diagonal.sum()
    losses = [e["loss"] for e in mistakes["examples"]]
    assert losses == sorted(losses, reverse=True) and all(e["true"] != e["predicted"] for e in mistakes["examples"])
    cal = report["calibration"]
    assert cal["guard"]["decision"] in ("accepted", "rejected")
    assert cal["guard"]["n"] == report["summary"]["split_sizes"]["val"]
    assert cal["temperature"] == pytest.approx(cal["guard"]["temperature"], rel=1e-4)
    curve = report["abstention"]["curve"]
    assert curve[0]["coverage"] == 1.0 and curve[0]["accuracy"] == pytest.approx(report["metrics"]["accuracy"])
    assert all(a["coverage"] >= b["coverage"] for a, b in zip(curve, curve[1:]))


def test_report_sections_analyses_and_reproduce(imperfect_run, written):
    _, report = written
    summary = report["summary"]
    model = Predictor.from_run(imperfect_run).model
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert summary["flops_per_example"] == 2 * (3 * 16 * 16 * 32 + 32 * 4)  # MLP 768 -> 32 -> 4
    assert summary["split_sizes"] == json.loads((imperfect_run / "split.json").read_text())["sizes"]
    assert summary["data_hash_matches"] is True
    assert sum(report["data"]["class_counts"]["test"]) == report["metrics"]["n"]
    assert set(report["data"]["samples"]) == set(summary["classes"])
    assert len(report["training"]["history"]) == 3
    assert report["training"]["stop_reason"] == "completed"
    assert report["training"]["stop_detail"] == "ran all 3 planned epochs"
    # blocks images carry per-pixel noise: no test image repeats a training image, even nearly
    leakage = report["data"]["leakage"]
    assert (leakage["exact"], leakage["near"], leakage["pairs"]) == (0, 0, [])
    robustness = report["robustness"]
    assert robustness["examples"] == report["metrics"]["n"]  # fewer than the report's cap
    # the curves perturb the bare network's inputs (no test-time views): its plain test accuracy
    test = RunFolder.open(imperfect_run).load_data().part("test")
    bare = float((predict_logits(model, test.x, torch.device("cpu")).argmax(1) == test.y).double().mean())
    for kind, (levels, identity, _) in CORRUPTIONS.items():
        assert [p["level"] for p in robustness[kind]] == list(levels)
        unchanged = next(p for p in robustness[kind] if p["level"] == identity)
        assert unchanged["accuracy"] == pytest.approx(bare, abs=1e-12)
    doctor = report["doctor"]
    assert doctor["error"] is None
    assert doctor["dead_relu"]["units"] == 32 and doctor["dead_relu"]["dead"] == sum(
        layer["dead"] for layer in doctor["dead_relu"]["layers"])
    suspects = doctor["mislabelled"]["count"]
    assert 0 < suspects <= report["metrics"]["n"] and "error" not in doctor["mislabelled"]
    finding = next(f for f in doctor["findings"] if f["rule"] == "mislabelled")
    assert finding["finding"].startswith(f"{suspects} test examples")
    assert report["reproduce"]["seed"] == 0 and "data:" in report["reproduce"]["config_yaml"]


def test_html_has_every_section_with_an_explanation_and_no_network(written):
    html_path, _ = written
    text = html_path.read_text()
    for anchor in SECTION_IDS:
        match = re.search(rf'<section id="{anchor}"><h2>[^<]+</h2><p class="explain">([^<]+)</p>', text)
        assert match and len(match.group(1)) > 30, anchor
    assert text.count("<section ") == 12
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "@import" not in text and "url(" not in text
    assert re.findall(r'src="([^"]*)"', text) and all(
        src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', text))
    assert "@media print" in text


def _strict_json(path):
    """report.json parsed by a parser that refuses NaN and +-Infinity (which json.loads accepts)."""
    def refuse(constant):
        raise AssertionError(f"{path.name}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_report_json_is_strict_json(written):
    html_path, report = written
    assert _strict_json(html_path.with_suffix(".json")) == report


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a 0/0 or log(0) anywhere fails the test
def test_report_on_data_missing_a_class_is_strict_json_with_recomputed_numbers(imperfect_run, tmp_path):
    """Evaluation data without any 'stripe' and with 5 copies of training images: ROC-AUC, recall
    and the confusion row of 'stripe' are 0/0 and the mislabel threshold of 'stripe' is undefined,
    yet report.json stays strict JSON, every analysis runs, and the numbers equal those recomputed here."""
    own = load(DataConfig(source="blocks:n=300,size=16,task=shape"))
    other = load(DataConfig(source="blocks:n=80,size=16,task=shape,seed=9"))
    with np.load(imperfect_run / "split.npz") as split:
        train = split["train"]
    stripe = own.classes.index("stripe")
    copies = train[own.y.numpy()[train] != stripe][:5]
    keep = other.y.numpy() != stripe
    names = np.array(own.classes)
    x = np.concatenate([other.x.numpy()[keep], own.x.numpy()[copies]])
    labels = np.concatenate([names[other.y.numpy()[keep]], names[own.y.numpy()[copies]]])
    np.savez(tmp_path / "no-stripe.npz", x=x, y=labels)

    html = write_report(imperfect_run, data=str(tmp_path / "no-stripe.npz"), out=tmp_path)
    report = _strict_json(html.with_suffix(".json"))

    predictor = Predictor.from_run(imperfect_run)
    y = np.array([predictor.classes.index(name) for name in labels])
    logits = predictor.predict_logits_tensor(torch.from_numpy(x)).double()
    pred = logits.argmax(1).numpy()
    m = report["metrics"]
    assert m["n"] == len(y) == 65 and m["accuracy"] == pytest.approx((pred == y).mean(), abs=1e-12)
    # a class the data has no example of is not tested: no recall, left out of the macro averages
    # (ROC-AUC included); its precision counts the model's predictions of it, all wrong
    tested = [i for i, name in enumerate(predictor.classes) if name != "stripe"]
    proba = predictor.probabilities(logits.float()).astype(np.float64)  # with the model's temperature, as reported
    assert m["roc_auc_ovr_macro"] == pytest.approx(
        np.mean([skm.roc_auc_score(y == i, proba[:, i]) for i in tested]), abs=1e-6)
    assert "'stripe'" in m["roc_auc_reason"]
    stripe = predictor.classes.index("stripe")
    n_wrong = int((pred == stripe).sum())
    assert m["per_class"]["stripe"] == {"precision": 0.0 if n_wrong else None, "recall": None, "f1": None,
                                        "support": 0, "predicted": n_wrong, "tested": False}
    assert m["not_tested"] == ["stripe"]
    assert m["averages"]["macro"]["recall"] == pytest.approx(
        skm.recall_score(y, pred, labels=tested, average="macro", zero_division=0))
    assert "not tested: stripe" in html.read_text()
    row = predictor.classes.index("stripe")
    assert report["confusion"]["counts"][row] == [0, 0, 0, 0]
    assert report["confusion"]["normalized"][row] == [0.0, 0.0, 0.0, 0.0]
    assert report["data"]["class_counts"]["evaluation"] == np.bincount(y, minlength=4).tolist()
    assert report["data"]["leakage"]["exact"] == 5
    for analysis in (report["robustness"], report["doctor"]["mislabelled"], report["doctor"]["dead_relu"]):
        assert "error" not in analysis
    assert report["doctor"]["error"] is None
    assert report["mistakes"]["count_wrong"] == int((pred != y).sum())
    # calibration at T = 1: log loss, and ECE over 15 equal-width bins of the top probability
    proba = logits.softmax(1).numpy()
    cal = report["calibration"]
    assert cal["log_loss_before"] == pytest.approx(skm.log_loss(y, proba, labels=np.arange(4)), rel=1e-9)
    confidence = proba.max(1)
    bins = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)
    ece = sum(abs((pred == y)[bins == b].sum() - confidence[bins == b].sum()) for b in range(15)) / len(y)
    assert cal["ece_before"] == pytest.approx(ece, abs=1e-9)
    assert cal["reliability_before"]["count"] == np.bincount(bins, minlength=15).tolist()


def test_table_run_without_validation_split(tmp_path):
    """Two classes of table rows and no validation split: a feature summary instead of images, no
    robustness curves (with the reason), no temperature fit, binary ROC-AUC and top-1 only."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 5)).astype(np.float32)
    np.savez(tmp_path / "rows.npz", x=x, y=(x[:, 0] + x[:, 1] > 0).astype(np.int64))
    cfg = quick_config(tmp_path, source=str(tmp_path / "rows.npz"), **{"data.val_fraction": 0})
    run = train_run(cfg, report=False).path
    html = write_report(run)
    report = json.loads(html.with_suffix(".json").read_text())
    assert report["summary"]["kind"] == "table" and html == run / "report.html"
    assert report["data"]["features"]["count"] == 5 and len(report["data"]["features"]["rows"]) == 5
    assert "table" in report["robustness"]["skipped"]
    assert report["calibration"]["guard"] is None and report["calibration"]["temperature"] == 1.0
    assert list(report["metrics"]["top_k_accuracy"]) == ["1"] and report["metrics"]["roc_auc_ovr_macro"] > 0.5
    assert "no validation split" in html.read_text()


def test_report_paths_for_other_data_and_out(tmp_path):
    run = tmp_path / "run"
    assert report_path(run) == run / "report.html"
    assert report_path(run, "blocks:n=200,seed=9") == run / "report-blocks_n_200_seed_9.html"
    assert report_path(run, out=tmp_path) == tmp_path / "report.html"
    assert report_path(run, out=tmp_path / "x.html") == tmp_path / "x.html"


def test_a_failing_report_warns_and_leaves_the_run_alone(imperfect_run, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(imperfect_run, broken)
    (broken / "split.npz").unlink()
    before = sorted(p.name for p in broken.iterdir())
    with pytest.warns(UserWarning, match="report not written"):
        assert try_write_report(broken) is None
    assert sorted(p.name for p in broken.iterdir()) == before


def test_importing_the_report_package_has_no_matplotlib_side_effect():
    code = "import sys, neuroclass.evaluation.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_plots_render_class_names_from_report_numbers():
    from neuroclass.evaluation.report import plots

    uri = plots.confusion_heatmaps([[3, 1], [0, 4]], [[0.75, 0.25], [0.0, 1.0]], ["cat", "dog"])
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))
    assert image.format == "PNG" and image.width > 100 and image.height > 100


def test_training_section_reads_the_stop_reason_value_and_shows_old_runs_words():
    from types import SimpleNamespace

    from neuroclass.config import load_config
    from neuroclass.evaluation.report.collect import training_section
    from neuroclass.evaluation.report.sections import training

    def section(timing: dict) -> dict:
        return training_section(SimpleNamespace(timing=timing, history=[{"epoch": 1}], cfg=load_config()))

    budget = section({"stop_reason": "time_budget", "stop_detail": "time budget reached after 9 steps"})
    assert budget["stop_reason"] == "time_budget" and budget["stop_detail"] == "time budget reached after 9 steps"
    old = section({"stop_reason": "time budget reached"})  # a run folder from before the enum
    assert old["stop_reason"] is None and old["stop_detail"] == "time budget reached"
    assert "time budget reached" in training({"training": old}, {})
    no_words = section({"stop_reason": "early_stopping"})
    assert "early stopping" in training({"training": no_words}, {})
    assert no_words["resumed"] == [] and "resumed" not in training({"training": no_words}, {})


def test_training_section_says_when_and_where_a_run_was_resumed():
    from types import SimpleNamespace

    from neuroclass.config import load_config
    from neuroclass.evaluation.report.collect import training_section
    from neuroclass.evaluation.report.sections import training

    timing = {"stop_reason": "completed", "resumed": [{"at": "2026-01-01T12:00:00+00:00", "epoch": 2, "step": 8,
                                                       "seconds_before": 80.0}]}
    section = training_section(SimpleNamespace(timing=timing, history=[{"epoch": 1}], cfg=load_config()))
    assert section["resumed"] == [{"at": "2026-01-01T12:00:00+00:00", "epoch": 2, "step": 8}]
    assert "2026-01-01T12:00:00+00:00 at epoch 2, step 8" in training({"training": section}, {})


@pytest.mark.parametrize("k", [2, 3, 10])
def test_confusion_chart_text_stays_inside_the_figure_and_titles_inside_their_panels(k):
    import matplotlib

    from neuroclass.evaluation.report import plots

    classes = ["circle", "square", "cross", "triangle", "hexagon"] * 2
    counts = (np.eye(k, dtype=int) * 5 + 1).tolist()
    normalized = [[v / sum(row) for v in row] for row in counts]
    with matplotlib.rc_context(plots.STYLE):
        figure = plots.confusion_heatmaps.__wrapped__(counts, normalized, classes[:k])
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        width, height = figure.bbox.width, figure.bbox.height
        for text in figure.findobj(matplotlib.text.Text):
            if text.get_visible() and text.get_text():
                box = text.get_window_extent(renderer)
                assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text
        for ax in figure.axes[:2]:  # the two heatmaps (their colour bars come after them)
            title = ax.title.get_window_extent(renderer)
            assert title.width <= ax.get_window_extent(renderer).width, ax.get_title()
