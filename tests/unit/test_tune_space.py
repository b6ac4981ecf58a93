"""The search space of `neuroclass tune`: parsing, validation, grids, default spaces, and the
budget each trial gets (a fake clock and an in-memory study; no training)."""
from __future__ import annotations

import optuna
import pytest

from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.tuning.search import DEFAULT_TRIALS, Search
from neuroclass.tuning.settings import TuneSettings
from neuroclass.tuning.space import apply_params, default_space, load_space, parse_space, suggest


@pytest.fixture
def base():
    return load_config(overrides=["data.source=digits", "model.name=mlp"])


def test_lists_and_ranges_parse_with_types_from_the_config(base):
    space = parse_space({"optim.lr": {"low": 1e-4, "high": 1e-1, "log": True},
                         "train.batch_size": {"low": 32, "high": 128, "step": 32},
                         "model.options.activation": ["relu", "gelu"]}, base, "s.yaml")
    lr, batch, act = space.params
    assert lr.log and not lr.integer and (lr.low, lr.high) == (1e-4, 1e-1)
    assert batch.integer and batch.grid_values() == [32, 64, 96, 128]
    assert act.choices == ("relu", "gelu")


@pytest.mark.parametrize("tree, words", [
    ({"optim.lrr": [0.1]}, "Did you mean 'optim.lr'"),
    ({"model.options.dropoot": {"low": 0.0, "high": 0.5}}, "Did you mean 'model.options.dropout'"),
    ({"optim.lr": {"low": 0.1, "high": 0.01}}, "low < high"),
    ({"optim.lr": {"low": 0.0, "high": 0.1, "log": True}}, "log range needs low > 0"),
    ({"train.label_smoothing": [0.0, 1.5]}, "train.label_smoothing=1.5 is not a valid value"),
    ({"train.batch_size": {"low": 16.5, "high": 64}}, "whole numbers"),
    ({"optim.lr": []}, "empty list"),
    ({"optim.lr": 0.1}, "a list of values or a range"),
    ({}, "empty"),
])
def test_a_bad_space_fails_with_one_line_naming_the_key(base, tree, words):
    with pytest.raises(NeuroclassError) as err:
        parse_space(tree, base, "s.yaml")
    assert words in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("s.yaml")


def test_space_file_errors(base, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(NeuroclassError, match="is empty"):
        load_space(empty, base)
    with pytest.raises(NeuroclassError, match="file not found"):
        load_space(tmp_path / "missing.yaml", base)


def test_grid_needs_discrete_values_and_counts_the_product(base):
    space = parse_space({"optim.lr": [0.001, 0.01], "train.batch_size": [64, 128]}, base, "g")
    assert space.grid() == {"optim.lr": [0.001, 0.01], "train.batch_size": [64, 128]}
    assert space.grid_size() == 4
    continuous = parse_space({"optim.lr": {"low": 1e-3, "high": 1e-2}}, base, "g")
    with pytest.raises(NeuroclassError, match="continuous range; give it a list"):
        continuous.grid()


def test_as_tree_gives_the_same_space_back(base):
    space = default_space(base)
    again = parse_space(space.as_tree(), base, "again")
    assert again.signature() == space.signature()


def test_default_spaces_per_family(base):
    mlp = {p.key for p in default_space(base).params}
    assert {"optim.lr", "optim.weight_decay", "model.options.dropout"} <= mlp
    auto = load_config(overrides=["data.source=digits"])
    assert "model.options.dropout" not in {p.key for p in default_space(auto).params}
    assert default_space(base, grid=True).grid_size() == 12


def test_suggested_values_make_valid_configs(base):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    space = default_space(base)
    for _ in range(20):
        trial = study.ask()
        params = suggest(trial, space)
        cfg = apply_params(base, params)
        assert cfg.optim.lr == params["optim.lr"] and cfg.train.batch_size == params["train.batch_size"]
        assert 5e-4 <= cfg.optim.lr <= 2e-2
        study.tell(trial, 0.5)


def test_a_searched_family_starts_from_its_own_options(base):
    cfg = apply_params(load_config(overrides=["model.name=cnn", "model.options.dropout=0.3"]), {"model.name": "mlp"})
    assert cfg.model.name == "mlp" and cfg.model.options == {}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _search(base, budget, trials, clock, sampler="tpe", rungs=None):
    cfg = load_config(values={**{"data": {"source": "digits"}, "model": {"name": "mlp"}},
                              "train": {"time_budget": budget}})
    settings = TuneSettings(cfg, trials=trials, sampler=sampler, rungs=rungs)
    space = default_space(cfg)
    return Search(settings, __import__("pathlib").Path("."), space, optuna.create_study(), clock, clock())


def test_each_trial_gets_an_equal_share_of_the_budget_left(base):
    clock = FakeClock()
    search = _search(base, 300.0, 5, clock)
    search.share()
    held = search.reserve
    assert search.trial_seconds == pytest.approx((300.0 - held) / 5)
    assert search.next_budget() == pytest.approx(search.trial_seconds)
    clock.now += 300.0 - held - 10.0  # 10 s left of the trials' time: the next trial gets that
    assert search.next_budget() == pytest.approx(10.0)
    assert search.should_stop()  # less than half a share left: no new trial


def test_without_trials_the_budget_is_shared_by_the_default_count(base):
    clock = FakeClock()
    search = _search(base, 1800.0, None, clock, rungs=1)
    search.share()
    assert search.trial_seconds == pytest.approx((1800.0 - search.reserve) / DEFAULT_TRIALS)
    assert not search.should_stop()


def test_a_short_budget_plans_fewer_default_trials(base):
    clock = FakeClock()
    search = _search(base, 120.0, None, clock)
    search.share()
    left = 120.0 - search.reserve
    assert search.trial_seconds == pytest.approx(left / int(left // 30.0))  # 3 trials of >= 30 s, not 20
    tiny = _search(base, 40.0, None, FakeClock())
    tiny.share()
    assert tiny.trial_seconds == pytest.approx((40.0 - tiny.reserve) / 2)  # never fewer than 2


def test_a_budget_too_small_for_the_trials_fails_before_any(base):
    search = _search(base, 30.0, 20, FakeClock())
    with pytest.raises(NeuroclassError, match="fewer --trials"):
        search.share()


def test_settings_are_checked():
    cfg = load_config(overrides=["data.source=digits"])
    with pytest.raises(NeuroclassError, match="--sampler must be one of"):
        TuneSettings(cfg, trials=3, sampler="anneal").validate()
    with pytest.raises(NeuroclassError, match="needs an end"):
        TuneSettings(cfg).validate()
    with pytest.raises(NeuroclassError, match="--cv must be >= 2"):
        TuneSettings(cfg, trials=2, cv=1).validate()


def test_a_photo_folder_is_searched_with_the_photo_family_without_decoding_it(tmp_path, monkeypatch):
    from neuroclass import data as data_mod
    from neuroclass.data.synthetic_photos import write_photo_folder
    from neuroclass.tuning.search import _resolve_family

    folder = write_photo_folder(tmp_path / "photos", images=24, classes=2, seed=0)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the photos were decoded before the trials chose their side")

    monkeypatch.setattr(data_mod, "load", no_decoding)
    cfg = _resolve_family(load_config(overrides=[f"data.source={folder}"]))
    assert cfg.model.name == "resnet"  # as train picks for photos (training/resolution.py)


def test_the_search_starts_from_the_configs_own_values(base):
    from neuroclass.tuning.space import base_values

    values = base_values(base, default_space(base))
    assert values == {"optim.lr": base.optim.lr, "optim.weight_decay": base.optim.weight_decay,
                      "train.label_smoothing": base.train.label_smoothing, "model.options.dropout": 0.2}
    # an automatic batch size (None) and values outside the space are left to the sampler
    narrow = parse_space({"optim.lr": {"low": 0.1, "high": 0.5}, "train.batch_size": [64, 128],
                          "model.options.dropout": {"low": 0.0, "high": 0.5, "step": 0.3}}, base, "s")
    assert base_values(base, narrow) == {}


def test_workers_started_together_draw_different_values(base):
    """Worker A (pid p, one trial queued before it) and worker B (pid p + 1, none): a seed that
    added the two would give both the same sequence."""
    from neuroclass.tuning.search import _sampler

    space = parse_space({"optim.lr": {"low": 1e-3, "high": 1e-1, "log": True}}, base, "s")
    settings = TuneSettings(base, trials=20, sampler="random", storage="postgresql://x/y")
    drawn = []
    for entropy in ((1, 1000), (0, 1001)):
        study = optuna.create_study(sampler=_sampler(settings, space, entropy))
        drawn.append([suggest(study.ask(), space)["optim.lr"] for _ in range(3)])
    assert drawn[0] != drawn[1]
