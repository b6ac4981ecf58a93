"""explain says how the run's training loss differed from the plain loss of one example that it
steps through: class weights (train.class_weight=auto) with the weight of each class, a balanced
sampler (data.sampler=balanced) with each class's draws, label smoothing, an L1 penalty, mixup, and
a family's own loss (capsnet's margin loss); on the page, in the terminal and in the JSON."""
import html
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from explain_formulas import check_formulas
from sklearn.utils.class_weight import compute_class_weight

from neuroclass.cli import main
from neuroclass.config import ModelConfig, load_config
from neuroclass.evaluation.explain import explain_run, summary_lines, write_explanation
from neuroclass.evaluation.explain_format import number
from neuroclass.evaluation.explain_training import setup_lines, training_setup
from neuroclass.models import create
from neuroclass.pipeline import train
from neuroclass.runs import RunFolder

QUICK = ["train.epochs=2", "train.quiet=true", "train.batch_size=32", "train.threads=1", "train.tta=none",
         "data.label_column=label", "model.name=mlp", "model.options.hidden=[8]"]
N_COMMON, N_RARE = 170, 30


def imbalanced_csv(folder):
    """Two features; the rare class sits a little off the common one."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(N_COMMON, 2)), rng.normal(size=(N_RARE, 2)) + 1.5])
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": ["common"] * N_COMMON + ["rare"] * N_RARE})
    frame.sample(frac=1.0, random_state=0).to_csv(folder / "rows.csv", index=False)
    return folder / "rows.csv"


def run_of(csv, *extra):
    cfg = load_config(overrides=[f"data.source={csv}", f"out={csv.parent / 'runs'}", *QUICK, *extra])
    return train(cfg, report=False).path


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    return imbalanced_csv(tmp_path_factory.mktemp("explain-training"))


@pytest.fixture(scope="module")
def weighted_run(table_csv):
    return run_of(table_csv, "train.class_weight=auto")  # and the default label smoothing 0.1


@pytest.fixture(scope="module")
def sampled_run(table_csv):
    return run_of(table_csv, "data.sampler=balanced", "train.label_smoothing=0")


def training_labels(run):
    return RunFolder.open(run).load_data(quiet=True).part("train").y.numpy()


def test_class_weights_are_shown_per_class_with_the_runs_own_loss(weighted_run, tmp_path):
    found = explain_run(weighted_run, index=0, device="cpu")
    setup, classes, y = found.training, found.classes, found.output.label
    labels = training_labels(weighted_run)
    expected = compute_class_weight("balanced", classes=np.arange(2), y=labels)  # N / (K n_k)
    assert classes == ["common", "rare"] and expected[1] > 2 * expected[0]
    np.testing.assert_allclose(setup.weights, expected, rtol=1e-6)
    assert setup.counts.tolist() == np.bincount(labels).tolist() and setup.draws is None
    # the run's loss on this example: the smoothed cross-entropy (smoothing 0.1); alone, the
    # example's class weight cancels out of the weighted mean
    logits = torch.from_numpy(found.output.logits)[None]
    own = F.cross_entropy(logits, torch.tensor([y]), label_smoothing=0.1)
    assert setup.example_loss == pytest.approx(float(own), rel=1e-4)
    assert setup.example_loss != pytest.approx(found.output.loss, rel=1e-3)  # smoothing changes it

    weights = [f"{name} {number(expected[i], 3)} ({setup.counts[i]} examples)" for i, name in enumerate(classes)]
    lines = summary_lines(found)
    line = next(line for line in lines if line.startswith("training: class weights (train.class_weight=auto"))
    assert all(w in line for w in weights)
    assert "training: label smoothing 0.1 (train.label_smoothing): training's target was 0.950 for the true class " \
        "and 0.050 for the other class, rather than 1 and 0" in lines
    assert any(line.startswith("training: with it, each class counted about equally") for line in lines)
    assert (f"the run's own training loss for this example alone (label smoothing 0.1 and class weights) = "
            f"{number(setup.example_loss)}") in "\n".join(lines)
    document = write_explanation(found, tmp_path).read_text()
    check_formulas(found, document)
    text = html.unescape(document)
    assert all(w in text for w in weights) and "loss weight (train.class_weight=auto)" in text
    assert "with label smoothing 0.1 and class weights; the step here uses the plain loss above" in text
    assert number(setup.example_loss) in text
    record = json.loads(found.page.with_suffix(".json").read_text())["training"]
    np.testing.assert_allclose(record["weights"], expected, rtol=1e-6)
    assert record["class_weight"] == "auto" and record["counts"] == setup.counts.tolist()


def test_a_balanced_sampler_is_shown_with_each_classs_draws(sampled_run, tmp_path, capsys):
    found = explain_run(sampled_run, index=1, device="cpu")
    setup = found.training
    counts = np.bincount(training_labels(sampled_run))
    draws = counts.sum() / (2 * counts)  # an epoch of N draws, half of them of each class
    np.testing.assert_allclose(setup.draws, draws, rtol=1e-9)
    assert setup.weights is None and setup.example_loss is None  # alone, an example's loss is the plain one
    assert float(counts @ setup.draws) == pytest.approx(counts.sum())
    text = html.unescape(write_explanation(found, tmp_path).read_text())
    assert "draws per example an epoch (data.sampler=balanced)" in text
    assert f"rare {number(draws[1], 3)} ({counts[1]} examples)" in text
    assert "the run's own training loss" not in text
    assert main(["explain", str(sampled_run), "--index", "1", "--out", str(tmp_path / "pages/")]) == 0
    out = capsys.readouterr().out
    assert "training: a balanced sampler (data.sampler=balanced)" in out
    assert "training: with it, each class counted about equally in training" in out
    assert f"common {number(draws[0], 3)} ({counts[0]} examples)" in out


def test_data_that_cannot_be_loaded_leaves_the_weights_unknown_not_the_explanation(tmp_path):
    csv = imbalanced_csv(tmp_path)
    run = run_of(csv, "train.class_weight=auto", "train.label_smoothing=0")
    pd.read_csv(csv).head(2).to_csv(tmp_path / "two.csv", index=False)
    csv.unlink()
    found = explain_run(run, tmp_path / "two.csv", label="rare", device="cpu")
    assert found.training.weights is None and "rows.csv" in found.training.missing
    (line,) = [line for line in summary_lines(found) if line.startswith("training: class weights")]
    assert "not shown, since the run's data could not be loaded" in line
    assert found.output.loss is not None and found.update is not None


SHAPE = (1, 28, 28)


def untrained(family: str, classes: int = 4):
    torch.manual_seed(0)
    return create(ModelConfig(name=family), SHAPE, classes, torch.full((1, 1, 1, 1), 0.3),
                  torch.full((1, 1, 1, 1), 0.2)).eval()


@pytest.fixture(scope="module")
def seen():
    image = torch.randint(0, 256, (1, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return untrained("mlp").standardize(image)


def test_class_weights_and_a_balanced_sampler_together_count_a_rare_class_more(seen):
    cfg = load_config(overrides=["train.class_weight=auto", "data.sampler=balanced", "train.label_smoothing=0"])
    train_y = torch.tensor([0] * 6 + [1] * 2 + [3] * 4)  # class 2 has no training example
    setup = training_setup(cfg, untrained("mlp"), seen, 1, 4, train_y)
    expected = np.ones(4)
    expected[[0, 1, 3]] = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=train_y.numpy())
    np.testing.assert_allclose(setup.weights, expected, rtol=1e-6)
    np.testing.assert_allclose(setup.draws, [12 / 18, 12 / 6, 0, 12 / 12])  # N / (K present n_k)
    assert setup.counts.tolist() == [6, 2, 0, 4] and setup.example_loss is None
    lines = setup_lines(setup, list("abcd"))
    assert "a 0.667 (6 examples), b 2.000 (2 examples), c 1.000 (0 examples), d 1.000 (4 examples)" in lines[0]
    assert "a 0.667 (6 examples), b 2.000 (2 examples), c 0 (0 examples), d 1.000 (4 examples)" in lines[1]
    assert lines[2].startswith("with both, class weights and a balanced sampler, a rare class counted more")


def test_a_plain_run_has_nothing_to_add(seen):
    cfg = load_config(overrides=["train.label_smoothing=0"])
    assert training_setup(cfg, untrained("mlp"), seen, 1, 4) is None


def test_capsnets_own_margin_loss_is_named_and_computed_on_its_lengths(seen):
    model = untrained("capsnet")
    setup = training_setup(load_config(overrides=["train.label_smoothing=0"]), model, seen, 2, 4)
    with torch.no_grad():
        lengths = model.net(seen)[0].double().numpy()
    target = np.eye(4)[2]
    by_hand = np.sum(target * np.maximum(0, 0.9 - lengths) ** 2
                     + 0.5 * (1 - target) * np.maximum(0, lengths - 0.1) ** 2)  # capsnet's margin loss
    assert setup.own_loss == "margin loss" and setup.output == "lengths"
    assert setup.example_loss == pytest.approx(by_hand, rel=1e-5)
    assert setup_lines(setup, list("abcd")) == [
        "the family trains with its own margin loss on the network's lengths, not with the cross-entropy of the "
        "steps shown"]


def test_label_smoothing_l1_and_mixup_are_each_one_sentence(seen):
    cfg = load_config(overrides=["train.label_smoothing=0.2", "optim.l1=0.0001", "augment.enabled=true",
                                 "augment.mixup=0.4"])
    setup = training_setup(cfg, untrained("mlp"), seen, None, 4)
    assert setup.example_loss is None  # no label, no loss
    assert setup_lines(setup, list("abcd")) == [
        "label smoothing 0.2 (train.label_smoothing): training's target was 0.850 for the true class and 0.050 for "
        "each of the other 3, rather than 1 and 0",
        "an L1 penalty (optim.l1=0.0001): each batch's loss adds 0.0001 * sum |w| over the weight matrices, the "
        "same for every example",
        "mixup (augment.mixup=0.4): training mixed pairs of images and their labels; it never read one image with "
        "its own label, as here"]
    table_row = seen.flatten(1)  # mixup applies to images only
    assert training_setup(load_config(overrides=["train.label_smoothing=0", "augment.enabled=true",
                                                 "augment.mixup=0.4"]), untrained("mlp"), table_row, 0, 4) is None
