"""Model sizes: presets under the user's options, and the time budget's pick by measured speed."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from neuroclass.config import ModelConfig, load_config
from neuroclass.errors import NeuroclassError
from neuroclass.models import MODELS, create
from neuroclass.training import sizing
from neuroclass.pipeline import train as train_run


def test_size_preset_lies_under_the_users_options():
    opts = sizing.sized_options(ModelConfig(name="cnn", size="l", options={"hidden": 32}))
    assert opts == {"channels": [24, 48, 96], "pooled_convs": 1, "hidden": 32}
    assert sizing.sized_options(ModelConfig(name="cnn", size="default", options={"hidden": 32})) == {"hidden": 32}
    net = create(ModelConfig(name="cnn", size="m"), (1, 28, 28), 10, torch.zeros(1, 1, 1, 1),
                 torch.ones(1, 1, 1, 1)).net
    assert net.feature_shape[0] == 96  # m widths 24, 48, 96
    large = create(ModelConfig(name="cnn", size="l"), (1, 28, 28), 10, torch.zeros(1, 1, 1, 1),
                   torch.ones(1, 1, 1, 1)).net
    assert sum(isinstance(m, torch.nn.Conv2d) for m in large.modules()) == 6  # a conv after each pool


def test_unknown_size_names_the_choices():
    with pytest.raises(NeuroclassError, match="model.size 'huge'.*cnn.*s, m, l, default, auto"):
        sizing.sized_options(ModelConfig(name="cnn", size="huge"))


def test_every_size_of_every_family_builds():
    for name in MODELS.names():
        for size, _ in MODELS.get(name).sizes:
            model = create(ModelConfig(name=name, size=size), (1, 28, 28), 10, torch.zeros(1, 1, 1, 1),
                           torch.ones(1, 1, 1, 1))
            assert model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)).shape == (2, 10), (name, size)


def fake_speeds(monkeypatch, speeds: dict[str, float]) -> list[str]:
    """probe_speed answers from ``speeds`` by the cnn's widths and depth; returns the sizes timed."""
    def key(options):
        return tuple(options["channels"]), options["pooled_convs"]

    by_options = {key(p): size for size, p in MODELS.get("cnn").sizes}
    timed: list[str] = []

    def probe(cfg, build, input_shape, batch_size, device, channels_last):
        size = by_options[key(sizing.sized_options(cfg))]
        timed.append(size)
        return speeds[size]

    monkeypatch.setattr(sizing, "probe_speed", probe)
    return timed


def test_auto_takes_the_largest_size_with_enough_epochs(monkeypatch):
    # 100 s, 10k training examples: 5 epochs need 500 examples/s (plus evaluation)
    timed = fake_speeds(monkeypatch, {"s": 4000, "m": 900, "l": 400})
    choice = sizing.choose_size(ModelConfig(name="cnn"), None, (1, 28, 28), 64, torch.device("cpu"),
                                True, 100.0, 10_000, 1000, 2000)
    assert choice.size == "m"
    assert timed == ["s", "m", "l"]
    assert [p["epochs"] for p in choice.probes][:2] == pytest.approx([38.65, 8.65], abs=0.05)


def test_auto_stops_timing_at_the_first_size_too_slow(monkeypatch):
    timed = fake_speeds(monkeypatch, {"s": 100, "m": 5000, "l": 5000})
    choice = sizing.choose_size(ModelConfig(name="cnn"), None, (1, 28, 28), 64, torch.device("cpu"),
                                True, 100.0, 10_000, 0, 0)
    assert choice.size == "s" and timed == ["s"]


def test_auto_falls_back_to_the_cheapest_size(monkeypatch):
    fake_speeds(monkeypatch, {"s": 10, "m": 1, "l": 1})
    choice = sizing.choose_size(ModelConfig(name="cnn"), None, (1, 28, 28), 64, torch.device("cpu"),
                                True, 10.0, 10_000, 0, 0)
    assert choice.size == "s" and len(choice.probes) == 1


def test_options_that_pin_the_size_are_timed_once(monkeypatch):
    timed = fake_speeds(monkeypatch, {"s": 1e6, "m": 1e6, "l": 1e6})
    cfg = ModelConfig(name="cnn", options={"channels": [24, 48, 96], "pooled_convs": 1})
    assert sizing.choose_size(cfg, None, (1, 28, 28), 64, torch.device("cpu"), True, 10.0, 100, 0, 0).size == "s"
    assert timed == ["l"]  # every size builds the same network: timed once


def test_families_without_sizes_are_left_alone():
    assert sizing.choose_size(ModelConfig(name="tv:resnet18"), None, (3, 32, 32), 8, torch.device("cpu"),
                              True, 10.0, 100, 0, 0) is None


def test_time_budget_run_records_and_reproduces_its_size(tmp_path, monkeypatch):
    # s and m train about a hundred epochs in the budget at these speeds, l under one: m is the pick
    timed = fake_speeds(monkeypatch, {"s": 1e5, "m": 5e4, "l": 100})
    cfg = load_config(overrides=["data.source=blocks:n=600,size=16", "model.name=cnn",
                                 f"out={tmp_path / 'runs'}", "train.quiet=true", "train.time_budget=2s"])
    result = train_run(cfg, report=False)
    timing = json.loads((result.path / "timing.json").read_text())
    record = timing["model_size"]
    assert timed == ["s", "m", "l"] and record["size"] == "m"
    assert [(p["size"], p["examples_per_second"]) for p in record["probes"]] == [("s", 1e5), ("m", 5e4), ("l", 100)]
    assert record["probes"][1]["epochs"] >= MODELS.get("cnn").min_epochs > record["probes"][2]["epochs"]
    saved = yaml.safe_load((result.path / "config.yaml").read_text())
    assert saved["model"]["size"] == record["size"]  # the saved config rebuilds the same network
    meta = json.loads((result.path / "model.json").read_text())
    preset = dict(MODELS.get("cnn").sizes)[record["size"]]
    assert meta["options"]["channels"] == preset["channels"]


def test_without_a_budget_auto_means_the_defaults(tmp_path):
    cfg = load_config(overrides=["data.source=blocks:n=200,size=16", "model.name=cnn", "train.epochs=1",
                                 f"out={tmp_path / 'runs'}", "train.quiet=true"])
    result = train_run(cfg, report=False)
    assert json.loads((result.path / "timing.json").read_text())["model_size"] is None
    assert json.loads((result.path / "model.json").read_text())["options"]["channels"] == [16, 32, 64]


def test_an_epoch_count_leaves_the_size_to_the_defaults(tmp_path):
    cfg = load_config(overrides=["data.source=blocks:n=200,size=16", "model.name=cnn", "train.epochs=1",
                                 "train.time_budget=30s", f"out={tmp_path / 'runs'}", "train.quiet=true"])
    result = train_run(cfg, report=False)
    assert json.loads((result.path / "timing.json").read_text())["model_size"] is None
    assert json.loads((result.path / "model.json").read_text())["options"]["channels"] == [16, 32, 64]
