"""preprocess.skops: a table run's preprocessing fitted on its training split, without pickle.

The fitted scikit-learn Pipeline (data/table_prep.py) is written with skops, whose loader rebuilds
only the types it trusts: those it trusts by default (scikit-learn's estimators, NumPy arrays, plain
containers) and the explicit list data/table_prep.py's TRUSTED_TYPES, the other types such a
Pipeline is made of (never ``trusted=True``). A file that holds any other type (a function it
would call, say) is refused, so that loading a run folder never executes code from a file.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from sklearn.pipeline import Pipeline

from neuroclass.data.table_prep import PREPROCESS_FILE, TRUSTED_TYPES
from neuroclass.errors import NeuroclassError
from neuroclass.io import write_bytes_atomic

# what skops raises for a file that is not one of its archives, or a damaged one
DAMAGED = (zipfile.BadZipFile, KeyError, TypeError, AttributeError, ValueError)


def save_preprocess(folder: Path, pipe: Pipeline) -> Path:
    """Write ``pipe`` as ``folder``/preprocess.skops, atomically (neuroclass/io.py)."""
    import skops.io as sio  # here, not at import: only table runs need it

    return write_bytes_atomic(Path(folder) / PREPROCESS_FILE, sio.dumps(pipe))


def load_preprocess(folder: Path) -> Pipeline:
    """The fitted Pipeline in ``folder``/preprocess.skops. Raises NeuroclassError naming the file
    when it is missing, unreadable, or holds a type outside TRUSTED_TYPES (naming the types)."""
    import skops.io as sio

    path = Path(folder) / PREPROCESS_FILE
    if not path.is_file():
        raise NeuroclassError(f"{path}: missing; the run's table preprocessing is needed to predict; "
                              "keep the run folder's files together, or train the run again")
    data = path.read_bytes()
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_TYPES]
    except DAMAGED as exc:
        raise _damaged(path, exc) from None
    if untrusted:
        raise NeuroclassError(f"{path}: holds types a table preprocessing never has ({', '.join(untrusted[:5])}); "
                              "not loaded, since loading them could run code from the file; train the run again")
    try:
        pipe = sio.loads(data, trusted=TRUSTED_TYPES)
    except DAMAGED as exc:
        raise _damaged(path, exc) from None
    if not isinstance(pipe, Pipeline):
        raise NeuroclassError(f"{path}: holds an object of type {type(pipe).__name__}, not a preprocessing Pipeline; "
                              "train the run again")
    return pipe


def _damaged(path: Path, exc: Exception) -> NeuroclassError:
    return NeuroclassError(f"{path}: cannot read the run's table preprocessing ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}); the file is damaged; train the run again")
