"""Model artifacts without pickle: weights in safetensors, everything else in JSON.

model.json holds what is needed to rebuild the network and feed it raw inputs: the family, its
options, the input shape, class names and preprocessing. Loading never executes code from a file.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from neuroclass.config import ModelConfig, write_text_atomic
from neuroclass.errors import NeuroclassError
from neuroclass.models import Classifier, create
from neuroclass.models.registry import split_name

FORMAT_VERSION = 1


def model_metadata(cfg: ModelConfig, options: dict, input_shape: tuple[int, ...], classes: list[str],
                   kind: str, preprocessing: dict, temperature: float = 1.0) -> dict:
    """model.json's content; ``temperature`` divides the logits before softmax (fitted on the
    validation split, 1.0 when rejected; a model.json without it means 1.0)."""
    family, _ = split_name(cfg.name, {})  # "tv:resnet18" -> "tv"; the arch is in the options
    return {"format_version": FORMAT_VERSION, "family": family, "options": options,
            "init": cfg.init, "kind": kind, "input_shape": list(input_shape), "classes": list(classes),
            "preprocessing": preprocessing, "temperature": float(temperature)}


def save_model(folder: Path, model: Classifier, meta: dict) -> None:
    """Write model.safetensors and model.json into ``folder`` (each via a temp name + rename)."""
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = folder / ".model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "family": meta["family"]})
    tmp.replace(folder / "model.safetensors")
    write_text_atomic(folder / "model.json", json.dumps(meta, indent=2))


def read_metadata(folder: Path) -> dict:
    path = Path(folder) / "model.json"
    if not path.is_file():
        raise NeuroclassError(f"{folder}: no model.json; pass a run folder made by 'neuroclass train'")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise NeuroclassError(f"{path}: not valid JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise NeuroclassError(f"{path}: unsupported format_version {meta.get('format_version')}; "
                              f"this neuroclass reads version {FORMAT_VERSION}")
    return meta


def load_model(folder: Path) -> tuple[Classifier, dict]:
    """Rebuild the network from model.json and load its weights from model.safetensors."""
    folder = Path(folder)
    meta = read_metadata(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise NeuroclassError(f"{folder}: no model.safetensors; the run did not finish")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise NeuroclassError(f"{weights}: cannot read weights ({exc})") from None
    mean, std = state["standardize.mean"], state["standardize.std"]
    cfg = ModelConfig(name=meta["family"], init="default", options=meta["options"])
    model = create(cfg, tuple(meta["input_shape"]), len(meta["classes"]), mean, std)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise NeuroclassError(f"{weights}: weights do not match model.json (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    model.eval()
    return model, meta


def normalization_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (images, in [0, 1] units) or per-feature (tables) mean and std of training data."""
    if x.dtype == torch.uint8:
        xf = x.float().div_(255.0)
        dims = [0, 2, 3]
        mean, std = xf.mean(dim=dims, keepdim=True), xf.std(dim=dims, keepdim=True)
    else:
        mean, std = x.mean(dim=0, keepdim=True), x.std(dim=0, keepdim=True)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant inputs: leave unscaled
    return mean, std
