"""data.encoding=embedding: a table's categorical columns as codes that the mlp embeds. The run
records the category counts, predicts raw rows as its test split did, embeds an unseen category as
zeros, learns a label carried by a many-category column, and refuses what cannot work."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from neuroclass.cli import main
from neuroclass.config import load_config
from neuroclass.errors import NeuroclassError
from neuroclass.inference import Predictor
from neuroclass.pipeline import build, finalize, fit, prepare, process_state, write_run
from neuroclass.runs import RunFolder

TINY = ["model.name=mlp", "model.options.hidden=[32]", "train.device=cpu", "train.quiet=true"]


def shop_table(path, n=600, seed=0):
    """A label decided by which of 40 shops a row comes from (plus noise columns), with gaps."""
    rng = np.random.default_rng(seed)
    shop = rng.integers(0, 40, size=n)
    df = pd.DataFrame({"shop": [f"shop-{s:02d}" for s in shop], "size": rng.choice(["s", "m", "l"], size=n),
                       "price": rng.normal(10, 2, size=n),
                       "label": np.where(shop % 3 == 0, "high", "low")})
    df.loc[rng.choice(n, size=20, replace=False), "size"] = np.nan
    df.to_csv(path, index=False)
    return path


def train_kept(tmp_path, source, *overrides):
    cfg = load_config(overrides=[f"data.source={source}", "data.label_column=label", f"out={tmp_path / 'runs'}",
                                 *TINY, *overrides])
    with process_state(cfg):
        prep = prepare(cfg)
        model, tuning = build(prep)
        done = finalize(prep, model, fit(prep, model, tuning))
        path = write_run(RunFolder.create(cfg.out, "run"), prep, done)
    return path, prep, done


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shop")
    return (tmp, *train_kept(tmp, shop_table(tmp / "shops.csv"), "data.encoding=embedding", "train.epochs=30"))


def test_the_codes_come_last_and_the_model_embeds_each_column(shop_run):
    _, path, prep, done = shop_run
    meta = json.loads((path / "model.json").read_text())
    table = meta["preprocessing"]["table"]
    assert table["encoding"] == "embedding"
    assert table["embedding"] == {"columns": ["shop", "size"], "categories": [40, 3]}
    names = meta["preprocessing"]["feature_names"]
    assert names[-2:] == ["shop (category code)", "size (category code)"]
    assert prep.cfg.model.options["categories"] == [40, 3]
    net = done.model.net
    assert [(e.num_embeddings, e.embedding_dim, e.padding_idx) for e in net.embeddings] == [(41, 13, 40), (4, 3, 3)]
    codes = prep.splits.train.x[:, -2:]
    assert torch.equal(codes, codes.round()) and codes.min() >= 0 and codes[:, 0].max() <= 39
    # the input standardization leaves the codes as they are
    standardize = done.model.standardize
    assert standardize.mean.flatten()[-2:].tolist() == [0.0, 0.0]
    assert standardize.std.flatten()[-2:].tolist() == [1.0, 1.0]


def test_a_label_carried_by_a_many_category_column_is_learned(shop_run):
    _, _, _, done = shop_run
    assert done.metrics["accuracy"] >= 0.9


def test_predicting_the_raw_test_rows_gives_the_runs_test_probabilities(shop_run):
    tmp, path, prep, done = shop_run
    raw = pd.read_csv(tmp / "shops.csv")
    raw.iloc[prep.splits.indices["test"]].drop(columns=["label"]).to_csv(tmp / "rows.csv", index=False)
    predictor = Predictor.from_run(path)
    proba = predictor.predict_proba_tensor(predictor.load_files([tmp / "rows.csv"])[0])
    assert np.allclose(proba, done.policy.probabilities(done.test_logits), atol=1e-6)


def test_an_unseen_category_is_embedded_as_zeros(shop_run):
    tmp, path, _, _ = shop_run
    rows = pd.read_csv(tmp / "shops.csv").head(4).drop(columns=["label"])
    rows.loc[[0, 2], "shop"] = "shop-99"
    rows.to_csv(tmp / "new.csv", index=False)
    predictor = Predictor.from_run(path)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        x, _ = predictor.load_files([tmp / "new.csv"])
    assert any("not seen in training" in str(w.message) for w in said)
    inputs = predictor.model_inputs(x)
    assert inputs[[0, 2], -2].tolist() == [-1.0, -1.0]
    embedding = predictor.model.net.embeddings[0]
    assert torch.all(embedding.weight[embedding.padding_idx] == 0)  # fixed, never trained
    assert np.isfinite(predictor.predict_proba_tensor(x)).all()


def test_the_same_table_one_hot_is_wider_and_has_no_embeddings(tmp_path):
    source = shop_table(tmp_path / "shops.csv", n=200)
    shops = pd.read_csv(source)["shop"].nunique()
    path, prep, done = train_kept(tmp_path, source, "train.epochs=1")
    assert prep.splits.train.x.shape[1] == 1 + shops + 3 + 1  # price, one-hot blocks, size (missing)
    assert len(done.model.net.embeddings) == 0 and "categories" not in prep.cfg.model.options


@pytest.mark.parametrize("overrides, words", [
    (["model.name=xgboost", "model.options={}"], "model xgboost does not have"),
    (["data.select=mutual_info", "data.max_features=2"], "cannot pick among the category codes"),
    (["data.encoding=onehot", "model.options.categories=[3]"], "drop model.options.categories"),
])
def test_what_embeddings_cannot_do_is_one_clear_error(tmp_path, overrides, words):
    source = shop_table(tmp_path / "shops.csv", n=120)
    cfg = load_config(overrides=[f"data.source={source}", "data.label_column=label", *TINY,
                                 "data.encoding=embedding", *overrides])
    with pytest.raises(NeuroclassError, match=words), process_state(cfg):
        prepare(cfg)


def test_embeddings_on_images_are_refused_through_the_cli(tmp_path, capsys):
    code = main(["train", "digits", "--set", "data.encoding=embedding", "--set", "train.epochs=1",
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("holds images; drop data.encoding") and "data.encoding=embedding" in err[-1]
