"""Each glassbox epoch records the validation balanced accuracy and macro F1 (scikit-learn's) as the
torch Trainer does, so that a search with --metric balanced_accuracy or macro_f1 reports them to
its pruner. Digits, a few epochs."""
import numpy as np
import optuna
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import balanced_accuracy_score, f1_score

from neuroclass.api import build_config
from neuroclass.glassbox import Network, fit, glassbox_options
from neuroclass.pipeline import train
from neuroclass.tuning.search import tune
from neuroclass.tuning.settings import TuneSettings

QUICK = ["train.threads=1", "train.tta=none", "data.limit=400"]


def test_each_epoch_records_the_balanced_accuracy_and_macro_f1_of_its_validation_predictions():
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    x_val, y_val = x[1200:], y[1200:]
    net = Network(glassbox_options({"hidden": [16]}), 64, 10, seed=0)
    history = fit(net, x[:1200], y[:1200], x_val, y_val, epochs=2, threads=1)
    last = history.epochs[-1]
    predicted = net.predict(x_val)
    assert last.val_balanced_accuracy == pytest.approx(balanced_accuracy_score(y_val, predicted))
    assert last.val_macro_f1 == pytest.approx(f1_score(y_val, predicted, average="macro"))
    assert last.val_accuracy == pytest.approx((predicted == y_val).mean())
    no_val = fit(Network(glassbox_options({"hidden": [16]}), 64, 10), x[:200], y[:200], epochs=1)
    assert (no_val.epochs[0].val_balanced_accuracy, no_val.epochs[0].val_macro_f1) == (None, None)


def test_a_runs_history_has_the_trainers_validation_columns(tmp_path):
    result = train(build_config("digits", "glassbox", epochs=2, overrides=QUICK, out=tmp_path, quiet=True),
                   report=False)
    assert [list(row) for row in result.history] == [
        ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_balanced_accuracy", "val_macro_f1", "lr",
         "time"]] * 2
    assert all(0 < row["val_balanced_accuracy"] <= 1 and 0 < row["val_macro_f1"] <= 1 for row in result.history)


@pytest.mark.parametrize("metric", ["balanced_accuracy", "macro_f1"])
def test_a_search_by_balanced_accuracy_or_macro_f1_reports_each_epoch_to_the_pruner(tmp_path, metric):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: [0.001]\n")
    base = build_config("digits", "glassbox", epochs=3, overrides=QUICK, out=tmp_path / "runs", quiet=True)
    result = tune(TuneSettings(base, space=str(space), trials=1, sampler="random", metric=metric, report=False))
    (trial,) = optuna.load_study(study_name=result.folder.name,
                                 storage=f"sqlite:///{result.folder / 'study.db'}").trials
    reported = trial.intermediate_values
    assert reported and max(reported) == 20  # the schedule's last point: after the last epoch
    assert 0 < reported[20] <= 1
