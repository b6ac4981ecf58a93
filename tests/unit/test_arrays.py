"""from_arrays with given classes: every label maps to its class, or one error names the strays."""
from __future__ import annotations

import numpy as np
import pytest

from neuroclass.data.arrays import from_arrays, load_npz
from neuroclass.errors import NeuroclassError

ROWS = np.arange(12, dtype=np.float32).reshape(6, 2)


@pytest.mark.parametrize("y, classes, codes", [
    (np.array(["b", "a", "b", "a", "b", "a"]), ["a", "b"], [1, 0, 1, 0, 1, 0]),
    # names in any order, not only sorted ones
    (np.array(["dog", "cat", "dog", "cat", "cat", "dog"]), ["dog", "cat"], [0, 1, 0, 1, 1, 0]),
    # integer labels are indices into classes (the .npz convention)
    (np.array([1, 0, 2, 0, 1, 2]), ["x", "y", "z"], [1, 0, 2, 0, 1, 2]),
    (np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0]), ["x", "y"], [1, 0, 1, 0, 1, 0]),
    # a class with no example is kept
    (np.array(["a", "c", "a", "c", "a", "c"]), ["a", "b", "c"], [0, 2, 0, 2, 0, 2]),
])
def test_labels_map_to_the_given_classes(y, classes, codes):
    ds = from_arrays(ROWS, y, classes=classes)
    assert ds.y.tolist() == codes
    assert ds.classes == classes


@pytest.mark.parametrize("y, classes, words", [
    (np.array(["a", "b", "bird", "a", "b", "zebra"]), ["a", "b"],
     ["labels 'bird', 'zebra' are not among the classes ['a', 'b']"]),
    # below every class name: a sorted search would have called it 'cat'
    (np.array(["cat", "dog", "ant", "cat", "dog", "cat"]), ["cat", "dog"],
     ["label 'ant' is not among", "'cat'"]),
    (np.array([0, 1, 2, 0, 1, 7]), ["a", "b"], ["labels 2, 7 are not class indices (0..1) of", "['a', 'b']"]),
    (np.array([0, -1, 0, 1, 0, 1]), ["a", "b"], ["label -1 is not a class index", "['a', 'b']"]),
    (np.array([f"l{i}" for i in range(6)]), ["a", "b"], ["'l0'", "and 1 more"]),
    (np.array(["a", "b", "a", "b", "a", "b"]), ["a", "b", "a"], ["classes lists 'a' more than once"]),
])
def test_labels_outside_the_classes_fail_naming_them(y, classes, words):
    with pytest.raises(NeuroclassError) as info:
        from_arrays(ROWS, y, name="arrays", classes=classes)
    message = str(info.value)
    assert message.startswith("arrays: ") and "\n" not in message, message
    for word in words:
        assert word in message, message


def test_npz_with_class_names_checks_its_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=ROWS, y=np.array([0, 1, 3, 0, 1, 0]), classes=np.array(["a", "b"]))
    with pytest.raises(NeuroclassError, match=r"d\.npz: label 3 is not a class index"):
        load_npz(path)
