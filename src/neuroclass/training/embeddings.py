"""data.encoding=embedding: a table's categorical columns reach the mlp as codes that it embeds.

The table's preprocessing (data/table_prep.py) puts one code column per categorical column last
and records their category counts under preprocessing["table"]["embedding"]; here the run's model
options learn those counts (model.options.categories, recorded in config.yaml and model.json, so
that a loaded or resumed run builds the same embeddings), and the input standardization leaves the
code columns as they are (mean 0, std 1), since a code is an index, not a measurement.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from neuroclass.config import Config
from neuroclass.errors import NeuroclassError

EMBEDDING_FAMILIES = ("mlp",)  # the families that take category codes (models/mlp.py)


def check_encoding(cfg: Config, kind: str) -> None:
    """data.encoding=embedding needs a table and a family that embeds codes; model.options.categories
    is the pipeline's to set, and model.options.embedding_dim needs data.encoding=embedding. Raises
    NeuroclassError naming the fix.

    >>> check_encoding(Config(), "image")  # one-hot (the default): nothing to check
    """
    options = cfg.model.options if isinstance(cfg.model.options, dict) else {}
    if cfg.data.encoding == "onehot":
        if options.get("categories"):
            raise NeuroclassError("model.options.categories is set from the table by data.encoding=embedding; "
                                  "drop model.options.categories, or add --set data.encoding=embedding")
        if options.get("embedding_dim") is not None:  # one-hot columns have no embeddings to size
            raise NeuroclassError(f"model.options.embedding_dim={options['embedding_dim']} sizes the learned "
                                  "embeddings of data.encoding=embedding, and data.encoding is onehot; add "
                                  "--set data.encoding=embedding, or drop model.options.embedding_dim")
        return
    if kind != "table":
        raise NeuroclassError(f"data.encoding=embedding applies to a table's categorical columns, and "
                              f"{cfg.data.source} holds images; drop data.encoding")
    if cfg.model.name not in EMBEDDING_FAMILIES:
        raise NeuroclassError(f"data.encoding=embedding feeds category codes to learned embeddings, which "
                              f"model {cfg.model.name} does not have; use --model mlp, or drop data.encoding "
                              "(one-hot columns)")


def embedding_inputs(cfg: Config, preprocessing: dict, mean: torch.Tensor,
                     std: torch.Tensor) -> tuple[Config, torch.Tensor, torch.Tensor]:
    """``cfg`` with model.options.categories from the table record in ``preprocessing``, and the
    input statistics ``mean``/``std`` (1, D) with the code columns (the last ones) at 0 and 1.
    Anything else is returned as it is."""
    counts = preprocessing.get("table", {}).get("embedding", {}).get("categories", [])
    if cfg.data.encoding != "embedding" or not counts:
        return cfg, mean, std
    mean, std = mean.clone(), std.clone()
    mean[..., -len(counts):], std[..., -len(counts):] = 0.0, 1.0
    options = {**cfg.model.options, "categories": [int(n) for n in counts]}
    return replace(cfg, model=replace(cfg.model, options=options)), mean, std
