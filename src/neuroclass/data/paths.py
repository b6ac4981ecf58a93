"""The one error line for a data path or an input file that is not there, for every command that
takes one (train, compare, tune, evaluate --data, report --data; predict and explain FILE): the
path as given, and the fix.

>>> str(missing_data("fashion-mnst"))
"DATA 'fashion-mnst': no such file or folder; check the path, or give a built-in dataset name (fashion-mnist, mnist, digits, blocks). Did you mean 'fashion-mnist'?"
>>> str(missing_file("gone.png"))
"FILE 'gone.png': file not found; check the path (an image: PNG, JPEG, BMP, GIF, WebP or TIFF; rows: a CSV or Parquet table)"
"""
from __future__ import annotations

from pathlib import Path

from neuroclass.data.builtin import BUILTIN
from neuroclass.errors import NeuroclassError
from neuroclass.registry import did_you_mean

INPUT_FILES = "an image: PNG, JPEG, BMP, GIF, WebP or TIFF; rows: a CSV or Parquet table"  # what FILE may be


def missing_data(spec: str | Path) -> NeuroclassError:
    """The error for DATA ``spec`` that is neither a file or folder nor a built-in dataset's name
    (with the closest name, when one is close)."""
    spec = str(spec)
    return NeuroclassError(f"DATA '{spec}': no such file or folder; check the path, or give a built-in "
                           f"dataset name ({', '.join(BUILTIN)})." + did_you_mean(spec, list(BUILTIN)))


def missing_file(path: str | Path) -> NeuroclassError:
    """The error for an input FILE ``path`` (an image, or a table of rows) that is not a file."""
    if Path(path).is_dir():
        return NeuroclassError(f"FILE '{path}': is a folder; give the files in it (e.g. '{path}/*.png'), "
                               f"one by one ({INPUT_FILES})")
    return NeuroclassError(f"FILE '{path}': file not found; check the path ({INPUT_FILES})")
