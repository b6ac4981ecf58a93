import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score

from neuroclass import NeuralClassifier
from neuroclass.data.blocks import make_blocks


def test_cross_val_score_on_digits_table():
    X, y = load_digits(return_X_y=True)
    scores = cross_val_score(NeuralClassifier(model="mlp", epochs=8,
                                              model_options={"hidden": [64]}), X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.mean() > 0.85


def test_images_string_labels_and_probabilities():
    ds = make_blocks(n=400, size=16)
    X = ds.x.numpy().transpose(0, 2, 3, 1)  # (N, H, W, C) as users hold images
    names = np.array(["red", "green", "blue", "yellow"])
    y = names[ds.y.numpy()]
    clf = NeuralClassifier(epochs=10, batch_size=32,
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
    base = NeuralClassifier(model="mlp", epochs=5, model_options={"hidden": [32]})
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
