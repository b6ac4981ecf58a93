import pytest

from neuroclass.config import load_config, parse_duration, save_config
from neuroclass.errors import NeuroclassError


def test_defaults_then_file_then_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.5\n  name: sgd\ntrain:\n  epochs: 4\n")
    cfg = load_config(path, overrides=["optim.lr=0.01"])
    assert cfg.optim.lr == 0.01  # --set beats the file
    assert cfg.optim.name == "sgd"  # the file beats defaults
    assert cfg.train.epochs == 4
    assert cfg.train.eval_batch_size == 256  # untouched default


def test_saved_config_replays_identically(tmp_path):
    cfg = load_config(overrides=["model.name=mlp", "model.options.hidden=[8, 4]", "train.time_budget=2m"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert cfg.train.time_budget == 120.0


@pytest.mark.parametrize("override, words", [
    ("optim.lrr=0.1", ["optim.lrr", "Did you mean 'optim.lr'"]),
    ("traine.epochs=1", ["traine", "Did you mean 'train'"]),
    ("optim.lr=-1", ["'optim.lr' parameter must be > 0", "Got -1"]),
    ("optim.name=adamm", ["one of", "Did you mean 'adam'"]),
    ("train.epochs=two", ["'train.epochs' parameter must be of type int"]),
    ("data.val_fraction=1.5", ["must be >= 0 and < 1"]),
    ("data.test_fraction=0.95", ["data.val_fraction + data.test_fraction must be < 1", "0.1 + 0.95"]),
    ("train.device=tpu", ["'train.device' parameter must be auto, cpu, mps, cuda or cuda:N", "'tpu'",
                          "Did you mean 'cpu'"]),
    ("train.device=cuda:x", ["'train.device'", "cuda:N"]),
    ("model.init=kaiming", ["'model.init'", "'he'"]),
    ("train.time_budget=0", ["train.time_budget", "> 0"]),
])
def test_bad_values_fail_with_the_parameter_named(override, words):
    with pytest.raises(NeuroclassError) as info:
        load_config(overrides=[override])
    for word in words:
        assert word in str(info.value)


def test_durations():
    assert parse_duration("90s") == 90
    assert parse_duration("5m") == 300
    assert parse_duration("1.5h") == 5400
    assert parse_duration(42) == 42
    with pytest.raises(NeuroclassError, match="not a duration"):
        parse_duration("soon")


def test_device_forms_pass_at_load_and_availability_waits_for_the_run():
    # cuda:7 need not exist on this machine: device.pick_device checks that when a run starts
    assert load_config(overrides=["train.device=cuda:7"]).train.device == "cuda:7"


def test_model_size_is_left_to_the_models_layer():
    from neuroclass.models.registry import check_model_config

    cfg = load_config(overrides=["model.name=mlp", "model.size=huge"])  # config.py knows no families
    with pytest.raises(NeuroclassError, match=r"'model.size'.*a size of mlp \(s, m, l, xl\)"):
        check_model_config(cfg.model)


def test_model_options_are_checked_by_the_family():
    from neuroclass.models import resolved_options

    assert resolved_options("mlp", {"hidden": [8]})["hidden"] == [8]
    with pytest.raises(NeuroclassError, match="Did you mean 'model.options.hidden'"):
        resolved_options("mlp", {"hiden": [8]})
