import math

import pytest
import torch

from neuroclass.config import AugmentConfig, ModelConfig, OptimConfig, TrainConfig
from neuroclass.data.augment import augment_batch, mix_batch, random_erase, random_shift, sample_beta
from neuroclass.data.blocks import make_blocks
from neuroclass.models import create
from neuroclass.training.trainer import Trainer


def test_per_sample_parameters_differ():
    x = torch.rand(1, 1, 28, 28).repeat(16, 1, 1, 1)  # 16 copies of one image
    out = augment_batch(x, AugmentConfig(enabled=True), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    distinct = {tuple(out[i].flatten().tolist()) for i in range(16)}
    assert len(distinct) == 16  # each copy got its own warp


def test_seeded_and_reproducible():
    x = torch.rand(8, 3, 16, 16)
    a = augment_batch(x, AugmentConfig(enabled=True), torch.Generator().manual_seed(1))
    b = augment_batch(x, AugmentConfig(enabled=True), torch.Generator().manual_seed(1))
    c = augment_batch(x, AugmentConfig(enabled=True), torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_zero_strength_is_identity_and_flip_is_a_mirror():
    x = torch.rand(4, 1, 10, 10)
    still = AugmentConfig(enabled=True, flip=False, rotation=0, zoom=0, translate=0)
    assert torch.allclose(augment_batch(x, still, torch.Generator().manual_seed(0)), x, atol=1e-5)
    flip_only = AugmentConfig(enabled=True, flip=True, rotation=0, zoom=0, translate=0)
    out = augment_batch(x, flip_only, torch.Generator().manual_seed(0))
    for i in range(4):  # every sample is either itself or its mirror image
        assert torch.allclose(out[i], x[i], atol=1e-5) or torch.allclose(out[i], x[i].flip(-1), atol=1e-5)


# ----------------------------------------------------------------------------- photometric, cutout

def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


STILL = dict(enabled=True, flip=False, rotation=0, zoom=0, translate=0)
PHOTO_ERASE = dict(brightness=0.4, contrast=0.4, erase=1.0, erase_size=0.25)


def test_photometric_and_erase_differ_per_sample_and_leave_labels_alone():
    x = (torch.rand(1, 1, 28, 28) * 0.5 + 0.25).repeat(16, 1, 1, 1)
    y = torch.arange(16) % 4
    y_before = y.clone()
    for extra in (dict(brightness=0.4), dict(contrast=0.4), dict(erase=1.0)):
        out = augment_batch(x, AugmentConfig(**STILL, **extra), _gen())
        assert len({tuple(out[i].flatten().tolist()) for i in range(16)}) > 12, extra
    assert torch.equal(y, y_before)  # these ops see images only; labels are never touched


def test_all_ops_seeded_in_range_and_off_by_default():
    x = torch.rand(8, 3, 16, 16)
    cfg = AugmentConfig(enabled=True, **PHOTO_ERASE)
    a, b = augment_batch(x, cfg, _gen(1)), augment_batch(x, cfg, _gen(1))
    assert torch.equal(a, b) and not torch.equal(a, augment_batch(x, cfg, _gen(2)))
    assert a.min() >= 0 and a.max() <= 1
    off = AugmentConfig(**STILL)  # defaults: erase, brightness, contrast, mixup, cutmix all 0
    assert torch.allclose(augment_batch(x, off, _gen()), x, atol=1e-5)
    zero = AugmentConfig(**STILL, brightness=0.0, contrast=0.0, erase=0.0, erase_size=1.0)
    assert torch.allclose(augment_batch(x, zero, _gen()), x, atol=1e-5)


def test_erased_region_is_one_bounded_rectangle():
    x = torch.rand(64, 1, 28, 28) * 0.5 + 0.5  # no zeros except where erased
    out = random_erase(x, AugmentConfig(erase=1.0, erase_size=0.25), _gen())
    zeros = out[:, 0] == 0  # (64, 28, 28)
    for i in range(64):
        rows, cols = zeros[i].any(1).nonzero(), zeros[i].any(0).nonzero()
        if len(rows):
            h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
            assert h <= 7 and w <= 7 and zeros[i].sum() == h * w  # a filled rectangle, side <= 0.25 * 28
    assert zeros.any(dim=(1, 2)).float().mean() > 0.5
    half = random_erase(x, AugmentConfig(erase=0.5), _gen())
    assert 0 < (half == 0).any(dim=(1, 2, 3)).sum() < 64  # erase is a per-sample probability


def test_whole_pixel_shift_moves_each_sample_by_its_own_offset():
    x = torch.rand(1, 2, 12, 12).add_(0.1).repeat(64, 1, 1, 1)  # no zero pixels before the shift
    out = augment_batch(x, AugmentConfig(**STILL, shift=2), _gen())
    offsets = set()
    for i in range(64):  # find the (dy, dx) that maps the image onto this sample, exactly
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(out[i], random_shift_reference(x[i], dy, dx))]
        assert len(found) == 1, i  # a pure shift: no resampling, border filled with zeros
        offsets.add(found[0])
    assert len(offsets) > 15  # 25 possible offsets, drawn per sample
    assert torch.equal(out, augment_batch(x, AugmentConfig(**STILL, shift=2), _gen()))
    assert not torch.equal(out, augment_batch(x, AugmentConfig(**STILL, shift=2), _gen(1)))
    assert torch.equal(random_shift(x, 0, _gen()), x)


def random_shift_reference(img, dy, dx):
    """img (C, H, W) moved down by dy and right by dx, zeros where nothing moved in."""
    out = torch.zeros_like(img)
    h, w = img.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        img[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


# ----------------------------------------------------------------------------- mixup / cutmix

def _labelled_images(n=32):
    """Image i is the constant i / n and has label i, so pixel means reveal the label mixture."""
    values = torch.arange(n, dtype=torch.float32) / n
    return values.view(n, 1, 1, 1).expand(n, 1, 12, 12).contiguous(), torch.arange(n), values


@pytest.mark.parametrize("cfg", [AugmentConfig(mixup=0.4), AugmentConfig(cutmix=1.0)])
def test_mix_targets_match_the_pixels_and_two_labels(cfg):
    x, y, values = _labelled_images()
    out, y_soft = mix_batch(x, y, 32, cfg, _gen())
    assert y_soft.shape == (32, 32)
    assert torch.allclose(y_soft.sum(1), torch.ones(32))
    assert ((y_soft > 0).sum(1) <= 2).all()  # weight only on the sample's label and its partner's
    assert (y_soft[torch.arange(32), y] > 0).float().mean() > 0.9
    # the label weights are exactly the share of each source image in the pixels
    assert torch.allclose(out.mean(dim=(1, 2, 3)), y_soft @ values, atol=1e-5)
    assert len(set(y_soft.max(1).values.round(decimals=4).tolist())) > 8  # a weight per sample


def test_mix_is_seeded_and_both_modes_get_chosen():
    x, y, _ = _labelled_images()
    cfg = AugmentConfig(mixup=0.4, cutmix=1.0)
    a, b = mix_batch(x, y, 32, cfg, _gen(3)), mix_batch(x, y, 32, cfg, _gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    g, kinds = _gen(), set()
    for _ in range(12):  # cutmix keeps only the two source values in each image, mixup blends them
        out, _ = mix_batch(x, y, 32, cfg, g)
        kinds.add(bool((out.amax(dim=(1, 2, 3)) > out.amin(dim=(1, 2, 3))).any()))
    assert kinds == {True, False}


def test_mix_off_gives_one_hot_and_beta_leaves_global_rng_alone():
    x, y, _ = _labelled_images(8)
    out, y_soft = mix_batch(x, y, 8, AugmentConfig(), _gen())
    assert out is x and torch.equal(y_soft, torch.eye(8))
    state = torch.get_rng_state()
    assert torch.equal(sample_beta(0.4, 5, _gen(7)), sample_beta(0.4, 5, _gen(7)))
    assert torch.equal(torch.get_rng_state(), state)


def test_trainer_fits_one_epoch_with_mixup_and_cutmix():
    train = make_blocks(n=64)
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    model = create(ModelConfig(name="mlp", options={"hidden": [16]}), train.input_shape,
                   len(train.classes), mean, std)
    augment = AugmentConfig(enabled=True, mixup=0.4, cutmix=1.0, erase=0.5, brightness=0.2)
    trainer = Trainer(TrainConfig(epochs=1, batch_size=16, quiet=True), OptimConfig(), augment,
                      torch.device("cpu"))
    state = trainer.fit(model, train, None)
    assert len(state.history) == 1 and math.isfinite(state.history[0]["loss"])
    assert 0 <= state.history[0]["accuracy"] <= 1
