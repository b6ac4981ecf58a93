"""The names of run folders and of the reports written beside them."""
from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from neuroclass.errors import NeuroclassError

DATA_FILE_SUFFIXES = (".csv", ".parquet", ".pq", ".npz")  # data files whose extension a report's name leaves out


def run_name(data_source: str, model_name: str, now: datetime | None = None) -> str:
    """``<data>-<model>-<YYYYmmdd-HHMMSS>``, made file-name-safe.

    >>> run_name("blocks:n=200", "tv:resnet18", datetime(2026, 1, 2, 3, 4, 5))
    'blocks-tv-resnet18-20260102-030405'
    """
    model = re.sub(r"[^A-Za-z0-9_.-]+", "-", model_name)
    return f"{data_name(data_source)}-{model}-{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}"


def data_name(data_source: str) -> str:
    """The data's part of a run or study folder's name: the file or folder name without its
    extension, made file-name-safe.

    >>> data_name("/data/penguins.csv"), data_name("blocks:n=200"), data_name("fashion-mnist")
    ('penguins', 'blocks', 'fashion-mnist')
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(data_source.split(":")[0]).stem or "data")


def data_slug(source: str) -> str:
    """A file-name-safe name for a data source, for report-<slug>.html: a data file's name without
    its extension (DATA_FILE_SUFFIXES), a folder's name, or a built-in name with its arguments.

    >>> data_slug("blocks:n=200,seed=9"), data_slug("/data/shoes/test/"), data_slug("new_rows.csv")
    ('blocks_n_200_seed_9', 'test', 'new_rows')
    """
    path = Path(source.rstrip("/\\"))
    name = (path.stem if path.suffix.lower() in DATA_FILE_SUFFIXES else path.name) or "data"
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_.") or "data"


def new_stamped_folder(out: Path, prefix: str, data_source: str, what: str) -> Path:
    """``<out>/<prefix>-<data>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``, ... when taken), created (with
    ``out``). ``what`` names the folder in messages ("study", "comparison"). Raises NeuroclassError
    naming ``out`` when it cannot be written."""
    out = Path(out)
    stem = f"{prefix}-{data_name(data_source)}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for suffix in range(1, 1000):
            folder = out / (stem if suffix == 1 else f"{stem}-{suffix}")
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                continue
    except OSError as exc:
        raise NeuroclassError(f"--out '{out}': cannot create the {what} folder ({exc.strerror or exc}); "
                              "pass a folder you can write to") from None
    raise NeuroclassError(f"--out '{out}': 1,000 {what} folders named {stem}; pass another --out folder")
