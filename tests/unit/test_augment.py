import torch

from neuroclass.config import AugmentConfig
from neuroclass.data.augment import augment_batch


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
