"""HOG and LBP image features: shapes and names, determinism, sensitivity to a flip, gray and
colour input, and the errors."""
import numpy as np
import pytest
import torch

from neuroclass.classical import feature_names, image_features
from neuroclass.errors import NeuroclassError

WIDTH = {"hog": 1296, "lbp": 160, "hog+lbp": 1456}  # at 28x28 with the default options


def images(n=5, channels=1, height=28, width=28, seed=0):
    """Blurry random shapes: smooth enough for gradients and patterns to mean something."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, channels, height // 4 + 1, width // 4 + 1))
    big = small.repeat(4, axis=2).repeat(4, axis=3)[:, :, :height, :width]
    return big.astype(np.uint8)


@pytest.mark.parametrize("kind", sorted(WIDTH))
def test_shapes_and_names(kind):
    x = images()
    features = image_features(x, kind)
    assert features.shape == (5, WIDTH[kind]) and features.dtype == np.float32
    names = feature_names(kind, x.shape[1:])
    assert len(names) == WIDTH[kind] and len(set(names)) == len(names)


def test_names_follow_other_sizes_and_options():
    x = images(n=2, channels=3, height=32, width=40)
    options = {"cell": 8, "orientations": 6, "lbp_grid": 2, "lbp_points": 16, "lbp_radius": 2}
    features = image_features(x, "hog+lbp", options)
    assert features.shape[1] == len(feature_names("hog+lbp", (3, 32, 40), options))
    assert features.shape[1] == 3 * 4 * 2 * 2 * 6 + 2 * 2 * 18


def test_lbp_shares_sum_to_one_per_cell():
    features = image_features(images(), "lbp")
    assert np.allclose(features.reshape(5, 16, 10).sum(axis=2), 1.0)


@pytest.mark.parametrize("kind", sorted(WIDTH))
def test_features_are_deterministic(kind):
    x = images(seed=3)
    assert np.array_equal(image_features(x, kind), image_features(x.copy(), kind))


@pytest.mark.parametrize("kind", sorted(WIDTH))
def test_a_flipped_image_gives_other_features(kind):
    x = images(n=1, seed=4)
    flipped = x[:, :, :, ::-1].copy()
    assert not np.allclose(image_features(x, kind), image_features(flipped, kind))


def test_gray_as_colour_gives_the_gray_features():
    gray = images(seed=5)
    colour = np.repeat(gray, 3, axis=1)
    assert np.allclose(image_features(colour, "hog+lbp"), image_features(gray, "hog+lbp"))


def test_colour_is_weighed_as_luma():
    """Red beside green is the gray of their ITU-R 709 luma (0.2125 and 0.7154 of 255: 54 and 182),
    with an edge between them that an unweighted mean of the channels (85 and 85) would lose."""
    colour = np.zeros((1, 3, 28, 28), np.uint8)
    colour[0, 0, :, :14] = 255
    colour[0, 1, :, 14:] = 255
    gray = np.zeros((1, 1, 28, 28), np.uint8)
    gray[0, 0, :, :14], gray[0, 0, :, 14:] = 54, 182
    assert np.allclose(image_features(colour, "hog+lbp"), image_features(gray, "hog+lbp"))
    gray[0, 0] = 85
    assert not np.allclose(image_features(colour, "hog+lbp"), image_features(gray, "hog+lbp"))


def test_a_torch_tensor_gives_what_numpy_gives():
    x = images(seed=6)
    assert np.array_equal(image_features(torch.from_numpy(x), "hog+lbp"), image_features(x, "hog+lbp"))


def test_errors_name_the_problem():
    with pytest.raises(NeuroclassError, match="Did you mean 'hog'"):
        image_features(images(), "hogg")
    with pytest.raises(NeuroclassError, match="must be uint8 \\(N, C, H, W\\)"):
        image_features(images().astype(np.float32), "hog")
    with pytest.raises(NeuroclassError, match="at least 8 pixels a side"):
        image_features(images(height=6, width=6), "hog")
    with pytest.raises(NeuroclassError, match="The 'features.cell' parameter must be > 0"):
        image_features(images(), "hog", {"cell": 0})
