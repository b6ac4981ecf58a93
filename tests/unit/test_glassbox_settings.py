"""The glass-box network's settings in a run's config: a value given is the value trained with, one
left unset is the preset's, the config records both, settings the network ignores are refused,
and model.options names only the keys it takes (no training here)."""
import dataclasses

import pytest

from neuroclass.api import build_config
from neuroclass.config import Config, ModelConfig, load_config
from neuroclass.errors import NeuroclassError
from neuroclass.glassbox import GlassboxOptions
from neuroclass.training.families import check_family_config
from neuroclass.training.glassbox_settings import (BUDGET_PATIENCE, CONFIG_KEYS, NO_EFFECT, glassbox_config,
                                                   run_options)


def built(*overrides: str, **named) -> Config:
    """The config `neuroclass train digits --model glassbox --set ...` builds."""
    return build_config("digits", "glassbox", overrides=list(overrides), **named)


def settings(cfg: Config) -> tuple:
    return cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay, cfg.train.batch_size


def test_the_config_records_the_presets_settings_where_none_are_given():
    modern, classic = built(), built("model.options.preset=classic")
    assert settings(modern) == ("adam", 1e-3, 0.0, 0.0, 128)
    assert settings(classic) == ("sgd", 0.1, 0.0, 0.0, 1)
    for cfg in (modern, classic):
        assert {key: getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1]) for key in NO_EFFECT} == NO_EFFECT
        assert (cfg.optim.schedule, cfg.train.label_smoothing, cfg.train.ema) == ("constant", 0.0, 0.0)
    options = run_options(classic)
    assert (options.optimizer, options.lr, options.momentum, options.batch_size) == ("sgd", 0.1, 0.0, 1)


@pytest.mark.parametrize("given, expected", [
    (["optim.lr=0.004"], {"lr": 0.004, "optimizer": "adam"}),  # the config's default, given: kept
    (["optim.weight_decay=0.0005"], {"l2": 0.0005}),
    (["optim.name=sgd"], {"optimizer": "sgd", "momentum": 0.0, "lr": 1e-3}),  # plain gradient descent
    (["optim.name=sgd", "optim.momentum=0.9"], {"optimizer": "momentum", "momentum": 0.9}),
    (["model.options.preset=classic", "optim.momentum=0.5"], {"optimizer": "momentum", "momentum": 0.5, "lr": 0.1}),
    (["optim.name=rmsprop"], {"optimizer": "rmsprop"}),
    (["optim.l1=0.0001"], {"l1": 0.0001}),
    (["model.init=xavier"], {"init": "xavier"}),
    (["train.batch_size=32"], {"batch_size": 32}),
])
def test_a_given_setting_is_what_the_network_trains_with(given, expected):
    options = run_options(built(*given))
    assert {key: getattr(options, key) for key in expected} == expected


def test_a_given_value_survives_the_config_file_and_a_resume(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: {name: glassbox}\noptim: {lr: 0.004, momentum: 0.9}\n")
    cfg = build_config("digits", config=path)
    assert (cfg.optim.lr, cfg.optim.momentum, cfg.optim.name) == (0.004, 0.9, "adam")
    saved = tmp_path / "config.yaml"  # what a run folder holds, read back as a resume reads it
    from neuroclass.config import save_config

    save_config(cfg, saved)
    again = load_config(saved)
    assert again == cfg and glassbox_config(again) == again and run_options(again) == run_options(cfg)


def test_a_config_built_without_a_record_of_what_was_given_takes_the_preset_where_at_defaults():
    cfg = load_config(overrides=["model.name=glassbox", "model.options.preset=classic", "optim.l1=0.001"])
    resolved = glassbox_config(cfg)
    assert settings(resolved) == ("sgd", 0.1, 0.0, 0.0, 1) and resolved.optim.l1 == 0.001
    assert glassbox_config(resolved) == resolved  # resolved once: kept as it is
    assert run_options(cfg) == run_options(resolved)
    assert glassbox_config(Config()) == Config()  # another family: untouched


def test_a_time_budget_without_epochs_brings_early_stopping_unless_patience_is_given():
    assert built(time_budget="30s").train.patience == BUDGET_PATIENCE
    assert built(time_budget="30s", epochs=5).train.patience == 0
    assert built("train.patience=0", time_budget="30s").train.patience == 0
    assert built("data.val_fraction=0", time_budget="30s").train.patience == 0  # nothing to watch
    assert built().train.patience == 0


@pytest.mark.parametrize("given, message", [
    (["optim.schedule=onecycle"], "optim.schedule=onecycle has no effect on the glassbox family"),
    (["train.label_smoothing=0.1"], "train.label_smoothing=0.1 has no effect on the glassbox family"),
    (["train.ema=0.99"], "train.ema=0.99 has no effect"),
    (["optim.name=adamw"], "optim.name=adamw: the glassbox network has no AdamW"),
    (["model.options.lr=0.1"], r"model.options.lr: the glassbox family takes it from optim.lr; use --set optim.lr="),
    (["model.options.batch_size=8"], "use --set train.batch_size="),
])
def test_settings_the_network_cannot_take_fail_with_one_line(given, message):
    with pytest.raises(NeuroclassError, match=message) as info:
        built(*given)
    assert "\n" not in str(info.value)


def test_an_unknown_option_lists_only_the_keys_model_options_takes():
    with pytest.raises(NeuroclassError, match="Did you mean 'model.options.activation'") as info:
        check_family_config(ModelConfig(name="glassbox", options={"activaton": "relu"}))
    listed = str(info.value).split("Valid keys here: ")[1].rstrip(".").split(", ")
    fields = [f.name for f in dataclasses.fields(GlassboxOptions)]
    assert listed == [name for name in fields if name not in CONFIG_KEYS]
    assert "lr" not in listed and "batch_size" not in listed and "preset" in listed
