"""A glassbox entry of `neuroclass compare` trains with the values the user gave, even one equal to
the config's default, and takes its preset's where none was given (as `train --model glassbox`
does); settings it has no use for are refused, naming the entry, before anything trains."""
import pytest

import neuroclass
from neuroclass.api import build_config
from neuroclass.cli import main
from neuroclass.config import Config, given_keys
from neuroclass.errors import NeuroclassError
from neuroclass.runs import RunFolder
from neuroclass.tuning.compare_entries import checked_configs, parse_entries

DEFAULT_LR = Config().optim.lr  # the config's own default learning rate (the classic preset's is 0.1)
DEFAULT_MOMENTUM = Config().optim.momentum  # 0.9; the presets' is 0
GIVEN = [f"optim.lr={DEFAULT_LR}", f"optim.momentum={DEFAULT_MOMENTUM}"]  # both given, both the defaults


def entry_settings(configs) -> list[tuple]:
    return [(c.optim.name, c.optim.lr, c.optim.momentum, c.train.batch_size) for c in configs]


def test_given_values_equal_to_the_defaults_are_kept_and_the_rest_is_the_presets():
    base = build_config("digits", overrides=GIVEN)
    entries = parse_entries("glassbox[preset=classic], glassbox")
    configs = checked_configs(base, entries, given_keys(overrides=GIVEN))
    assert entry_settings(configs) == [("sgd", DEFAULT_LR, DEFAULT_MOMENTUM, 1), ("adam", DEFAULT_LR, DEFAULT_MOMENTUM, 128)]
    nothing_given = checked_configs(build_config("digits"), entries, given_keys())
    assert entry_settings(nothing_given) == [("sgd", 0.1, 0.0, 1), ("adam", 1e-3, 0.0, 128)]


def test_a_setting_a_glassbox_entry_cannot_take_is_refused_naming_the_entry():
    overrides = ["data.sampler=balanced"]
    with pytest.raises(NeuroclassError, match=r"^--models entry 'glassbox': data.sampler=balanced has no effect "
                                              r"on the glassbox family") as info:
        checked_configs(build_config("digits", overrides=overrides), parse_entries("mlp,glassbox"),
                        given_keys(overrides=overrides))
    assert "\n" not in str(info.value)


def trained_settings(run) -> tuple:
    cfg = RunFolder.open(run).config()
    return cfg.optim.name, cfg.optim.lr, cfg.optim.momentum


def test_the_command_line_and_the_api_train_a_glassbox_entry_with_the_given_values(tmp_path, capsys):
    quick = ["train.epochs=1", "train.threads=1", "train.tta=none", "data.limit=300"]
    code = main(["compare", "digits", "--models", "glassbox[preset=classic]", "--no-report", "--quiet",
                 "--out", str(tmp_path / "cli"), *[a for o in [*GIVEN, *quick] for a in ("--set", o)]])
    assert code == 0, capsys.readouterr().err
    (folder,) = (tmp_path / "cli").glob("compare-*")
    assert trained_settings(folder / "best") == ("sgd", DEFAULT_LR, DEFAULT_MOMENTUM)
    result = neuroclass.compare("digits", "glassbox[preset=classic]", overrides=[*GIVEN, *quick],
                                out=tmp_path / "api", report=False)
    assert trained_settings(result.best) == ("sgd", DEFAULT_LR, DEFAULT_MOMENTUM)
