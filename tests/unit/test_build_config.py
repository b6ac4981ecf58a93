"""build_config: which model options survive a --model given beside a config file."""
from __future__ import annotations

import pytest

from neuroclass.api import build_config
from neuroclass.errors import NeuroclassError
from neuroclass.models.registry import resolve_default_model


def write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_options_under_auto_apply_to_the_family_named_by_model(tmp_path):
    path = write(tmp_path, "model:\n  options:\n    channels: [8, 16]\n")
    cfg = build_config(model="cnn", config=path)
    assert cfg.model.name == "cnn" and cfg.model.options == {"channels": [8, 16]}


def test_options_under_auto_apply_to_the_family_the_data_chooses(tmp_path):
    path = write(tmp_path, "model:\n  options:\n    channels: [8, 16]\n")
    cfg = build_config(config=path)
    chosen = resolve_default_model(cfg.model, "image")
    assert chosen.name == "cnn" and chosen.options == {"channels": [8, 16]}


def test_options_under_auto_that_the_named_family_lacks_are_an_error(tmp_path):
    path = write(tmp_path, "model:\n  options:\n    channels: [8, 16]\n")
    with pytest.raises(NeuroclassError, match="channels"):
        build_config(model="mlp", config=path)


def test_options_of_another_named_family_are_dropped_for_model(tmp_path):
    path = write(tmp_path, "model:\n  name: mlp\n  options:\n    hidden: [8]\n")
    cfg = build_config(model="cnn", config=path)
    assert cfg.model.name == "cnn" and cfg.model.options == {}
    assert build_config(model="mlp", config=path).model.options == {"hidden": [8]}


def test_set_options_still_apply_after_the_files_options_are_dropped(tmp_path):
    path = write(tmp_path, "model:\n  name: mlp\n  options:\n    hidden: [8]\n")
    cfg = build_config(model="cnn", config=path, overrides=["model.options.hidden=32"])
    assert cfg.model.options == {"hidden": 32}
