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
    X, y = load_digits(return_X_y=True)
    grid = GridSearchCV(NeuralClassifier(model="mlp", epochs=10, model_options={"hidden": [32]}),
                        {"lr": [1e-3, 1e-2]}, cv=2)
    grid.fit(X[:600], y[:600])
    assert grid.best_params_["lr"] in (1e-3, 1e-2)
    assert grid.best_score_ > 0.6
