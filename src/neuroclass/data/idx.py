"""IDX files (the MNIST / Fashion-MNIST format): validated reading of images and labels."""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from neuroclass.data.dataset import Dataset
from neuroclass.errors import NeuroclassError, counted

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_UBYTE = 0x08  # IDX type code for unsigned bytes, the only one these files use


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally .gz) into a uint8 array, checking magic and length."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise NeuroclassError(f"{path}: cannot read IDX file ({exc}); re-download it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE or not 1 <= raw[3] <= 4:
        raise NeuroclassError(f"{path}: wrong IDX magic number {raw[:4].hex() or 'empty'}; "
                              "expected 0000080N (an MNIST-style uint8 IDX file); re-download it")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise NeuroclassError(f"{path}: truncated IDX header; re-download the file")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)  # Python ints: no overflow
    if len(raw) != expected:
        raise NeuroclassError(f"{path}: IDX file is {'truncated' if len(raw) < expected else 'too long'}"
                              f" ({len(raw)} bytes, header says {expected}); re-download it")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def is_idx_folder(folder: Path) -> bool:
    return find_file(folder, STEMS["train"][0]) is not None


def load_idx_folder(folder: Path, name: str, classes: list[str] | None = None) -> Dataset:
    """Train and test IDX pairs from one folder -> a Dataset with the official test split."""
    xs, ys, parts, offset = [], [], {}, 0
    for part, (img_stem, lbl_stem) in STEMS.items():
        img_path, lbl_path = find_file(folder, img_stem), find_file(folder, lbl_stem)
        if img_path is None or lbl_path is None:
            if part == "test" and img_path is None and lbl_path is None:
                continue  # a training set alone is fine: a test split is carved later
            missing = img_stem if img_path is None else lbl_stem
            raise NeuroclassError(f"{folder}: missing IDX file '{missing}[.gz]'; "
                                  "put both images and labels in the folder")
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3 or labels.ndim != 1:
            raise NeuroclassError(f"{img_path}: expected images of 3 dims and labels of 1 dim; "
                                  f"got {images.ndim} and {labels.ndim}")
        if images.shape[0] != labels.shape[0]:
            raise NeuroclassError(f"{img_path}: {counted(images.shape[0], 'image')} but {lbl_path.name} has "
                                  f"{counted(labels.shape[0], 'label')}; use the labels file that belongs to "
                                  "these images (re-download both)")
        xs.append(images)
        ys.append(labels)
        parts[part] = np.arange(offset, offset + len(labels))
        offset += len(labels)
    x = torch.from_numpy(np.concatenate(xs)).unsqueeze(1)  # (N, 1, H, W)
    y = torch.from_numpy(np.concatenate(ys).astype(np.int64))
    if classes is None:
        classes = [str(i) for i in range(int(y.max()) + 1)]
    if "train" in parts and len(parts) == 1:
        parts = {}
    return Dataset(x, y, classes, name=name, kind="image", source=str(folder), parts=parts)
