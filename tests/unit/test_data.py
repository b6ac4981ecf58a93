"""Data sources, validation helpers and splits on small generated files."""
import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from neuroclass.config import DataConfig
from neuroclass.data import from_arrays, load, split
from neuroclass.data.blocks import make_blocks


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_idx_folder_keeps_the_shipped_test_split(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (50, 6, 6)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(50) % 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, (20, 6, 6)))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(20) % 3)
    ds = load(DataConfig(source=str(tmp_path)))
    assert ds.x.shape == (70, 1, 6, 6) and ds.x.dtype == torch.uint8
    assert list(ds.parts["test"]) == list(range(50, 70))
    s = split(ds, val_fraction=0.2, test_fraction=0.5, seed=0)
    assert len(s.test) == 20 and len(s.val) == 10 and len(s.train) == 40
    assert s.method["test"] == "shipped" and s.method["val"] == "stratified"


def test_split_is_stratified_seeded_and_disjoint():
    ds = make_blocks(n=400)
    a = split(ds, 0.1, 0.2, seed=1)
    b = split(ds, 0.1, 0.2, seed=1)
    c = split(ds, 0.1, 0.2, seed=2)
    assert all(np.array_equal(a.indices[k], b.indices[k]) for k in a.indices)
    assert not np.array_equal(a.indices["test"], c.indices["test"])
    together = np.concatenate(list(a.indices.values()))
    assert len(np.unique(together)) == len(together) == 400
    assert np.bincount(a.test.y.numpy()).tolist() == [20, 20, 20, 20]  # balanced like the whole


def test_the_random_fallback_keeps_a_single_example_for_training():
    """4 examples to carve from 6 classes cannot be stratified; the lone example is never carved."""
    from neuroclass.data.split import _carve
    labels = np.concatenate([np.repeat(np.arange(5), 20), [5]])
    index = np.arange(len(labels))
    for seed in range(200):
        rest, carved, how = _carve(index, labels, 0.04, seed)
        assert how == "random" and len(carved) == 4
        assert 100 in rest and 100 not in carved
        assert np.array_equal(np.sort(np.concatenate([rest, carved])), index)


def test_the_random_fallback_carves_nothing_when_only_single_examples_are_left():
    from neuroclass.data.split import _carve
    rest, carved, how = _carve(np.arange(4), np.array([0, 1, 2, 3]), 0.25, 0)
    assert how == "none" and len(carved) == 0 and len(rest) == 4


def test_table_categorical_codes_and_label_names(tmp_path):
    df = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0] * 5, "shade": ["dark", "light"] * 10,
                       "kind": ["cat", "dog", "cat", "dog"] * 5})
    path = tmp_path / "pets.csv"
    df.to_csv(path, index=False)
    ds = load(DataConfig(source=str(path), label_column="kind", categorical=["shade"]))
    assert ds.kind == "table" and ds.x.shape == (20, 2)  # raw rows: one-hot is fitted after the split
    assert ds.preprocessing["feature_names"] == ["size", "shade"]
    assert ds.preprocessing["table"]["columns"][1]["categories"] == ["dark", "light"]
    assert ds.classes == ["cat", "dog"]
    assert ds.x[:4, 1].tolist() == [0, 1, 0, 1]  # each row's category code


def test_parquet_table(tmp_path):
    df = pd.DataFrame({"a": np.arange(20.0), "y": [0, 1] * 10})
    df.to_parquet(tmp_path / "t.parquet")
    ds = load(DataConfig(source=str(tmp_path / "t.parquet"), label_column="y"))
    assert ds.x.shape == (20, 1) and ds.classes == ["0", "1"]


@pytest.mark.parametrize("layout", ["nhw", "nhwc", "nchw", "float01"])
def test_arrays_of_every_layout_become_uint8_nchw(layout):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (10, 3, 8, 8)).astype(np.uint8)
    x = {"nhw": base[:, 0], "nhwc": base.transpose(0, 2, 3, 1), "nchw": base,
         "float01": base.astype(np.float32) / 255.0}[layout]
    ds = from_arrays(x, np.arange(10) % 2)
    expected = base[:, :1] if layout == "nhw" else base
    assert ds.x.dtype == torch.uint8 and np.array_equal(ds.x.numpy(), expected)


def test_limit_caps_each_shipped_split():
    ds = load(DataConfig(source="digits", limit=100))
    assert len(ds) == 100


def test_content_hash_tracks_the_data():
    a, b = make_blocks(n=32, seed=0), make_blocks(n=32, seed=0)
    assert a.content_hash() == b.content_hash()
    b.x[0, 0, 0, 0] ^= 1
    assert a.content_hash() != b.content_hash()


def test_digits_builtin_scaled_to_bytes():
    ds = load(DataConfig(source="digits"))
    assert ds.x.shape == (1797, 1, 8, 8) and int(ds.x.max()) == 255 and ds.classes[0] == "0"


def test_counts_in_messages_take_the_number_of_their_noun():
    from neuroclass.errors import counted
    assert [counted(n, "epoch") for n in (0, 1, 2, 12000)] == ["0 epochs", "1 epoch", "2 epochs",
                                                              "12,000 epochs"]
    assert counted(1, "class", "classes") == "1 class" and counted(3, "class", "classes") == "3 classes"
    with pytest.raises(Exception, match="1 input but 2 labels"):
        from_arrays(np.zeros((1, 4, 4), np.uint8), np.array([0, 1]))
