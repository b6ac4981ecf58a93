"""`neuroclass embed`: features from the layer before the head, in a pickle-free .npz."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from neuroclass.cli import main
from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.embed import embed_run, embed_tensor, save_embedding
from neuroclass.models import create


def test_embed_cli_writes_features_a_probe_can_learn_from(trained_run, tmp_path, capsys):
    out = tmp_path / "feats" / "blocks.npz"
    assert main(["embed", str(trained_run.path), "--out", str(out)]) == 0
    assert "features 400 x 32" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["blocks.npz"]  # no temp file left behind
    with np.load(out, allow_pickle=False) as feats:
        x, y, classes, split = feats["features"], feats["labels"], feats["classes"], feats["split"]
    assert x.dtype == np.float32 and x.shape == (400, 32)  # the cnn's hidden layer feeds its head
    assert y.shape == (400,) and list(classes) == ["red", "green", "blue", "yellow"]
    assert set(split) == {"train", "val", "test"}
    train, test = split == "train", split == "test"
    probe = LogisticRegression(max_iter=1000).fit(x[train], y[train])
    assert probe.score(x[test], y[test]) > 0.5  # chance is 0.25


def test_embed_other_data_keeps_its_own_classes(trained_run, tmp_path):
    emb = embed_run(trained_run.path, "blocks:n=40,size=16,task=shape", device="cpu")
    assert emb.features.shape == (40, 32) and emb.classes == ["square", "disc", "cross", "stripe"]
    assert emb.split is None
    with pytest.raises(NeuroclassError, match=r"do not fit the model's \(3, 16, 16\)"):
        embed_run(trained_run.path, "digits", device="cpu")
    with pytest.raises(NeuroclassError, match="with a .npz suffix"):
        save_embedding(tmp_path / "feats.txt", emb)


@pytest.mark.parametrize("name, dim", [("capsnet", 2 * 8 * 6 * 6), ("vit", 16), ("mlp", 16)])
def test_features_are_the_heads_input(name, dim):
    options = {"capsnet": {"conv_channels": 8, "primary_maps": 2}, "vit": {"dim": 16, "depth": 1, "heads": 2},
               "mlp": {"hidden": [16]}}[name]
    model = create(ModelConfig(name=name, options=options), (1, 28, 28), 3,
                   torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    x = torch.randint(0, 255, (5, 1, 28, 28), dtype=torch.uint8)
    feats = embed_tensor(model, x, torch.device("cpu"), batch_size=2)
    assert feats.shape == (5, dim) and feats.dtype == np.float32
