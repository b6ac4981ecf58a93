"""download.py against a local http.server on 127.0.0.1: offline, a few seconds at most."""

import functools
import http.server
import logging
import shutil
import socket
import threading
from pathlib import Path

import pytest

from neuroclass.data.download import DATASET_FILES, default_data_dir, download, find_local
from neuroclass.errors import NeuroclassError

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
FILES = list(DATASET_FILES["fashion-mnist"]["files"])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy in the environment would route 127.0.0.1 away from our server.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture
def served(tmp_path):
    """(folder, base_url): files put in `folder` are served over HTTP until the test ends."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _closed_port_url() -> str:
    with socket.socket() as s:  # bind then close: nothing listens there afterwards
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.skipif(not DEBIAN_FMNIST.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_download_debian_files_verified_by_decompressed_sha256(served, tmp_path, caplog):
    folder, base = served
    for name in FILES:
        shutil.copy(DEBIAN_FMNIST / name, folder / name)
    dest = tmp_path / "dest"
    caplog.set_level(logging.INFO, logger="neuroclass")

    assert download("fashion-mnist", dest, base_urls=[base], timeout=5) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES)  # no temp files left over
    for name in FILES:
        assert (dest / name).read_bytes() == (DEBIAN_FMNIST / name).read_bytes()
    assert any(base in r.getMessage() and r.name == "neuroclass.data.download" for r in caplog.records)

    # A second call finds everything verified in place and never touches the network.
    caplog.clear()
    download("fashion-mnist", dest, base_urls=[_closed_port_url()], timeout=1)
    assert sum("already present" in r.getMessage() for r in caplog.records) == len(FILES)


def test_corrupted_file_fails_and_leaves_nothing(served, tmp_path):
    folder, base = served
    for name in FILES:
        (folder / name).write_bytes(b"not the real file")
    dest = tmp_path / "dest"

    with pytest.raises(NeuroclassError, match="checksum mismatch for train-images-idx3-ubyte.gz"):
        download("fashion-mnist", dest, base_urls=[base], timeout=5)
    assert list(dest.iterdir()) == []  # neither the final name nor a .part temp file


def test_unreachable_url_gives_one_line_apt_advice(tmp_path):
    url = _closed_port_url()
    with pytest.raises(NeuroclassError) as info:
        download("fashion-mnist", tmp_path / "dest", base_urls=[url], timeout=2)
    message = str(info.value)
    assert "\n" not in message
    assert url + "train-images-idx3-ubyte.gz" in message  # which URL failed
    assert "refused" in message.lower()  # why
    assert "apt-get install -y dataset-fashion-mnist" in message  # what to do instead
    assert str(tmp_path / "dest") in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_unknown_name_lists_valid_names():
    with pytest.raises(NeuroclassError, match="fashion-mnist, mnist") as info:
        download("fashion-mnst")
    assert "did you mean 'fashion-mnist'" in str(info.value)
    with pytest.raises(NeuroclassError, match="valid names"):
        find_local("cifar10")


def test_find_local_uses_neuroclass_data_first(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROCLASS_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # keep the real ~/.cache out of the test
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for i, name in enumerate(FILES):  # a mix of .gz and already-decompressed names both count
        (folder / (name if i % 2 else name[: -len(".gz")])).write_bytes(b"")

    assert default_data_dir() == tmp_path
    assert find_local("fashion-mnist") == folder

    (folder / FILES[1]).unlink()  # three of four is not enough: falls through to other places
    assert find_local("fashion-mnist") != folder


def test_default_data_dir_without_env(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROCLASS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "neuroclass"
