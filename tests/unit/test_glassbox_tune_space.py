"""The default search space of `neuroclass tune --model glassbox`: only settings the glass-box network
uses, each of which changes the network's options, and every sampled point a valid run (an
in-memory study; no training)."""
import dataclasses
import itertools

import optuna
import pytest

from neuroclass.api import build_config
from neuroclass.glassbox import GlassboxOptions, Network
from neuroclass.training.glassbox_settings import CONFIG_KEYS, NO_EFFECT, run_options
from neuroclass.tuning.space import apply_params, base_values, default_space, suggest

OPTION_FIELDS = {f.name for f in dataclasses.fields(GlassboxOptions)}


@pytest.fixture
def base():
    """The config `neuroclass tune digits --model glassbox` starts from."""
    return build_config("digits", "glassbox")


def used(key: str) -> bool:
    """A config key the glass-box network reads: one CONFIG_KEYS maps onto its options, or one of
    its own model.options that the config does not set instead."""
    if key.startswith("model.options."):
        option = key.removeprefix("model.options.")
        return option in OPTION_FIELDS and option not in CONFIG_KEYS
    return key in CONFIG_KEYS.values()


@pytest.mark.parametrize("grid", [False, True])
def test_the_space_holds_only_settings_the_network_uses(base, grid):
    keys = {p.key for p in default_space(base, grid=grid).params}
    assert all(used(key) for key in keys), keys
    assert not keys & {"optim.weight_decay", *NO_EFFECT}
    if not grid:
        assert keys == {"optim.lr", "optim.name", "model.options.hidden", "model.options.activation",
                        "train.batch_size"}
    assert default_space(base, grid=grid).source.endswith("of glassbox")


def test_each_searched_setting_changes_the_networks_options(base):
    start = run_options(apply_params(base, {}))
    for p in default_space(base).params:
        ends = [p.choices[0], p.choices[-1]] if p.choices is not None else [p.low, p.high]
        first, last = (dataclasses.asdict(run_options(apply_params(base, {p.key: v}))) for v in ends)
        assert first != last, p.key
        changed = {k for k in first if first[k] != last[k]}
        assert changed <= {"lr", "optimizer", "hidden", "activation", "batch_size"}, (p.key, changed)
    assert start.optimizer == "adam"  # the preset's, which optim.name's default leaves


def test_every_sampled_point_is_a_valid_network(base):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    space = default_space(base)
    seen = set()
    for _ in range(40):
        trial = study.ask()
        params = suggest(trial, space)
        options = run_options(apply_params(base, params))
        assert options.lr == pytest.approx(params["optim.lr"]) and 1e-4 <= options.lr <= 0.2
        assert options.optimizer == params["optim.name"]  # sgd: plain gradient descent
        assert options.hidden == [int(w) for w in params["model.options.hidden"].split(",")]
        assert options.activation == params["model.options.activation"]
        assert options.batch_size == params["train.batch_size"]
        network = Network(options, n_inputs=64, n_classes=10, seed=0)
        assert [layer.name for layer in network.layers][-1] == f"dense{len(options.hidden)}"
        seen.add((options.optimizer, options.activation))
        study.tell(trial, 0.5)
    assert len(seen) > 3  # the sampler reached several combinations


def test_every_grid_point_is_valid(base):
    grid = default_space(base, grid=True).grid()
    points = list(itertools.product(*grid.values()))
    assert len(points) == 12
    for point in points:
        options = run_options(apply_params(base, dict(zip(grid, point))))
        assert options.lr in (1e-3, 1e-2, 1e-1) and options.optimizer in ("sgd", "adam")


def test_the_first_trial_lists_the_settings_it_trains_with(base):
    """The search's first trial is the config's own values of the searched keys: the preset's."""
    space = default_space(base)
    first = base_values(base, space)
    assert first == {"optim.lr": 1e-3, "optim.name": "adam", "model.options.activation": "relu",
                     "train.batch_size": 128}
    options = run_options(apply_params(base, first))
    assert (options.lr, options.optimizer, options.activation, options.batch_size) == (1e-3, "adam", "relu", 128)
    classic = build_config("digits", "glassbox", overrides=["model.options.preset=classic"])
    assert base_values(classic, space) == {"optim.lr": 0.1, "optim.name": "sgd", "model.options.activation": "sigmoid"}
