"""model.safetensors and model.json: the trained network without pickle.

model.json holds what is needed to rebuild the network and feed it raw inputs: the family, its
options, the input shape, class names, preprocessing and the inference policy (test-time views and
temperature). Weights are safetensors; loading never executes code from a file.

A classical family (classical/: scikit-learn, XGBoost, LightGBM) is saved in its library's own
format beside them, never pickled: model.ubj (XGBoost UBJSON), model.lgb.txt (LightGBM's text),
model.skops (scikit-learn through skops, loaded with an explicit list of trusted types); model.json
names the file under "classical", with the image features (HOG/LBP) the model computes first, and
model.safetensors holds no tensors. The glass-box network (NumPy) keeps its weights in
model.safetensors under its own names, dense0.weight (D_in, D_out), ... (runs/glassbox_module.py).
"""
from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file, save

from neuroclass.classical import CLASSICAL, dump_fitted, feature_options, load_fitted
from neuroclass.classical.families import LIGHTGBM_TEXT, SKOPS, XGBOOST_UBJ
from neuroclass.classical.model import ClassicalModel
from neuroclass.config import ModelConfig
from neuroclass.errors import NeuroclassError
from neuroclass.io import write_bytes_atomic, write_text_atomic
from neuroclass.models import Classifier, create
from neuroclass.models.registry import split_name
from neuroclass.runs.glassbox_module import GLASSBOX, GlassboxModule, load_glassbox

# 2: the inference policy under "inference" (version 1 held "temperature", "tta" and "tta_shift"
# at the top level; it is still read). 3: a table read from a file records its schema under
# preprocessing["table"] and its fitted preprocessing in preprocess.skops (data/schema.py,
# data/table_prep.py); a table run of version 2 or 1 (preprocessing "columns" and "categorical":
# numbers as they are, categories one-hot) is still read and predicts as it did
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)


def model_metadata(cfg: ModelConfig, options: dict, input_shape: tuple[int, ...], classes: list[str],
                   kind: str, preprocessing: dict, inference: dict | None = None) -> dict:
    """model.json's content. ``inference``: InferencePolicy.as_dict() (default: one view, T = 1).

    >>> model_metadata(ModelConfig(name="mlp"), {}, (1, 8, 8), ["a", "b"], "image", {})["inference"]
    {'tta': 'none', 'tta_shift': 1, 'temperature': 1.0}
    """
    family, _ = split_name(cfg.name, {})  # "tv:resnet18" -> "tv"; the arch is in the options
    return {"format_version": FORMAT_VERSION, "family": family, "options": options,
            "init": cfg.init, "kind": kind, "input_shape": list(input_shape), "classes": list(classes),
            "preprocessing": preprocessing,
            "inference": dict(inference or {"tta": "none", "tta_shift": 1, "temperature": 1.0})}


def save_tensors(tensors: dict, fmt: str = "pt") -> bytes:
    """``tensors`` ({name: CPU tensor}) as safetensors bytes with one metadata key, "format".

    One key, because safetensors keeps the metadata in a hash map whose order changes from process
    to process: with two keys the same weights saved by two processes (a run, and the same run
    resumed) differed in bytes. What else a reader needs is in model.json / the checkpoint's JSON.

    >>> import torch
    >>> save_tensors({"w": torch.ones(1)}) == save_tensors({"w": torch.ones(1)})
    True
    """
    return save(tensors, metadata={"format": fmt})


CLASSICAL_FILES = {XGBOOST_UBJ: "model.ubj", LIGHTGBM_TEXT: "model.lgb.txt", SKOPS: "model.skops"}


def save_model(folder: Path, model: Classifier | ClassicalModel, meta: dict) -> None:
    """Write model.safetensors and model.json into ``folder``, each atomically (neuroclass/io.py),
    and a classical model's native file. The same weights and metadata give the same bytes
    (``save_tensors``)."""
    folder = Path(folder)
    if isinstance(model, ClassicalModel):
        data, fmt = dump_fitted(model.fitted)
        write_bytes_atomic(folder / CLASSICAL_FILES[fmt], data)
        meta = {**meta, "classical": {"format": fmt, "file": CLASSICAL_FILES[fmt], "features": model.features,
                                      "feature_options": dict(model.feature_options.__dict__)}}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes_atomic(folder / "model.safetensors",
                       save_tensors(state))
    write_text_atomic(folder / "model.json", json.dumps(meta, indent=2))


def read_weights(folder: Path) -> dict:
    """model.safetensors of ``folder`` as {name: CPU tensor}; NeuroclassError naming the file when
    it is missing (an unfinished run) or unreadable."""
    weights = Path(folder) / "model.safetensors"
    if not weights.is_file():
        raise NeuroclassError(f"{folder}: no model.safetensors; the run did not finish; train it again")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise NeuroclassError(f"{weights}: cannot read weights ({exc}); the file is damaged; "
                              "train the run again") from None


def read_metadata(folder: Path) -> dict:
    """model.json of ``folder`` (version 1 files upgraded in memory); NeuroclassError naming the
    file when it is missing, not JSON, or of an unknown version, and naming the folder when it is an
    ensemble folder (whose model.json describes the inputs of several models, not one network)."""
    path = Path(folder) / "model.json"
    if not path.is_file():
        raise NeuroclassError(f"{folder}: no model.json; pass a run folder made by 'neuroclass train'")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NeuroclassError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(meta, dict) and meta.get("ensemble"):  # read by inference.load_predictor instead
        raise NeuroclassError(f"{folder}: an ensemble of runs, not one model; for this, pass one of the "
                              "member runs listed in its ensemble.json")
    if not isinstance(meta, dict) or meta.get("format_version") not in READABLE_VERSIONS:
        version = meta.get("format_version") if isinstance(meta, dict) else None
        raise NeuroclassError(f"{path}: unsupported format_version {version}; "
                              f"this neuroclass reads versions {READABLE_VERSIONS}")
    if meta["format_version"] == 1:
        meta["inference"] = {"tta": meta.pop("tta", "none"), "tta_shift": meta.pop("tta_shift", 1),
                             "temperature": meta.pop("temperature", 1.0)}
    return meta


def load_model(folder: Path) -> tuple[Classifier | ClassicalModel | GlassboxModule, dict]:
    """Rebuild the network from model.json and load its weights from model.safetensors (a
    classical model: from its native file, ``load_classical``; the glass-box network:
    ``glassbox_module.load_glassbox``)."""
    folder = Path(folder)
    meta = read_metadata(folder)
    if meta["family"] in CLASSICAL:
        return load_classical(folder, meta), meta
    state = read_weights(folder)
    if meta["family"] == GLASSBOX:  # the NumPy network; its weights under their own names
        return load_glassbox(meta, state, str(folder / "model.safetensors")), meta
    mean, std = state["standardize.mean"], state["standardize.std"]
    cfg = ModelConfig(name=meta["family"], init="default", options=meta["options"])
    model = create(cfg, tuple(meta["input_shape"]), len(meta["classes"]), mean, std)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise NeuroclassError(f"{folder / 'model.safetensors'}: weights do not match model.json (missing "
                              f"{missing[:3]}, unexpected {unexpected[:3]}); keep the two files of one run together")
    model.eval()
    return model, meta


def load_classical(folder: Path, meta: dict) -> ClassicalModel:
    """The classical model of run ``folder`` from the native file model.json names. Raises
    NeuroclassError naming the file when it is missing, damaged, or (skops) holds a type outside
    the trusted list."""
    record = meta.get("classical") or {}
    path = folder / str(record.get("file", ""))
    if not record.get("file") or not path.is_file():
        raise NeuroclassError(f"{folder}: no {record.get('file') or 'model file'} of the {meta['family']} model; "
                              "the run did not finish; train it again")
    try:
        fitted = load_fitted(path.read_bytes(), str(record.get("format")), meta["family"])
    except NeuroclassError as exc:
        raise NeuroclassError(f"{path}: {str(exc).removeprefix('model file: ')}") from None
    except Exception as exc:  # the libraries' own parsers raise their own errors on a damaged file
        raise NeuroclassError(f"{path}: cannot read the {meta['family']} model ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); train the run again") from None
    options = feature_options(record.get("feature_options"))
    return ClassicalModel(meta["family"], fitted, record.get("features"), options).eval()
