import json

import numpy as np
import pytest
import torch

from neuroclass.data.leakage import NEAR_CORRELATION, find_duplicates
from neuroclass.errors import NeuroclassError


def _images(n, seed, side=16, channels=1):
    """Smooth random images (blurred noise): realistic enough that distinct ones correlate < 0.9."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, channels, side // 4, side // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8)


def _noisy_copy(img, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    noisy = img.float() + sigma * torch.randn(img.shape, generator=g)
    return noisy.round().clamp(0, 255).to(torch.uint8)


@pytest.fixture(scope="module")
def planted():
    """300 train / 50 test images; test 3, 7 are exact copies of train 10, 20; test 5, 9, 11 are
    noisy (sigma 2 grey levels) copies of train 30, 40, 50; test 13 is train 60 made brighter."""
    train, test = _images(300, seed=0), _images(50, seed=1)
    test[3], test[7] = train[10], train[20]
    for j, i in ((5, 30), (9, 40), (11, 50)):
        test[j] = _noisy_copy(train[i], 2.0, seed=j)
    test[13] = (train[60].float() * 0.8 + 20).round().to(torch.uint8)  # other exposure, same picture
    return train, test


def test_planted_exact_and_near_copies_are_counted(planted):
    train, test = planted
    found = find_duplicates(train, test)
    assert (found["exact"], found["near"]) == (2, 4)
    kinds = {(p["train"], p["test"]): p["kind"] for p in found["pairs"]}
    assert kinds == {(10, 3): "exact", (20, 7): "exact", (30, 5): "near", (40, 9): "near",
                     (50, 11): "near", (60, 13): "near"}
    sims = [p["similarity"] for p in found["pairs"]]
    assert sims == sorted(sims, reverse=True) and sims[:2] == [1.0, 1.0]
    assert all(NEAR_CORRELATION <= s < 1.0 + 1e-6 for s in sims[2:])
    assert "correlation" in found["method"]


def test_result_is_plain_json_and_max_pairs_caps_the_list(planted):
    train, test = planted
    found = find_duplicates(train.numpy(), test.numpy(), max_pairs=3)
    assert len(found["pairs"]) == 3 and found["exact"] == 2 and found["near"] == 4
    assert json.loads(json.dumps(found)) == found
    assert all(type(p["train"]) is int and type(p["similarity"]) is float for p in found["pairs"])


def test_near_search_agrees_with_brute_force():
    """Filter and refine misses nothing: same pairs as an all-pairs correlation."""
    train, test = _images(400, seed=2, side=12, channels=3), _images(80, seed=3, side=12, channels=3)
    for j in range(0, 80, 4):  # a range of noise levels, some above and some below the threshold
        test[j] = _noisy_copy(train[j * 3], sigma=1.0 + j / 2, seed=j)
    def unit(x):
        flat = x.flatten(1).double()
        return torch.nn.functional.normalize(flat - flat.mean(1, keepdim=True), dim=1)

    corr = unit(test) @ unit(train).T
    best, arg = corr.max(1)
    expected = {(int(arg[j]), j) for j in range(80) if best[j] >= NEAR_CORRELATION}
    found = find_duplicates(train, test, max_pairs=100)
    assert 0 < len(expected) < 20  # the test really sits on both sides of the threshold
    assert {(p["train"], p["test"]) for p in found["pairs"]} == expected


def test_distinct_images_and_blank_images_are_not_near():
    train, test = _images(200, seed=4), _images(40, seed=5)
    train[0] = 0
    test[0] = 7  # another blank: no pattern to compare, so not a near duplicate
    found = find_duplicates(train, test)
    assert (found["exact"], found["near"], found["pairs"]) == (0, 0, [])


def test_tables_exact_and_near_rows():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(500, 6)).astype(np.float32)
    test = rng.normal(size=(60, 6)).astype(np.float32)
    test[0] = train[100]
    test[1] = train[200] + 0.001  # rounding-sized change: near
    test[2] = train[300] + 0.5  # half a standard deviation on every feature: a new row
    found = find_duplicates(torch.from_numpy(train), torch.from_numpy(test))
    assert (found["exact"], found["near"]) == (1, 1)
    pairs = [(p["train"], p["test"], p["kind"]) for p in found["pairs"]]
    assert pairs == [(100, 0, "exact"), (200, 1, "near")]
    assert found["pairs"][1]["similarity"] > 0.99


def test_wide_tables_use_the_projection():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(300, 40))
    test = rng.normal(size=(30, 40))
    test[4] = train[7] + 0.001
    found = find_duplicates(train, test)
    assert (found["exact"], found["near"]) == (0, 1) and found["pairs"][0]["train"] == 7


@pytest.mark.parametrize("train, test, match", [
    (np.zeros((5, 1, 4, 4), np.uint8), np.zeros((5, 1, 4, 5), np.uint8), "same"),
    (np.zeros((5, 4), np.float32), np.zeros((5, 1, 2, 2), np.uint8), "same"),
    (np.zeros(5, np.float32), np.zeros(5, np.float32), "images"),
    (np.zeros((5, 1, 4, 4), np.float32), np.zeros((5, 1, 4, 4), np.float32), "uint8"),
    (np.array([[np.inf, 1.0]]), np.zeros((1, 2)), "inf"),
    ([[1, 2]], np.zeros((1, 2)), "numpy"),
])
def test_bad_input_raises_one_clear_error(train, test, match):
    with pytest.raises(NeuroclassError, match=match):
        find_duplicates(train, test)


def test_table_rows_with_gaps_match_when_values_and_gaps_match():
    train = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, np.nan]])
    test = np.array([[1.0, np.nan, 3.0],  # the first training row, gap and all: exact
                     [7.0, 8.0, 9.0],  # the third row with its gap filled: not exact
                     [40.0, 50.0, 60.0]])
    found = find_duplicates(train, test)
    assert found["exact"] == 1 and found["pairs"][0] == {"train": 0, "test": 0, "kind": "exact", "similarity": 1.0}
    assert all(p["test"] != 1 or p["kind"] != "exact" for p in found["pairs"])
