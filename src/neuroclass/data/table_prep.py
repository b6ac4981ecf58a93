"""Table preprocessing with scikit-learn, fitted on the training split only.

A table's raw encoded rows (data/schema.py) become model inputs through a Pipeline fitted on the
rows and labels of the training split alone, so that nothing of the validation and test rows
(their medians, their spread, their categories' frequencies) leaks into training. Its steps:

- a ColumnTransformer. Numbers (numeric, boolean and calendar columns): SimpleImputer(median)
  with data.missing=impute, then the scaler of data.scaling (StandardScaler, MinMaxScaler,
  RobustScaler, or none). Categories: SimpleImputer(most_frequent) with data.missing=impute, then
  OneHotEncoder over the codes of the file's categories (handle_unknown="ignore": a category the
  file did not hold is a block of zeros), or with data.encoding=embedding an OrdinalEncoder that
  keeps one code per column (-1 for a category the file did not hold), placed last, for the mlp's
  embeddings (models/mlp.py). With data.missing=impute, a 0/1 MissingIndicator column
  for each column the file misses values of (what SimpleImputer's add_indicator=True adds, but for
  the columns missing values anywhere in the file rather than in the training rows, so that every
  fold of a cross-validation gives the model inputs of one width; unscaled, and kept out of the
  one-hot encoding). The record's "binary_inputs" lists these and the one-hot columns, which the
  network's input standardization leaves as 0/1 (a rare 1 would land many standard deviations out);
- feature selection (data.select): SelectKBest(mutual_info_classif, k=data.max_features), or
  SelectFromModel(L1-penalised LogisticRegression, max_features=data.max_features).

The fitted Pipeline is saved in the run folder (runs/preprocess_file.py, skops, only the types in
TRUSTED_TYPES) and applied by the Predictor to the raw rows it is given. Cross-validation folds
are prepared one by one, so that each fold fits its own.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from functools import partial

import numpy as np
import sklearn
import torch
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectFromModel, SelectKBest, mutual_info_classif
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler

from neuroclass.config import DataConfig
from neuroclass.data.dataset import Dataset
from neuroclass.data.schema import Schema
from neuroclass.data.split import Splits
from neuroclass.data.table import schema_lines
from neuroclass.errors import NeuroclassError, counted

log = logging.getLogger(__name__)  # a table's schema and what was fitted, at INFO; the CLI prints them
PREPROCESS_FILE = "preprocess.skops"  # the fitted Pipeline, in the run folder
SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}
L1_THRESHOLD = 1e-5  # a weight this small is zero: the feature is not selected
UNKNOWN_CODE = -1  # data.encoding=embedding: the code of a category the file did not hold
# what a saved Pipeline may hold (skops refuses any other type when it loads the file)
TRUSTED_TYPES = [
    "sklearn.pipeline.Pipeline", "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.impute._base.SimpleImputer", "sklearn.impute._base.MissingIndicator",
    "sklearn.preprocessing._data.StandardScaler", "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._data.RobustScaler", "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.feature_selection._univariate_selection.SelectKBest",
    "sklearn.feature_selection._from_model.SelectFromModel",
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.linear_model._logistic.LogisticRegression", "functools.partial",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",  # a fitted "passthrough"
    "numpy.dtype",  # the imputers' record of the dtype they were fitted on
]


def fit_preprocessing(x: np.ndarray, y: np.ndarray, schema: Schema, cfg: DataConfig, seed: int) -> Pipeline:
    """The preprocessing Pipeline fitted on training rows ``x`` (float32 (N, D_raw), the raw
    encoding of ``schema``) and their labels ``y`` (int64 (N,)); ``cfg``'s scaling, select and
    max_features and encoding, ``schema.missing``; ``seed`` for mutual information's and the L1
    model's random draws. Raises NeuroclassError when L1 selection keeps no feature, or for
    selection with data.encoding=embedding (selection would cut the code columns the embeddings read)."""
    if cfg.encoding == "embedding" and cfg.select != "none" and schema.categorical():
        raise NeuroclassError(f"data.select={cfg.select} cannot pick among the category codes of data.encoding="
                              "embedding; use data.encoding=onehot with selection, or data.select=none")
    columns = _columns(schema, cfg.scaling, cfg.encoding).fit(x)
    steps = [("columns", columns)]
    if cfg.select != "none":
        inputs = columns.transform(x)
        steps.append(("select", _selector(cfg, inputs.shape[1], seed).fit(inputs, y)))
        if not steps[-1][1].get_support().any():
            raise NeuroclassError("data.select=l1: the L1-penalised model gave no feature a weight, so none "
                                  "would be kept; use --set data.select=mutual_info or data.select=none")
    return Pipeline(steps)


def _columns(schema: Schema, scaling: str, encoding: str = "onehot") -> ColumnTransformer:
    """The ColumnTransformer for ``schema``'s raw columns (unfitted). Its output has the same
    width whichever rows it is fitted on (cross-validation folds give ensembles of one shape): a
    missing-value column for each column the file misses values of, one-hot columns for every
    category of the file (``encoding`` "onehot"), or one code column per categorical column, last
    ("embedding")."""
    impute = schema.missing == "impute"
    at = schema.positions()
    number_steps = ([("impute", SimpleImputer(strategy="median", keep_empty_features=True))] if impute else [])
    if scaling != "none":
        number_steps.append(("scale", SCALERS[scaling]()))
    parts = []
    if at["numbers"]:
        parts.append(("numbers", Pipeline(number_steps) if number_steps else "passthrough", at["numbers"]))
    if impute and at["missing numbers"]:
        parts.append(("missing numbers", _indicator(), at["missing numbers"]))
    if impute and at["missing categories"]:
        parts.append(("missing categories", _indicator(), at["missing categories"]))
    if at["categories"]:
        codes = [[float(i) for i in range(len(c.categories))] for c in schema.categorical()]
        encoder = (OneHotEncoder(categories=codes, handle_unknown="ignore", sparse_output=False)
                   if encoding == "onehot" else
                   OrdinalEncoder(categories=codes, handle_unknown="use_encoded_value", unknown_value=UNKNOWN_CODE))
        category_steps = ([("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True))]
                          if impute else []) + [(encoding, encoder)]
        # one-hot blocks sit before the missing-category columns, as they always have; codes go last,
        # where the mlp's embeddings read them
        parts.insert(len(parts) - (encoding == "onehot" and impute and bool(at["missing categories"])),
                     ("categories", Pipeline(category_steps), at["categories"]))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0)


def _indicator() -> MissingIndicator:
    """0/1 columns saying a value was missing (SimpleImputer's add_indicator), one per given column."""
    return MissingIndicator(features="all", error_on_new=False)


def _selector(cfg: DataConfig, width: int, seed: int) -> SelectKBest | SelectFromModel:
    """The selection step of ``cfg.select`` for ``width`` features (unfitted)."""
    most = min(cfg.max_features, width) if cfg.max_features is not None else None
    if cfg.select == "mutual_info":
        return SelectKBest(partial(mutual_info_classif, random_state=seed), k=most)
    return SelectFromModel(_l1_model(seed), threshold=L1_THRESHOLD, max_features=most)


def _l1_model(seed: int) -> LogisticRegression:
    """An L1-penalised logistic regression (saga), in the form this scikit-learn takes."""
    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    if (major, minor) >= (1, 8):  # 'penalty' is deprecated from 1.8: l1_ratio=1 is the L1 penalty
        return LogisticRegression(l1_ratio=1.0, solver="saga", max_iter=1000, random_state=seed)
    return LogisticRegression(penalty="l1", solver="saga", max_iter=1000, random_state=seed)


def transform(pipe: Pipeline, x: torch.Tensor | np.ndarray, where: str = "rows") -> np.ndarray:
    """Model inputs, float32 (N, D), for raw encoded rows ``x`` (N, D_raw); NeuroclassError naming
    ``where`` when ``x`` has another width than the rows the Pipeline was fitted on."""
    x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    expected = int(pipe.n_features_in_)
    if x.ndim != 2 or x.shape[1] != expected:
        width = x.shape[1] if x.ndim == 2 else f"shape {x.shape[1:]}"
        raise NeuroclassError(f"{where}: rows of {width} encoded columns but the run's preprocessing "
                              f"expects {expected}; give rows with the training table's columns")
    return np.asarray(pipe.transform(x), dtype=np.float32)


def feature_names(pipe: Pipeline, schema: Schema) -> list[str]:
    """Readable names of the model inputs: "age", "colour=red", "age (missing)", in the
    Pipeline's output order, after selection."""
    raw, column_at = schema.encoded_names(), schema.column_at()
    names = []
    for name, part, positions in pipe.named_steps["columns"].transformers_:
        if name in ("numbers", "passthrough"):
            names += [raw[i] for i in positions]
        elif name == "categories" and "embedding" in part.named_steps:
            names += [f"{column.name} (category code)" for column in schema.categorical()]
        elif name == "categories":
            onehot = part.named_steps["onehot"]
            for column, codes in zip(schema.categorical(), onehot.categories_):
                names += [f"{column.name}={column.categories[int(c)]}" for c in codes]
        elif name.startswith("missing"):
            names += [f"{column_at[i]} (missing)" for i in positions]
    if "select" in pipe.named_steps:
        names = [n for n, kept in zip(names, pipe.named_steps["select"].get_support()) if kept]
    return names


def binary_inputs(pipe: Pipeline) -> list[int]:
    """Positions, in the model inputs of the fitted ``pipe`` (after selection), of its 0/1 columns:
    the missing-value indicators and the one-hot categories, which the model's input
    standardization leaves as they are (data/normalization.py ``leave_unscaled``)."""
    binary = []
    for name, part, positions in pipe.named_steps["columns"].transformers_:
        if name == "categories" and "onehot" in part.named_steps:
            width = sum(len(codes) for codes in part.named_steps["onehot"].categories_)
        else:
            width = len(positions) if name != "remainder" else 0
        binary += [name.startswith("missing") or (name == "categories" and "onehot" in part.named_steps)] * width
    if "select" in pipe.named_steps:
        binary = [b for b, kept in zip(binary, pipe.named_steps["select"].get_support()) if kept]
    return [i for i, b in enumerate(binary) if b]


def prepare_table(dataset: Dataset, splits: Splits, cfg: DataConfig,
                  seed: int) -> tuple[Pipeline | None, Splits, Dataset]:
    """A run's table preprocessing: for a table read from a file (a schema record in
    ``dataset.preprocessing["table"]``) its schema and what was fitted are logged (INFO, the run's
    first lines) and ``fit_on_splits``'s result returned; other data as it is: (None, splits, dataset)."""
    if "table" not in dataset.preprocessing:
        return None, splits, dataset
    where = dataset.source or dataset.name
    for line in schema_lines(where, Schema.from_record(dataset.preprocessing["table"], where)):
        log.info("%s", line)
    fitted, splits, dataset = fit_on_splits(dataset, splits, cfg, seed)
    log.info("%s", fit_line(dataset.preprocessing))
    return fitted, splits, dataset


def fit_on_splits(dataset: Dataset, splits: Splits, cfg: DataConfig,
                  seed: int) -> tuple[Pipeline, Splits, Dataset]:
    """Fit the preprocessing of ``dataset`` (a table with a schema record, preprocessing["table"])
    on ``splits.train`` and turn every split's rows into model inputs. Returns (the fitted
    Pipeline, the splits as model inputs, ``dataset`` with its record completed: feature_names
    after the transform, and under "table" the settings and the file the Pipeline is saved in).
    ``dataset`` keeps its raw rows, which the content hash and the run's reloads see."""
    where = dataset.source or dataset.name
    schema = Schema.from_record(dataset.preprocessing["table"], where)
    with warnings.catch_warnings():  # the L1 model's iterations cap: the selection stands as it is
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = fit_preprocessing(splits.train.x.numpy(), splits.train.y.numpy(), schema, cfg, seed)

    def inputs(part: Dataset | None) -> Dataset | None:
        return None if part is None else replace(part, x=torch.from_numpy(transform(pipe, part.x, where)))

    splits = replace(splits, train=inputs(splits.train), val=inputs(splits.val), test=inputs(splits.test))
    table = {**dataset.preprocessing["table"], "scaling": cfg.scaling, "select": cfg.select,
             "max_features": cfg.max_features, "encoding": cfg.encoding, "transformer": PREPROCESS_FILE,
             "fitted_rows": len(splits.train), "binary_inputs": binary_inputs(pipe)}
    if cfg.encoding == "embedding":  # the last len(categories) model inputs are codes 0..n-1 (-1: unseen)
        table["embedding"] = {"columns": [c.name for c in schema.categorical()],
                              "categories": [len(c.categories) for c in schema.categorical()]}
    record = {**dataset.preprocessing, "feature_names": feature_names(pipe, schema), "table": table}
    return pipe, splits, replace(dataset, preprocessing=record)


def fit_line(record: dict) -> str:
    """The log line that says what was fitted, from a completed record (``fit_on_splits``).

    >>> fit_line({"feature_names": ["a", "a (missing)"], "table": {"missing": "impute", "scaling": "standard",
    ...           "select": "none", "max_features": None, "fitted_rows": 80, "encoded_names": ["a"],
    ...           "columns": [{"name": "a", "kind": "numeric", "missing": True}]}})
    'preprocessing fitted on the training split (80 rows): missing values filled (median, most frequent category) with 0/1 missing columns; standard scaling; 2 model inputs from 1 encoded column'
    """
    table = record["table"]
    gaps = any(c.get("missing") for c in table.get("columns", ()))
    said = [("missing values filled (median, most frequent category) with 0/1 missing columns" if gaps
             else "no missing values") if table["missing"] == "impute" else "missing values refused (data.missing=error)",
            f"{table['scaling']} scaling" if table["scaling"] != "none" else "no scaling"]
    if table.get("embedding", {}).get("columns"):
        said.append(f"{counted(len(table['embedding']['columns']), 'categorical column')} as codes for "
                    "learned embeddings")
    if table["select"] != "none":
        said.append(f"{table['select']} selection" + (f" (at most {table['max_features']})"
                                                      if table["max_features"] else ""))
    n_in, n_out = len(table["encoded_names"]), len(record["feature_names"])
    return (f"preprocessing fitted on the training split ({table['fitted_rows']:,} rows): {'; '.join(said)}; "
            f"{counted(n_out, 'model input')} from {counted(n_in, 'encoded column')}")
