import json

import numpy as np
import pytest

from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.mislabel import likely_mislabelled

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture(scope="module")
def planted():
    """600 examples the model gets right with confidence 0.6-0.95; 20 of them (every 30th) have a
    wrong label, and for those the model is 0.97-0.99 sure of the true class."""
    rng = np.random.default_rng(0)
    n, k = 600, 3
    true = rng.integers(0, k, n)
    confidence = rng.uniform(0.6, 0.95, n)
    flipped = np.arange(0, n, 30)
    confidence[flipped] = np.linspace(0.97, 0.99, len(flipped))
    rest = rng.dirichlet([1.0, 1.0], n) * (1 - confidence)[:, None]
    proba = np.zeros((n, k))
    for i in range(n):
        others = [c for c in range(k) if c != true[i]]
        proba[i, true[i]], proba[i, others] = confidence[i], rest[i]
    given = true.copy()
    given[flipped] = (true[flipped] + 1 + rng.integers(0, 2, len(flipped))) % k
    return proba.astype(np.float32), given, true, flipped


def test_planted_flipped_labels_are_found_and_ranked_by_margin(planted):
    proba, given, true, flipped = planted
    found = likely_mislabelled(proba, given, CLASSES, top=5)
    assert found["count"] == len(flipped)
    assert len(found["examples"]) == 5
    top = found["examples"][0]
    margin = proba[flipped, true[flipped]] - proba[flipped, given[flipped]]
    assert top["index"] == flipped[margin.argmax()]
    assert top["label"] == CLASSES[given[top["index"]]] and top["predicted"] == CLASSES[true[top["index"]]]
    margins = [e["predicted_probability"] - e["label_probability"] for e in found["examples"]]
    assert margins == sorted(margins, reverse=True)
    assert json.loads(json.dumps(found)) == found
    everything = likely_mislabelled(proba, given, CLASSES, top=100)
    assert sorted(e["index"] for e in everything["examples"]) == flipped.tolist()


def test_clean_labels_give_no_suspects(planted):
    proba, _, true, _ = planted
    found = likely_mislabelled(proba, true, CLASSES)
    assert (found["count"], found["examples"]) == (0, [])
    assert "confident learning" in found["method"]


def test_a_class_without_examples_is_never_predicted():
    proba = np.array([[0.9, 0.0, 0.1], [0.2, 0.0, 0.8], [0.05, 0.9, 0.05]])
    found = likely_mislabelled(proba, np.array([0, 2, 0]), CLASSES)
    # row 2 is unsure of its label 'cat', but 'dog' has no examples and so no threshold
    assert found["count"] == 0


@pytest.mark.parametrize("proba, y, match", [
    (np.ones((4, 2)) / 2, np.zeros(4, int), "K = 3"),
    (np.ones((4, 3)) / 3, np.zeros(3, int), "one label"),
    (np.ones((4, 3)) / 3, np.array([0, 1, 2, 3]), "0..2"),
    (np.ones((4, 3)) / 3, np.zeros(4), "integers"),
    (np.full((4, 3), np.nan), np.zeros(4, int), "finite"),
])
def test_bad_input_raises_one_clear_error(proba, y, match):
    with pytest.raises(NeuroclassError, match=match):
        likely_mislabelled(proba, y, CLASSES)
