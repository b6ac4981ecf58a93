"""Which files of an image folder are data: class folders, their images, and what is not data.

Operating systems, archivers, NAS boxes and notebooks leave files beside the images: macOS's
``.DS_Store``, ``._name`` resource-fork twins and the ``__MACOSX/`` folder of a Finder zip,
Windows's ``Thumbs.db`` and ``desktop.ini``, Synology's ``@eaDir``, trash folders, Jupyter's
``.ipynb_checkpoints`` (whose copies of images would leak into the test split), ``.git``. None of
them is an image or a class, at the top, in train/val/test folders or inside class folders, and
neither is a README or labels.txt beside the images. Each goes into the returned ``ignored`` list
with its reason; ``summary`` turns that list into one warning line.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from neuroclass.data.issues import FileIssue

# each reads after a count: "4 hidden, 3 macOS metadata (__MACOSX, ._*, .DS_Store)"
HIDDEN = "hidden (name starts with '.')"
MACOS = "macOS metadata (__MACOSX, ._*, .DS_Store)"
WINDOWS = "Windows metadata (Thumbs.db, desktop.ini)"
NAS = "NAS metadata (@eaDir)"
TRASH = "trash ($RECYCLE.BIN, .Trash-*)"
TOOL = "tool data (.ipynb_checkpoints, .git, __pycache__)"
NOT_IN_CLASS = "outside the class folders"
NOT_A_SPLIT = "outside the split folders (train/, val/, test/)"
# images in formats that Pillow does not read: said so, rather than "non-image"
UNREAD_FORMATS = {".heic": "HEIC", ".heif": "HEIF", ".svg": "SVG", ".dng": "camera raw", ".cr2": "camera raw",
                  ".cr3": "camera raw", ".nef": "camera raw", ".arw": "camera raw", ".orf": "camera raw",
                  ".raf": "camera raw", ".rw2": "camera raw"}

# lower-case names -> reason; Windows and NAS names are matched without regard to case
NAMES = {
    "__macosx": MACOS, ".ds_store": MACOS, ".appledouble": MACOS, ".appledb": MACOS,
    ".appledesktop": MACOS, ".spotlight-v100": MACOS, ".fseventsd": MACOS, ".trashes": MACOS,
    ".temporaryitems": MACOS, ".documentrevisions-v100": MACOS, ".apdisk": MACOS, "icon\r": MACOS,
    ".volumeicon.icns": MACOS, ".com.apple.timemachine.donotpresent": MACOS,
    "thumbs.db": WINDOWS, "ehthumbs.db": WINDOWS, "ehthumbs_vista.db": WINDOWS, "desktop.ini": WINDOWS,
    "system volume information": WINDOWS, "$recycle.bin": TRASH, "recycler": TRASH, "#recycle": TRASH,
    "@recycle": TRASH, "@eadir": NAS, "#snapshot": NAS, "@__thumb": NAS, ".@__thumb": NAS,
    ".ipynb_checkpoints": TOOL, ".git": TOOL, ".svn": TOOL, ".hg": TOOL, ".dvc": TOOL,
    "__pycache__": TOOL, ".idea": TOOL, ".vscode": TOOL, ".cache": TOOL,
}


def metadata_reason(name: str) -> str | None:
    """Why a file or folder named ``name`` is operating-system or tool metadata; None for a name
    that may be data.

    >>> metadata_reason("._cat.png"), metadata_reason("Thumbs.db"), metadata_reason("cat.png")
    ('macOS metadata (__MACOSX, ._*, .DS_Store)', 'Windows metadata (Thumbs.db, desktop.ini)', None)
    """
    lower = name.lower()
    if lower in NAMES:
        return NAMES[lower]
    if name.startswith("._"):
        return MACOS
    if name.startswith(".Trash-") or name == ".Trash":
        return TRASH
    if name.startswith("."):
        return HIDDEN
    return None


def class_images(folder: Path, suffixes: set[str], ignored: list[FileIssue]) -> list[Path]:
    """The image files under ``folder`` (any depth; ``suffixes`` lower-case with the dot), sorted;
    metadata files and folders (not entered) and other files are appended to ``ignored``."""
    images = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        for name in sorted(dirnames):
            reason = metadata_reason(name)
            if reason:
                dirnames.remove(name)  # os.walk descends only into the names left
                ignored.append(FileIssue(f"{here / name}/", reason))
        for name in sorted(filenames):
            suffix = Path(name).suffix.lower()
            reason = metadata_reason(name) or (None if suffix in suffixes else _not_an_image(suffix))
            if reason:
                ignored.append(FileIssue(str(here / name), reason))
            else:
                images.append(here / name)
    return sorted(images)


def _not_an_image(suffix: str) -> str:
    if suffix in UNREAD_FORMATS:
        return f"{UNREAD_FORMATS[suffix]} image, a format not read (convert it to JPEG or PNG)"
    return f"non-image ({suffix or 'no suffix'})"


def subfolders(root: Path, accept: tuple[str, ...] | None, ignored: list[FileIssue]) -> list[Path]:
    """The sorted folders directly under ``root`` that may be data (those named in ``accept``,
    when given); metadata, files and other folders are appended to ``ignored``."""
    kept = []
    for path in sorted(root.iterdir()):
        is_dir = path.is_dir()
        reason = metadata_reason(path.name)
        if reason is None and not is_dir:
            reason = NOT_IN_CLASS
        elif reason is None and accept is not None and path.name not in accept:
            reason = NOT_A_SPLIT
        if reason:
            ignored.append(FileIssue(f"{path}/" if is_dir else str(path), reason))
        else:
            kept.append(path)
    return kept


def summary(where: str, ignored: list[FileIssue]) -> str:
    """One line on what was ignored and why, grouped by reason, most common first; an ignored
    folder (its path ends with "/") counts once, with the files it holds said beside it.

    >>> summary("pics", [FileIssue("pics/a/.x.png", HIDDEN), FileIssue("pics/b/.y.png", HIDDEN)])
    "pics: ignored 2 files that are not data: 2 hidden (name starts with '.')"
    """
    folders = [item.path for item in ignored if item.path.endswith("/")]
    inside = sum(_files_in(Path(path)) for path in folders)
    counted = [_count(len(folders), "folder") + (f" (holding {_count(inside, 'file')})" if folders else ""),
               _count(len(ignored) - len(folders), "file")]
    what = " and ".join(c for c in counted if c)
    verb = "is" if len(ignored) == 1 else "are"
    ordered = sorted(Counter(item.reason for item in ignored).items(), key=lambda kv: (-kv[1], kv[0]))
    reasons = ", ".join(f"{n} {reason}" for reason, n in ordered)  # most common first
    return f"{where}: ignored {what} that {verb} not data: {reasons}"


def _files_in(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _count(n: int, noun: str) -> str:
    return "" if n == 0 else f"{n} {noun}{'s' * (n != 1)}"
