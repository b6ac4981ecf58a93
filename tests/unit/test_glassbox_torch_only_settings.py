"""Class weights, a balanced sampler and augmentation, which only the torch families train with,
are refused for the glassbox family in one line naming the key and the fix, whether given on the
command line or held by a config file read without a record of what was given; their "none"
values are recorded and accepted."""
import pytest

from neuroclass.api import build_config
from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.pipeline import train

REFUSED = [("data.sampler=balanced", "data.sampler=balanced"), ("train.class_weight=auto", "train.class_weight=auto"),
           ("augment.enabled=true", "augment.enabled=True")]
FIX = "; drop it, or use a torch family for it (e.g. --model mlp)"


@pytest.mark.parametrize("given, said", REFUSED)
def test_a_torch_only_setting_given_is_refused_in_one_line(given, said):
    with pytest.raises(NeuroclassError, match=f"^{said} has no effect on the glassbox family") as info:
        build_config("digits", "glassbox", overrides=[given])
    assert str(info.value).endswith(FIX) and "\n" not in str(info.value)


@pytest.mark.parametrize("given, said", REFUSED)
def test_a_config_holding_one_fails_before_training_and_leaves_nothing(tmp_path, given, said):
    cfg = load_config(overrides=["data.source=digits", "model.name=glassbox", "train.epochs=1", "train.threads=1",
                                 f"out={tmp_path / 'runs'}", "train.quiet=true", given])
    with pytest.raises(NeuroclassError, match=f"^{said} has no effect on the glassbox family"):
        train(cfg, report=False)
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_the_command_line_says_it_in_one_error_line(tmp_path, capsys):
    code = main(["train", "digits", "--model", "glassbox", "--set", "data.sampler=balanced", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("neuroclass: error: data.sampler=balanced has no effect on the glassbox family")


def test_their_none_values_are_recorded_and_accepted():
    cfg = build_config("digits", "glassbox", overrides=["data.sampler=shuffle", "augment.enabled=false"])
    assert (cfg.data.sampler, cfg.train.class_weight, cfg.augment.enabled) == ("shuffle", "none", False)
    assert build_config("digits", "glassbox") == cfg
