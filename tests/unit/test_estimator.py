import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from neuroclass import NeuralClassifier, Predictor
from neuroclass.data.arrays import from_arrays
from neuroclass.data.blocks import make_blocks
from neuroclass.pipeline import build, finalize, fit, prepare, process_state, write_run
from neuroclass.runs import RunFolder

# Small and fast: scikit-learn's checks fit dozens of times on tiny data sets (up to 300 rows).
# One thread: several threads on few busy cores make each small step many times slower.
FAST = {"epochs": 2, "lr": 0.03, "threads": 1, "device": "cpu", "seed": 0,
        "model_options": {"hidden": [8]}}


@parametrize_with_checks([NeuralClassifier(**FAST)])
def test_scikit_learn_checks(estimator, check):
    check(estimator)


def blobs(labels: np.ndarray, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Well separated clusters, one per label: any mix-up of labels shows in the accuracy."""
    X, codes = make_blobs(n_samples=n, centers=len(labels), cluster_std=0.5, random_state=0)
    return X, labels[codes]


@pytest.mark.parametrize("labels", [np.array(["dog", "cat", "emu"]), np.array([30, 10, 20]),
                                    np.array([-1, -7, 3]), np.array([2.0, 1.0, 3.0]),
                                    np.array([True, False])],
                         ids=["strings", "ints", "negative-ints", "integral-floats", "bools"])
def test_predictions_are_the_fitted_labels(labels):
    X, y = blobs(labels)
    clf = NeuralClassifier(**{**FAST, "epochs": 3}).fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(X)
    assert pred.dtype == y.dtype and set(pred) <= set(labels)
    np.testing.assert_array_equal(pred, clf.classes_[clf.predict_proba(X).argmax(axis=1)])
    assert (pred == y).mean() > 0.9  # each column of predict_proba belongs to its own label


def test_predict_proba_is_the_predictors(tmp_path):
    X, y = blobs(np.array(["b", "a", "c"]))
    clf = NeuralClassifier(**FAST).fit(X, y)
    x = torch.from_numpy(X.astype(np.float32))
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predictor_.predict_proba_tensor(x))

    # the same config, seed and data through the pipeline into a run folder: the same model
    classes, codes = np.unique(y, return_inverse=True)
    dataset = from_arrays(X.astype(np.float32), codes, classes=list(classes), image=False)
    cfg = replace(clf.config_, out=str(tmp_path))
    with process_state(cfg):
        prep = prepare(cfg, dataset=dataset, require_test=False)
        model, tuning = build(prep)
        done = finalize(prep, model, fit(prep, model, tuning))
        path = write_run(RunFolder.create(tmp_path, "estimator"), prep, done)
    loaded = Predictor.from_run(path, device="cpu")
    assert loaded.classes == list(clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba_tensor(x), clf.predict_proba(X), atol=1e-6)


def global_state() -> dict:
    return {"torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
            "threads": torch.get_num_threads(), "warnings": list(warnings.filters),
            "grad": torch.is_grad_enabled(),
            "deterministic": torch.are_deterministic_algorithms_enabled()}


def assert_same_state(before: dict, after: dict) -> None:
    assert torch.equal(before["torch_rng"], after["torch_rng"])
    for a, b in zip(before["numpy_rng"], after["numpy_rng"]):
        np.testing.assert_array_equal(a, b)
    assert {k: v for k, v in before.items() if k not in ("torch_rng", "numpy_rng")} == \
        {k: v for k, v in after.items() if k not in ("torch_rng", "numpy_rng")}


@pytest.mark.parametrize("threads", [None, "other"])
def test_fit_and_predict_leave_global_state_alone(threads, capsys):
    torch.manual_seed(123)
    np.random.seed(123)
    X, y = blobs(np.array([0, 1, 2]), n=60)
    other = torch.get_num_threads() + 1  # differs from the process's count, so it must be restored
    clf = NeuralClassifier(**{**FAST, "threads": other if threads else None})
    before = global_state()
    clf.fit(X, y)
    assert_same_state(before, global_state())
    clf.predict(X), clf.predict_proba(X), clf.score(X, y)
    assert_same_state(before, global_state())
    assert capsys.readouterr() == ("", "")  # the library never prints


def test_images_bad_input_is_refused():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 2
    clf = NeuralClassifier(**{**FAST, "model": "mlp", "epochs": 1})
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(images, y[:-1])
    for bad, word in ((np.nan, "NaN"), (np.inf, "infinity")):
        floats = images / 255.0
        floats[3, 2, 1] = bad
        with pytest.raises(ValueError, match=word):
            clf.fit(floats, y)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        clf.fit(images, y + 0.5)
    clf.fit(images, y)
    assert clf.predict(images[:5]).shape == (5,)
    assert not hasattr(clf, "n_features_in_")  # images have no feature count
    with pytest.raises(ValueError, match=r"shape \(1, 4, 4\) but the model expects \(1, 8, 8\)"):
        clf.predict(images[:5, :4, :4])
    with pytest.raises(ValueError, match="expected images"):
        clf.predict(images[:5].reshape(5, -1))
    rows = NeuralClassifier(**{**FAST, "epochs": 1}).fit(images.reshape(40, -1), y)
    assert rows.n_features_in_ == 64
    with pytest.raises(ValueError, match="dim 3"):
        rows.predict(images[:5])


def test_cross_val_score_on_digits_table():
    X, y = load_digits(return_X_y=True)
    scores = cross_val_score(NeuralClassifier(model="mlp", epochs=8, threads=1,
                                              model_options={"hidden": [64]}), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.85


def test_images_string_labels_and_probabilities():
    ds = make_blocks(n=400, size=16)
    X = ds.x.numpy().transpose(0, 2, 3, 1)  # (N, H, W, C) as users hold images
    names = np.array(["red", "green", "blue", "yellow"])
    y = names[ds.y.numpy()]
    clf = NeuralClassifier(epochs=10, batch_size=32, threads=1,
                           model_options={"channels": [8], "hidden": 16}).fit(X[:350], y[:350])
    assert set(clf.classes_) == set(names)
    proba = clf.predict_proba(X[350:])
    assert proba.shape == (50, 4) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert set(clf.predict(X[350:])) <= set(names)
    assert clf.score(X[350:], y[350:]) > 0.8


def test_sklearn_protocol():
    clf = NeuralClassifier(model="mlp", lr=0.01)
    assert clone(clf).get_params()["lr"] == 0.01
    clf.set_params(epochs=2)
    assert clf.epochs == 2
    assert not hasattr(clf, "model_")  # nothing learned before fit
    with pytest.raises(Exception, match="not fitted"):
        clf.predict(np.zeros((2, 4)))


def test_grid_search():
    """5 epochs: lr 1e-5 barely moves the weights (near chance), 1e-2 learns; the best candidate is
    in the middle of the grid, so neither "first" nor "last" would pick it by accident."""
    X, y = load_digits(return_X_y=True)
    base = NeuralClassifier(model="mlp", epochs=5, threads=1, model_options={"hidden": [32]})
    lrs = [1e-5, 1e-2, 1e-4]
    grid = GridSearchCV(base, {"lr": lrs}, cv=2).fit(X[:600], y[:600])
    results = grid.cv_results_
    assert [p["lr"] for p in results["params"]] == lrs  # every candidate fitted on every fold
    # the best candidate's fold scores are those of its lr trained alone on the same folds
    alone = cross_val_score(clone(base).set_params(lr=1e-2), X[:600], y[:600], cv=2)
    np.testing.assert_allclose([results["split0_test_score"][1], results["split1_test_score"][1]], alone)
    means = results["mean_test_score"]
    assert np.isfinite(means).all()  # a failed fit would score NaN (GridSearchCV's error_score)
    assert means[0] < 0.3 < 0.7 < means[1]  # the choice matters
    assert grid.best_params_ == {"lr": 1e-2} and grid.best_index_ == int(np.argmax(means)) == 1
    assert grid.best_score_ == means[1]
    assert grid.best_estimator_.lr == 1e-2 and grid.best_estimator_.score(X[600:900], y[600:900]) > 0.7
