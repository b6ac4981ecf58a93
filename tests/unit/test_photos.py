"""Photo folders: the survey read from headers, the input side the budget chooses, the photo
defaults (family, augmentation, epochs) and the random resized crop and saturation jitter."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from neuroclass.config import AugmentConfig, load_config
from neuroclass.data.augment import augment_batch, random_crop_boxes, random_saturation
from neuroclass.data.parallel import decode_workers
from neuroclass.data.dataset import Dataset
from neuroclass.data.split import Splits
from neuroclass.data.survey import PHOTO_SIDE, FolderSurvey, survey_folder
from neuroclass.data.synthetic_photos import SHAPES, write_photo_folder
from neuroclass.errors import NeuroclassError
from neuroclass.training.budget import PHOTO_AUGMENT, augment_for_budget, plan_for_budget
from neuroclass.training.resolution import (DEFAULT_SIDE, MAX_EPOCHS, MIN_EXAMPLES, SIDES, candidate_sides, choose_side,
                                            plan_input, required_examples)
from neuroclass.training.trainer import resolve_batch_size


def survey_of(h: int, w: int, files: int = 400, channels: int = 3) -> FolderSurvey:
    return FolderSurvey(files, {"train": files}, 2, channels, (h, w), (h, w), 1, 1)


class Clock:
    """A fake clock: each reading advances ``step`` seconds."""

    def __init__(self, step: float = 0.0) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    return write_photo_folder(tmp_path_factory.mktemp("photos") / "shapes", images=24, classes=2)


def test_generated_folder_has_photo_sizes_orientations_and_split_folders(photo_folder):
    files = sorted(photo_folder.rglob("*.jpg"))
    assert len(files) == 24 and {p.parent.parent.name for p in files} == {"train", "val"}
    assert {p.parent.name for p in files} == set(SHAPES[:2])
    sizes = {Image.open(p).size for p in files}
    assert len(sizes) > 10 and all(300 <= min(s) and max(s) <= 600 for s in sizes)
    turned = [p for p in files if Image.open(p).getexif().get(0x0112) == 6]
    assert turned  # some stored sideways with the EXIF tag, as phones do


def test_generator_refuses_bad_requests(tmp_path, photo_folder):
    with pytest.raises(NeuroclassError, match="classes must be 2 to 5"):
        write_photo_folder(tmp_path / "x", classes=6)
    with pytest.raises(NeuroclassError, match="too few"):
        write_photo_folder(tmp_path / "y", images=4, classes=2)
    with pytest.raises(NeuroclassError, match="already exists"):
        write_photo_folder(photo_folder)


def test_survey_reads_counts_and_sizes_from_headers(photo_folder):
    survey = survey_folder(photo_folder)
    assert survey.files == 24 and survey.classes == 2 and survey.channels == 3
    assert survey.split_files == {"train": 16, "val": 8}
    assert 300 <= survey.short_side <= 600 and survey.photo_like
    assert survey.distinct_sizes > 10 and len(survey.sample) <= 16
    # train/ and val/ ship: the test split is carved from train (data/split.py)
    assert survey.split_sizes(0.1, 0.2) == (13, 8, 3)
    assert "24 colour images, median" in survey.describe()


def test_small_images_are_not_photos_and_large_gray_scans_are():
    assert not survey_of(32, 32).photo_like  # CIFAR-like
    assert not survey_of(28, 28, channels=1).photo_like  # digits
    assert survey_of(400, 400, channels=1).photo_like  # gray scans: a side is chosen for them too
    assert survey_of(PHOTO_SIDE, 200).photo_like


def test_median_size_is_one_image_s_size_whatever_the_orientation(tmp_path):
    for split, sizes in {"a": [(500, 375)] * 3, "b": [(375, 500)] * 2}.items():
        (tmp_path / split).mkdir()
        for k, (w, h) in enumerate(sizes):
            Image.new("RGB", (w, h), (k * 40, 0, 0)).save(tmp_path / split / f"{k}.jpg")
    survey = survey_folder(tmp_path)
    assert survey.short_side == 375 and sorted(survey.median_size) == [375, 500]


def test_candidate_sides_stop_at_the_median_shorter_side():
    assert candidate_sides(survey_of(100, 150)) == [32, 48, 64, 96]
    assert candidate_sides(survey_of(375, 500)) == list(SIDES)
    assert candidate_sides(survey_of(20, 20)) == [SIDES[0]]


def test_budget_picks_the_largest_side_that_affords_the_required_examples():
    survey = survey_of(375, 500)
    speed = lambda side: 4e6 / side**2  # noqa: E731 - examples/s falls with the pixels
    timed = []

    def speed_at(side):
        timed.append(side)
        return speed(side)

    choice = choose_side(survey, 80_000, 180, (300, 50, 50), speed_at, lambda side: 1.0)
    # 64 px: ~976/s -> ~170k examples; 96 px: ~434/s -> ~75k, short of 80k: timing stops there
    assert choice.side == 64 and timed == [32, 48, 64, 96]
    assert [p["side"] for p in choice.probes] == [32, 48, 64, 96]
    assert choice.probes[2]["examples"] >= 80_000 > choice.probes[3]["examples"]


def test_a_longer_budget_buys_more_pixels_and_decoding_time_counts():
    survey = survey_of(375, 500)
    speed_at = lambda side: 4e6 / side**2  # noqa: E731
    short = choose_side(survey, 80_000, 180, (300, 50, 50), speed_at, lambda side: 1.0).side
    long = choose_side(survey, 80_000, 1800, (300, 50, 50), speed_at, lambda side: 1.0).side
    slow_decoding = choose_side(survey, 80_000, 180, (300, 50, 50), speed_at, lambda side: 120.0).side
    assert long > short > slow_decoding


def test_timing_counts_against_the_budget_and_the_smallest_side_stays_when_none_fits():
    survey = survey_of(375, 500)
    speed_at = lambda side: 4e6 / side**2  # noqa: E731
    # each clock reading costs 40 s: the probes themselves eat the budget. One reading at the start,
    # one per side timed, one at the end; 32 px leaves 139 s and 48 px 99 s (enough), 64 px 59 s (not)
    slow = choose_side(survey, 80_000, 180, (300, 50, 50), speed_at, lambda side: 1.0, clock=Clock(40.0))
    assert [p["side"] for p in slow.probes] == [32, 48, 64] and slow.side == 48
    assert slow.probe_seconds == 40.0 * (1 + len(slow.probes))
    none = choose_side(survey, 10**9, 180, (300, 50, 50), speed_at, lambda side: 1.0)
    assert none.side == SIDES[0] and len(none.probes) == 1


def test_required_examples_grow_with_the_training_set():
    assert required_examples(100, 6) == MIN_EXAMPLES
    assert required_examples(100_000, 6) == 600_000


def test_plan_input_without_budget_takes_the_default_side_family_and_enough_epochs(photo_folder):
    cfg = load_config(overrides=[f"data.source={photo_folder}"])
    new, record = plan_input(cfg, torch.device("cpu"), None)
    assert new.data.image_size == DEFAULT_SIDE and record["side"]["why"] == "default"
    assert new.model.name == "resnet"  # the photo family, as model.name=auto
    # 80,000 examples over 13 training images would be 6,154 epochs: capped
    assert new.train.epochs == min(MAX_EPOCHS, math.ceil(MIN_EXAMPLES / 13)) == record["epochs"] == MAX_EPOCHS


def test_plan_input_keeps_what_the_user_set_and_leaves_other_data_alone(photo_folder):
    cfg = load_config(overrides=[f"data.source={photo_folder}", "data.image_size=40", "model.name=cnn",
                                 "train.epochs=3"])
    new, record = plan_input(cfg, torch.device("cpu"), None)
    assert (new.data.image_size, new.model.name, new.train.epochs) == (40, "cnn", 3)
    assert record["photos"] and "side" not in record
    assert plan_input(load_config(overrides=["data.source=digits"]), torch.device("cpu"), None)[1] is None


def test_plan_input_with_a_budget_times_real_steps(photo_folder):
    cfg = load_config(overrides=[f"data.source={photo_folder}", "model.name=cnn", "model.size=s"])
    # a clock that moves a quarter second at each reading times the probes: every timed training
    # step and every decoding of the sampled files takes 0.25 s on it, so every side fits, up to the
    # photos' shorter side (300 px or more)
    new, record = plan_input(cfg, torch.device("cpu"), deadline=10_000.0, clock=Clock(0.25))
    probes = record["side"]["probes"]
    assert record["side"]["why"] == "time budget" and record["side"]["fits"]
    assert [p["side"] for p in probes] == list(SIDES)
    survey = survey_folder(photo_folder)
    batch = resolve_batch_size(cfg.train.batch_size, survey.split_sizes(cfg.data.val_fraction,
                                                                        cfg.data.test_fraction)[0])
    per_image = 0.25 / len(survey.sample[::4]) / decode_workers(None, survey.files)
    assert [p["examples_per_second"] for p in probes] == [batch / 0.25] * len(SIDES)
    assert [p["decode_seconds"] for p in probes] == pytest.approx([survey.files * per_image] * len(SIDES))
    assert new.data.image_size == SIDES[-1] == record["side"]["side"]
    assert new.train.epochs is None  # the budget ends training


def test_epochs_and_a_starting_point_set_the_examples_a_side_must_afford(photo_folder):
    from neuroclass.training.resolution import _side_choice

    survey = survey_folder(photo_folder)
    splits = survey.split_sizes(0.1, 0.2)
    epochs = load_config(overrides=[f"data.source={photo_folder}", "model.name=cnn", "model.size=s",
                                    "train.epochs=5"])
    # no time left: the smallest side is timed and does not fit, so the probing stops there (the
    # examples required do not depend on the budget; a large one would time every side)
    choice = _side_choice(epochs, survey, splits, 3, torch.device("cpu"), 0.0, Clock(0.25))
    assert choice.required == 5 * splits[0]
    assert [p["side"] for p in choice.probes] == candidate_sides(survey)[:1]
    scratch = load_config(overrides=[f"data.source={photo_folder}", "model.name=cnn", "model.size=s"])
    assert _side_choice(scratch, survey, splits, 3, torch.device("cpu"), None, Clock()).side == DEFAULT_SIDE


def test_sides_a_model_refuses_are_skipped():
    from neuroclass.errors import NeuroclassError

    def speed_at(side):
        if side < 64:
            raise NeuroclassError("needs inputs of at least 63 px")
        return 4e6 / side**2

    choice = choose_side(survey_of(375, 500), 80_000, 180, (300, 50, 50), speed_at, lambda side: 1.0)
    assert choice.side == 64 and [p["side"] for p in choice.probes] == [64, 96]
    none = choose_side(survey_of(375, 500), 10**9, 180, (300, 50, 50), speed_at, lambda side: 1.0)
    assert none.side == 64 and not none.fits
    assert "no side lets" in none.summary(survey_of(375, 500), "crop", "cnn")


def photo_splits(n: int = 64) -> Splits:
    g = torch.Generator().manual_seed(0)
    ds = Dataset(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 2,
                 ["a", "b"], name="p", kind="image")
    return Splits(train=ds, val=None, test=ds, indices={"train": np.arange(n)}, method={})


def test_photos_get_the_photo_augmentation_with_or_without_a_budget():
    cfg = load_config()
    new, record = augment_for_budget(cfg, photo_splits(), None, photos=True)
    assert new.augment.enabled and record["photos"]
    assert all(getattr(new.augment, k) == v for k, v in PHOTO_AUGMENT.items())
    unbudgeted, plan = plan_for_budget(cfg, photo_splits(), (3, 32, 32), 2, torch.zeros(1, 3, 1, 1),
                                       torch.ones(1, 3, 1, 1), torch.device("cpu"), None, photos=True)
    assert unbudgeted.augment.crop == PHOTO_AUGMENT["crop"] and plan["auto_augment"]["photos"]
    # the user's own augmentation, or augment.auto=false, is left alone
    mine = load_config(overrides=["augment.enabled=true", "augment.rotation=5"])
    assert augment_for_budget(mine, photo_splits(), None, photos=True)[0] == mine
    off = load_config(overrides=["augment.auto=false"])
    assert augment_for_budget(off, photo_splits(), None, photos=True)[0] == off


def test_random_resized_crops_keep_their_area_share_and_stay_inside():
    half_w, half_h, centre = random_crop_boxes(5000, 0.35, torch.Generator().manual_seed(1))
    area = half_w * half_h
    assert area.min() >= 0.35 - 1e-6 and area.max() <= 1 + 1e-6
    assert (centre.abs() <= 1 - torch.stack([half_w, half_h], 1) + 1e-6).all()
    ratio = half_w / half_h
    assert ratio.min() >= 0.75 - 1e-3 and ratio.max() <= 4 / 3 + 1e-3
    assert area.std() > 0.1  # not one fixed crop


def test_crop_zooms_in_per_sample_and_is_reproducible():
    x = torch.zeros(16, 3, 32, 32)
    x[:, :, 8:24, 8:24] = 1.0  # a centred square of half the side: a quarter of the area
    cfg = AugmentConfig(enabled=True, crop=0.35, flip=False, rotation=0, zoom=0, translate=0)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    again = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    lit = out.mean(dim=(1, 2, 3))
    assert (lit >= 0.25 - 0.03).all()  # a crop never shows less than the whole image
    assert lit.max() > 0.35 and lit.std() > 0.02  # zoomed in, by different amounts


def test_saturation_moves_colours_from_their_gray_and_keeps_gray_and_one_channel():
    g = torch.Generator().manual_seed(0)
    colour = torch.tensor([0.8, 0.2, 0.4]).view(1, 3, 1, 1).expand(32, 3, 4, 4).clone()
    out = random_saturation(colour, 0.5, g)
    spread = out.amax(1) - out.amin(1)  # (B, H, W) distance between channels
    assert spread.min() < 0.6 - 1e-3 < 0.6 + 1e-3 < spread.max()
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((out * luma).sum(1), (colour * luma).sum(1), atol=1e-5)  # gray kept
    one = torch.rand(4, 1, 4, 4)
    assert torch.equal(random_saturation(one, 0.5, g), one)


def test_a_budgeted_photo_run_times_one_thread_against_the_default(photo_folder):
    from neuroclass.device import use_threads
    from neuroclass.training.resolution import _threads_for_busy_cores

    survey = survey_folder(photo_folder)
    cfg = load_config(overrides=[f"data.source={photo_folder}", "model.name=cnn", "model.size=s"])
    with use_threads(2):
        new, record = _threads_for_busy_cores(cfg, survey, (13, 8, 3), 3, torch.device("cpu"))
        assert record["threads"] == 2
        assert record["examples_per_second"] > 0 and record["one_thread_examples_per_second"] > 0
        chose_one = record["one_thread_examples_per_second"] >= 1.5 * record["examples_per_second"]
        assert (new.train.threads == 1) == chose_one == (torch.get_num_threads() == 1)
    # the user's count, or a single thread, is never timed
    fixed = load_config(overrides=[f"data.source={photo_folder}", "train.threads=2"])
    assert _threads_for_busy_cores(fixed, survey, (13, 8, 3), 3, torch.device("cpu")) == (fixed, None)
    with use_threads(1):
        assert _threads_for_busy_cores(cfg, survey, (13, 8, 3), 3, torch.device("cpu")) == (cfg, None)
