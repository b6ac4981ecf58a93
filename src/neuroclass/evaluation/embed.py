"""Features from the layer before a trained model's head, for scikit-learn or anything else.

``neuroclass embed RUN [DATA] --out feats.npz`` writes an .npz without pickled objects:
``features`` float32 (N, D), ``labels`` int64 (N,), ``classes`` (K,) strings (the data's own class
names, which need not be the run's), and for the run's own data ``split`` (N,) strings
("train" / "val" / "test" / "" for examples a split left out), so that a probe can be fitted on the
training part and scored on the test part without leaking.

Example::

    feats = np.load("feats.npz", allow_pickle=False)
    LogisticRegression(max_iter=1000).fit(feats["features"], feats["labels"])
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neuroclass.device import memory_format
from neuroclass.errors import NeuroclassError
from neuroclass.evaluation.evaluate import data_inputs
from neuroclass.inference import Predictor
from neuroclass.io import write_bytes_atomic
from neuroclass.models.layers import Classifier
from neuroclass.models.transfer import find_head
from neuroclass.runs import RunFolder, is_ensemble_folder


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

    Example::

        embed_tensor(model, dataset.x, torch.device("cpu")).shape
        # -> (400, 32)
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


def embed_run(run: str | Path, data: str | None = None, device: str = "auto") -> Embedding:
    """Features of every example of ``data`` (default: the run's own data, each example marked
    with its split) from the run's model. Raises NeuroclassError when the run's data changed, or
    when ``run`` is an ensemble folder (several models: no one layer of features).

    Example::

        emb = embed_run("runs/fashion-mnist-cnn-20260101-120000", "digits28.npz")
    """
    folder = RunFolder.open(run)
    if is_ensemble_folder(folder.path):
        raise NeuroclassError(f"RUN '{run}' is an ensemble of runs, which has no single layer of features to "
                              "embed; embed one of its members (listed in its ensemble.json)")
    predictor = Predictor.from_folder(folder, device=device)
    if data:
        inputs = data_inputs(data, folder, predictor.meta, test_part=False)
        x, labels, classes, split, source = inputs.x, inputs.y.numpy(), inputs.classes, None, data
    else:
        own = folder.load_data()
        split = np.full(len(own.dataset), "", dtype="<U5")
        for name, index in own.indices.items():
            split[index] = name
        x, labels, classes, source = own.dataset.x, own.dataset.y.numpy(), list(own.dataset.classes), own.source
    features = embed_tensor(predictor.model, predictor.model_inputs(x), predictor.device)  # a table's through its preprocessing
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
