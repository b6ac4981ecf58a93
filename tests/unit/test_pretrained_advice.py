import pytest

from neuroclass.errors import NeuroclassError
from neuroclass.training.pretrained_advice import MANY_PER_CLASS, pretrained_advice

URL = "https://download.pytorch.org/models/{arch}-0000.pth"


@pytest.fixture
def locate(tmp_path):
    """A hub cache in tmp_path: (url, path) for every arch but "alexnet_nopre" (no weights)."""
    def where(arch):
        if arch == "alexnet_nopre":
            raise NeuroclassError(f"tv:{arch}: torchvision ships no pretrained weights for it")
        return URL.format(arch=arch), tmp_path / "hub" / "checkpoints" / f"{arch}-0000.pth"
    return where


def advise(locate, **changes):
    args = {"source": "photos", "input_shape": (3, 128, 128), "train_images": 300, "classes": 3,
            "model": "cnn", "starting_point": False, "locate": locate, **changes}
    return pretrained_advice(**args)


def test_few_colour_photos_get_the_command_and_the_offline_weights_file(locate, tmp_path):
    advice = advise(locate, source="my photos/train set", out="runs dir")
    assert advice.arch == "mobilenet_v3_small"  # the fastest to train on a CPU
    assert advice.command == ("neuroclass train 'my photos/train set' --model tv:mobilenet_v3_small "
                              "--pretrained --time-budget 3m --out 'runs dir'")
    path = tmp_path / "hub" / "checkpoints" / "mobilenet_v3_small-0000.pth"
    url = URL.format(arch="mobilenet_v3_small")
    assert advice.weights == f"offline: download {url} and place it at {path}"
    assert advice.why.startswith("100 training images per class (300 in 3 classes) of colour 128x128 px images")
    assert advice.text.splitlines() == [advice.why, f"  {advice.command}", f"  {advice.weights}"]


def test_a_weights_file_already_in_the_cache_is_named_instead(locate, tmp_path):
    path = tmp_path / "hub" / "checkpoints" / "mobilenet_v3_small-0000.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    assert advise(locate).weights == f"the weights file is already at {path}"


@pytest.mark.parametrize("seconds, shown", [(180, "3m"), (90, "1.5m"), (5400, "1.5h"), (100, "100s"),
                                            (45.5, "45.5s")])
def test_the_users_time_budget_is_kept(locate, seconds, shown):
    assert f"--time-budget {shown}" in advise(locate, time_budget=seconds).command


def test_the_architecture_follows_the_device_and_the_users_choice(locate):
    assert advise(locate, accelerator=True).arch == "resnet18"
    assert "--model tv:resnet50 " in advise(locate, model="tv:resnet50").command
    assert advise(locate, model="tv:alexnet_nopre").arch == "mobilenet_v3_small"  # no weights for it


@pytest.mark.parametrize("changes", [
    {"input_shape": (1, 28, 28)},  # MNIST-like
    {"input_shape": (1, 8, 8)},
    {"input_shape": (1, 63, 63)},
    {"input_shape": (3, 16, 16)},
    {"input_shape": None},  # a table
    {"input_shape": (12,)},
    {"starting_point": True},
    {"train_images": 3 * MANY_PER_CLASS},
])
def test_no_advice_where_pretrained_weights_would_not_help(locate, changes):
    assert advise(locate, **changes) is None


def test_just_below_the_threshold_and_grey_photographs_get_advice(locate):
    assert advise(locate, train_images=3 * MANY_PER_CLASS - 1) is not None
    grey = advise(locate, input_shape=(1, 64, 64))
    assert "of gray 64x64 px images" in grey.why


def test_the_native_image_size_decides_over_the_chosen_one(locate):
    # a photo folder decoded small for speed is still a folder of photographs
    assert advise(locate, input_shape=(3, 16, 16), native_shape=(3, 480, 640)) is not None
    assert advise(locate, input_shape=(1, 96, 96), native_shape=(1, 28, 28)) is None


def test_the_default_location_is_torchvisions_own_file():
    advice = pretrained_advice(source="photos", input_shape=(3, 64, 64), train_images=40, classes=2,
                               model="auto", starting_point=False)
    assert "mobilenet_v3_small-047dcff4.pth" in advice.weights


@pytest.mark.parametrize("changes, match", [
    ({"classes": 0}, "classes must be a count"),
    ({"train_images": -1}, "train_images must be a count"),
    ({"input_shape": "3x64x64"}, "input_shape must be sizes"),
    ({"native_shape": (3, 0, 64)}, "native_shape must be sizes"),
])
def test_malformed_arguments_raise_one_clear_error(locate, changes, match):
    with pytest.raises(NeuroclassError, match=match):
        advise(locate, **changes)
