"""Fetch the official Fashion-MNIST and MNIST IDX files, verified, never leaving half a file behind.

Example::

    from neuroclass.data.download import download, find_local
    folder = find_local("fashion-mnist") or download("fashion-mnist")   # a Path holding the 4 files

Network access happens only inside `download()`; importing this module or calling `find_local()`
touches nothing but the local disk. What `download()` does (each file found or fetched) it reports
as INFO log records of the "neuroclass.data.download" logger, which the CLI prints.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from neuroclass.errors import NeuroclassError

log = logging.getLogger(__name__)

# md5: of the upstream .gz, as published by torchvision (`datasets/mnist.py`, MNIST/FashionMNIST).
# sha256: of the DECOMPRESSED bytes. Debian's `dataset-fashion-mnist` recompressed the files, so its
# .gz bytes (and md5) differ from upstream while the content is identical; these hashes were taken
# with gzip + hashlib from /usr/share/datasets/fashion-mnist/*.gz. None = not known, md5 only.
DATASET_FILES: dict[str, dict] = {
    "fashion-mnist": {
        "base_urls": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        "apt_package": "dataset-fashion-mnist",
        "files": {
            "train-images-idx3-ubyte.gz": {
                "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "sha256": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            },
            "train-labels-idx1-ubyte.gz": {
                "md5": "25c81989df183df01b3e8a0aad5dffbe",
                "sha256": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            },
            "t10k-images-idx3-ubyte.gz": {
                "md5": "bef4ecab320f06d8554ea6380940ec79",
                "sha256": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            },
            "t10k-labels-idx1-ubyte.gz": {
                "md5": "bb300cfdad3c16e7a12a480ee83cd310",
                "sha256": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
        },
    },
    "mnist": {
        # The S3 mirror first: yann.lecun.com often refuses or rate-limits automated downloads.
        "base_urls": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        "apt_package": None,
        "files": {
            "train-images-idx3-ubyte.gz": {"md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "sha256": None},
            "train-labels-idx1-ubyte.gz": {"md5": "d53e105ee54ea40749a09fcbcd1e9432", "sha256": None},
            "t10k-images-idx3-ubyte.gz": {"md5": "9fb629c4189551a2d022fa330f9573f3", "sha256": None},
            "t10k-labels-idx1-ubyte.gz": {"md5": "ec29112dd5afa0611ce80d1b7f02629c", "sha256": None},
        },
    },
}

SYSTEM_DATA_DIR = Path("/usr/share/datasets")  # where Debian's dataset-* packages install
_CHUNK = 1 << 20  # bytes per read: bounded memory whatever the file size
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


def default_data_dir() -> Path:
    """Root folder for downloads: `$NEUROCLASS_DATA`, else `~/.cache/neuroclass`.

    Example::

        default_data_dir() / "fashion-mnist"
    """
    env = os.environ.get("NEUROCLASS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuroclass"


def find_local(name: str) -> Path | None:
    """First folder holding all four files (.gz or decompressed), or None. No checksums: cheap.

    Example::

        find_local("fashion-mnist")   # e.g. PosixPath('/usr/share/datasets/fashion-mnist')
    """
    files = _spec(name)["files"]
    candidates = [Path.home() / ".cache" / "neuroclass" / name, SYSTEM_DATA_DIR / name]
    if os.environ.get("NEUROCLASS_DATA"):
        candidates.insert(0, default_data_dir() / name)
    for folder in candidates:
        if all((folder / f).is_file() or (folder / f[: -len(".gz")]).is_file() for f in files):
            return folder
    return None


def verify(path: Path, md5: str, sha256: str | None = None) -> bool:
    """True if the .gz at `path` has the upstream `md5`, or its decompressed bytes have `sha256`.

    Example::

        verify(Path("t10k-labels-idx1-ubyte.gz"), "bb300cfdad3c16e7a12a480ee83cd310")
    """
    if _hash(path, "md5", gzip_content=False) == md5:
        return True
    if sha256 is None:
        return False
    try:
        return _hash(path, "sha256", gzip_content=True) == sha256
    except (OSError, EOFError, gzip.BadGzipFile):  # not a gzip stream at all: plainly invalid
        return False


def download(
    name: str,
    dest_dir: str | Path | None = None,
    base_urls: Sequence[str] | None = None,
    timeout: float = 30,
) -> Path:
    """Download the missing files of dataset `name` into `dest_dir` (default `default_data_dir()/name`).

    Each file goes to a temp name in the same folder, is checked, then renamed atomically, so the
    final names only ever hold verified files. Raises NeuroclassError (one line) on failure. Each
    file found in place or downloaded is an INFO log record.

    Example::

        download("fashion-mnist", dest_dir="data/fmnist")
        # -> PosixPath('data/fmnist')
    """
    spec = _spec(name)
    dest = Path(dest_dir) if dest_dir is not None else default_data_dir() / name
    urls = tuple(base_urls) if base_urls else spec["base_urls"]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NeuroclassError(f"data: cannot create '{dest}' ({err.strerror}); pass --dir with a writable folder") from err

    for fname, sums in spec["files"].items():
        if _already_there(dest, fname, sums):
            log.info("%s: already present in %s", fname, dest)
            continue
        failures = []
        for base in urls:
            url = base.rstrip("/") + "/" + fname
            try:
                _fetch_verified(url, dest / fname, sums, timeout)
                break
            except _NETWORK_ERRORS as err:
                failures.append(f"{url} ({_why(err)})")
        else:
            raise NeuroclassError(f"data: could not download {fname}: {'; '.join(failures)}. {_advice(name, dest)}")
    return dest


def _fetch_verified(url: str, final: Path, sums: dict, timeout: float) -> None:
    """Stream `url` to a temp file beside `final`; rename it into place only if the checksum holds."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s", url)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the rename makes them visible
        if not verify(tmp, sums["md5"], sums["sha256"]):
            raise NeuroclassError(
                f"data: checksum mismatch for {final.name} downloaded from {url} (expected md5 {sums['md5']}); "
                f"the file was discarded, retry later or place a good copy in {final.parent}"
            )
        os.replace(tmp, final)  # atomic on one filesystem: readers see the old state or the whole file
    finally:
        tmp.unlink(missing_ok=True)  # after a failure or Ctrl-C; a no-op once renamed


def _already_there(dest: Path, fname: str, sums: dict) -> bool:
    gz, raw = dest / fname, dest / fname[: -len(".gz")]
    if gz.is_file() and verify(gz, sums["md5"], sums["sha256"]):
        return True
    if raw.is_file():  # decompressed by the user or a loader; check content when we know its hash
        return sums["sha256"] is None or _hash(raw, "sha256", gzip_content=False) == sums["sha256"]
    return False


def _hash(path: Path, algorithm: str, gzip_content: bool) -> str:
    digest = hashlib.new(algorithm)
    with (gzip.open(path, "rb") if gzip_content else open(path, "rb")) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _why(err: BaseException) -> str:
    # URLError wraps the socket error as .reason; HTTPError's own str has the status ("HTTP Error 404").
    cause = err.reason if type(err) is urllib.error.URLError else err
    return " ".join(str(cause).split()) or type(cause).__name__


def _advice(name: str, dest: Path) -> str:
    spec = _spec(name)
    files = ", ".join(spec["files"])
    by_hand = f"download the four files ({files}) by hand from {spec['base_urls'][0]} into {dest}"
    if spec["apt_package"]:
        return (f"Offline? On Debian/Ubuntu run `apt-get install -y {spec['apt_package']}` as root "
                f"(found automatically in {SYSTEM_DATA_DIR / name}), or {by_hand}")
    return f"Offline? {by_hand[0].upper()}{by_hand[1:]}"


def _spec(name: str) -> dict:
    if name not in DATASET_FILES:
        close = difflib.get_close_matches(name, DATASET_FILES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise NeuroclassError(f"data: unknown dataset '{name}'{hint}; valid names: {', '.join(DATASET_FILES)}")
    return DATASET_FILES[name]
