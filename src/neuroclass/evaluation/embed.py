"""Features from the layer before a trained model's head, for scikit-learn or anything else.

``neuroclass embed RUN [DATA] --out feats.npz`` writes an .npz without pickled objects:
``features`` float32 (N, D), ``labels`` int64 (N,), ``classes`` (K,) strings (the data's own class
names, which need not be the run's), and for the run's own data ``split`` (N,) strings
("train" / "val" / "test" / "" for examples a split left out), so that a probe can be fitted on the
training part and scored on the test part without leaking.

>>> feats = np.load("feats.npz", allow_pickle=False)  # doctest: +SKIP
>>> LogisticRegression(max_iter=1000).fit(feats["features"], feats["labels"])  # doctest: +SKIP
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from neuroclass import data as data_mod
from neuroclass.config import DataConfig, load_config, write_bytes_atomic
from neuroclass.data.dataset import encode_labels
from neuroclass.data.table import encode_features, read_table
from neuroclass.device import memory_format
from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import Classifier
from neuroclass.models.transfer import find_head
from neuroclass.serving.predictor import Predictor


@dataclass
class Embedding:
    features: np.ndarray  # float32 (N, D)
    labels: np.ndarray  # int64 (N,)
    classes: list[str]
    split: np.ndarray | None = None  # (N,) "train" | "val" | "test" | "" for the run's own data
    source: str = ""


@torch.inference_mode()
def embed_tensor(model: Classifier, x: torch.Tensor, device: torch.device,
                 batch_size: int = 256) -> np.ndarray:
    """The head's input (capsnet: the primary capsules), flattened, for every row of ``x``.

    >>> embed_tensor(model, dataset.x, torch.device("cpu")).shape  # doctest: +SKIP
    (400, 32)
    """
    head = find_head(model)
    captured: list[torch.Tensor] = []
    module = model.get_submodule(head.feature_module)
    if head.feature_side == "input":
        hook = module.register_forward_pre_hook(lambda m, args: captured.append(args[0].flatten(1)))
    else:
        hook = module.register_forward_hook(lambda m, args, out: captured.append(out.flatten(1)))
    model.eval().to(device)
    fmt = memory_format(device, True, x.ndim)
    out = []
    try:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size].to(device).contiguous(memory_format=fmt))
            out.append(captured.pop().float().cpu())
    finally:
        hook.remove()
    return torch.cat(out).numpy().astype(np.float32, copy=False) if out else np.zeros((0, 0), np.float32)


def _own_data(run: Path) -> tuple[torch.Tensor, np.ndarray, list[str], np.ndarray, str]:
    """The run's whole dataset, with each example's split from split.npz."""
    cfg = load_config(run / "config.yaml")
    dataset = data_mod.load(cfg.data)
    split = np.full(len(dataset), "", dtype="<U5")
    with np.load(run / "split.npz", allow_pickle=False) as parts:
        for name in ("train", "val", "test"):
            if name in parts.files:
                split[parts[name][parts[name] < len(dataset)]] = name
    return dataset.x, dataset.y.numpy(), list(dataset.classes), split, cfg.data.source


def _other_data(source: str, predictor: Predictor, run: Path) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """DATA prepared the run's way (image channels and size, or the table's recorded encoding)."""
    meta = predictor.meta
    if meta["kind"] == "table":
        label_column = load_config(run / "config.yaml").data.label_column
        path = Path(source)
        if not path.is_file():
            raise NeuroclassError(f"DATA '{source}': file not found")
        df = read_table(path)
        if label_column not in df.columns:
            raise NeuroclassError(f"DATA '{source}': no label column '{label_column}' "
                                  "(the run's label column)")
        x = encode_features(df.drop(columns=[label_column]), meta["preprocessing"], source)
        codes, classes = encode_labels(df[label_column].to_numpy(), source)
        return torch.from_numpy(x), np.asarray(codes, dtype=np.int64), list(classes)
    shape = tuple(meta["input_shape"])
    dataset = data_mod.load(replace(DataConfig(), source=source, channels=shape[0],
                                    image_size=shape[1] if shape[1] == shape[2] else None))
    if tuple(dataset.input_shape) != shape:
        raise NeuroclassError(f"DATA '{source}': images of shape {tuple(dataset.input_shape)} do not fit "
                              f"the model's {shape}; resize them to {shape[1]}x{shape[2]}")
    return dataset.x, dataset.y.numpy(), list(dataset.classes)


def embed_run(run: str | Path, data: str | None = None, device: str = "auto") -> Embedding:
    """Features of every example of ``data`` (default: the run's own data) from the run's model.

    >>> emb = embed_run("runs/fashion-mnist-cnn-20260101-120000", "digits28.npz")  # doctest: +SKIP
    """
    run = Path(run)
    predictor = Predictor.from_run(run, device=device)
    split = None
    if data:
        x, labels, classes = _other_data(data, predictor, run)
        source = data
    else:
        x, labels, classes, split, source = _own_data(run)
    features = embed_tensor(predictor.model, x, predictor.device)
    return Embedding(features, labels.astype(np.int64), classes, split, source)


def save_embedding(path: str | Path, emb: Embedding) -> Path:
    """Write ``emb`` as a compressed .npz, atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise NeuroclassError(f"--out '{path}': name the file with a .npz suffix, e.g. feats.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"features": emb.features, "labels": emb.labels,
              "classes": np.array(emb.classes, dtype=str)}  # fixed-width unicode: no pickle
    if emb.split is not None:
        arrays["split"] = emb.split
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # a file object: numpy adds no ".npz" of its own
    write_bytes_atomic(path, buf.getvalue())
    return path
