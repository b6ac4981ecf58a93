"""The memory-mapped cache of decoded image folders (data/cache.py), on tiny PNG folders.

Every test points ``$NEUROCLASS_CACHE`` at its own ``tmp_path`` so nothing touches ~/.cache.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from neuroclass.config import DataConfig
from neuroclass.data import cache as cache_module
from neuroclass.data import images as images_module
from neuroclass.data import load
from neuroclass.data.folder import load_image_folder
from neuroclass.data.pixels import DecodeSettings
from neuroclass.io import hold_lock, lock_if_free, lock_is_held


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("NEUROCLASS_CACHE", str(folder))
    return folder


def write_png(path: Path, seed: int, size: int = 8, mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size, size) if mode == "L" else (size, size, 3)
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(pixels, mode=mode).save(path)
    return path


def image_folder(root: Path, per_class: int = 3, classes=("cat", "dog")) -> Path:
    for k, name in enumerate(classes):
        for i in range(per_class):
            write_png(root / name / f"{i}.png", seed=10 * k + i)
    return root


def load_folder(root: Path, **kw):
    options = {"channels": None, "size": None, "max_bad_fraction": 0.01, **kw}
    return load_image_folder(root, options.pop("channels"), options.pop("size"),
                             options.pop("max_bad_fraction"), **options)


def forbid_decoding(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a cache hit must not decode any file")
    monkeypatch.setattr(cache_module, "decode_into", fail)
    monkeypatch.setattr(images_module, "open_image", fail)


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_second_load_is_a_hit_that_decodes_nothing(tmp_path, monkeypatch, cache_dir):
    root = image_folder(tmp_path / "pics")
    first = load_folder(root)
    assert first.preprocessing["cache"] == "built"
    path = Path(first.preprocessing["cache_path"])
    assert path.parent == cache_dir and entries(path) == ["images.npy", "meta.json", "rows.npz"]
    meta = json.loads((path / "meta.json").read_text())
    assert meta["classes"] == ["cat", "dog"] and meta["source"] == str(root.resolve())

    forbid_decoding(monkeypatch)
    second = load_folder(root)
    assert second.preprocessing["cache"] == "hit"
    assert second.preprocessing["cache_path"] == str(path)
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert first.x.shape == (6, 1, 8, 8) and first.classes == second.classes
    expected = np.asarray(Image.open(root / "dog" / "2.png"))
    assert np.array_equal(second.x[5, 0].numpy(), expected)


def test_data_config_cache_switch_reaches_the_loader(tmp_path, cache_dir):
    root = image_folder(tmp_path / "pics")
    off = load(DataConfig(source=str(root), cache=False))
    assert entries(cache_dir) == [] and "cache" not in off.preprocessing
    on = load(DataConfig(source=str(root)))
    assert on.preprocessing["cache"] == "built"
    assert torch.equal(on.x, off.x) and torch.equal(on.y, off.y)


@pytest.mark.parametrize("change", ["add", "remove", "touch"])
def test_a_changed_file_set_or_mtime_invalidates(tmp_path, monkeypatch, change):
    root = image_folder(tmp_path / "pics")
    before = load_folder(root)
    target = root / "cat" / "0.png"
    if change == "add":
        write_png(root / "cat" / "9.png", seed=99)
    elif change == "remove":
        target.unlink()
    else:  # same bytes, a later mtime
        stat = target.stat()
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    after = load_folder(root)
    assert after.preprocessing["cache"] == "built"
    assert after.preprocessing["cache_path"] != before.preprocessing["cache_path"]
    assert len(after) == len(before) + {"add": 1, "remove": -1, "touch": 0}[change]


@pytest.mark.parametrize("options, shape", [({"size": 4}, (1, 4, 4)), ({"channels": 3}, (3, 8, 8)),
                                            ({"max_bad_fraction": 0.5}, (1, 8, 8))])
def test_other_preprocessing_gets_its_own_key(tmp_path, options, shape):
    root = image_folder(tmp_path / "pics")
    plain = load_folder(root)
    other = load_folder(root, **options)
    assert other.preprocessing["cache"] == "built" and other.input_shape == shape
    assert other.preprocessing["cache_path"] != plain.preprocessing["cache_path"]
    assert load_folder(root).preprocessing["cache"] == "hit"  # both keys live side by side


@pytest.mark.parametrize("damage", ["no images.npy", "no meta.json", "wrong shape", "short file",
                                    "bad json"])
def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path, damage):
    root = image_folder(tmp_path / "pics")
    first = load_folder(root)
    path = Path(first.preprocessing["cache_path"])
    if damage == "no images.npy":
        (path / "images.npy").unlink()
    elif damage == "no meta.json":
        (path / "meta.json").unlink()
    elif damage == "wrong shape":
        np.save(path / "images.npy", np.zeros((5, 1, 8, 8), dtype=np.uint8))
    elif damage == "short file":
        data = (path / "images.npy").read_bytes()
        (path / "images.npy").write_bytes(data[: len(data) // 2])
    else:
        (path / "meta.json").write_text("{not json")
    again = load_folder(root)
    assert again.preprocessing["cache"] == "built"
    assert again.preprocessing["cache_path"] == str(path)
    assert torch.equal(first.x, again.x)
    assert load_folder(root).preprocessing["cache"] == "hit"
    assert [p for p in entries(path.parent) if p.startswith(".")] == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_mid_build_leaves_nothing_behind(tmp_path, monkeypatch, cache_dir, error):
    root = image_folder(tmp_path / "pics")
    real, calls = images_module.open_image, []

    def fail_on_third(path, max_pixels, before_load=None):
        calls.append(path)
        if len(calls) == 3:
            raise error("disk on fire")
        return real(path, max_pixels, before_load)

    monkeypatch.setattr(images_module, "open_image", fail_on_third)
    with pytest.raises(error):
        load_folder(root)
    assert entries(cache_dir) == []
    monkeypatch.setattr(images_module, "open_image", real)
    assert load_folder(root).preprocessing["cache"] == "built"
    assert len(entries(cache_dir)) == 1


def test_splits_and_skipped_files_are_the_same_on_a_hit(tmp_path, monkeypatch):
    root = tmp_path / "pics"
    image_folder(root / "train", per_class=4)
    image_folder(root / "test", per_class=2)
    (root / "train" / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="skipped 1 of 13 images.*broken.png"):
        first = load_folder(root, max_bad_fraction=0.1)
    forbid_decoding(monkeypatch)
    with pytest.warns(UserWarning, match="skipped 1 of 13 images.*broken.png"):
        second = load_folder(root, max_bad_fraction=0.1)
    assert second.preprocessing["cache"] == "hit" and second.skipped == first.skipped == 1
    assert {k: v.tolist() for k, v in second.parts.items()} == \
        {"train": list(range(8)), "test": list(range(8, 12))}
    assert torch.equal(first.y, second.y)


def test_a_file_whose_pixels_fail_after_its_header_is_skipped(tmp_path):
    root = image_folder(tmp_path / "pics", per_class=4)
    whole = write_png(tmp_path / "whole.png", seed=7, size=64).read_bytes()
    (root / "cat" / "1.png").write_bytes(whole[: len(whole) // 2])  # header fine, pixels cut off
    with pytest.warns(UserWarning, match="skipped 1 of 8 images"):
        ds = load_folder(root, size=8, max_bad_fraction=0.2)
    path = Path(ds.preprocessing["cache_path"])
    assert ds.x.shape == (7, 1, 8, 8) and entries(path) == ["images.npy", "meta.json", "rows.npz"]
    assert np.load(path / "images.npy", mmap_mode="r").shape == (7, 1, 8, 8)
    assert ds.y.tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_a_large_cache_stays_memory_mapped(tmp_path, monkeypatch):
    root = image_folder(tmp_path / "pics")
    in_memory = load_folder(root)
    monkeypatch.setattr(cache_module, "IN_MEMORY_BELOW", 0)  # every cache counts as large
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
        mapped = load_folder(root)
    assert mapped.preprocessing["cache"] == "hit"
    assert isinstance(cache_module._read(Path(mapped.preprocessing["cache_path"]), "hit").x, np.memmap)
    assert torch.equal(mapped.x, in_memory.x)
    part = mapped.subset(np.array([4, 1]))  # an index tensor copies just those rows into memory
    assert torch.equal(part.x, in_memory.x[[4, 1]])
    part.x += 1  # private memory: the cache file is untouched
    mapped.x[0] += 1  # copy-on-write map: not written back either
    assert load_folder(root).preprocessing["cache"] == "hit"
    assert torch.equal(load_folder(root).x, in_memory.x)


def test_temp_folders_of_killed_builds_are_swept_after_a_day(tmp_path, cache_dir):
    old, fresh = cache_dir / ".tmp-0123456789ab-killed01", cache_dir / ".tmp-0123456789ab-building"
    for folder in (old, fresh):
        (folder / "images.npy").parent.mkdir(parents=True)
        (folder / "images.npy").write_bytes(b"partial")
    two_days_ago = os.stat(old).st_mtime - 2 * 24 * 3600
    for path in (old / "images.npy", old):
        os.utime(path, (two_days_ago, two_days_ago))
    load_folder(image_folder(tmp_path / "pics"))
    assert not old.exists() and fresh.exists()  # a build running elsewhere keeps its folder


HOLD_LOCK = """
import fcntl, sys
handle = open(sys.argv[1], "a+")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # held until the test closes stdin
"""


@pytest.mark.skipif(not cache_module.CAN_LOCK, reason="no advisory locks on this system")
def test_temp_folders_of_killed_builds_are_swept_at_every_load_and_live_builds_kept(tmp_path, cache_dir):
    root = image_folder(tmp_path / "pics")
    load_folder(root)  # built: the next loads are hits
    killed, live = cache_dir / ".tmp-0123456789ab-killed01", cache_dir / ".tmp-0123456789ab-live0001"
    for folder in (killed, live):
        folder.mkdir()
        (folder / "images.npy").write_bytes(b"partial")
        (folder / cache_module.BUILD_LOCK).touch()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(live / cache_module.BUILD_LOCK)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        assert load_folder(root).preprocessing["cache"] == "hit"
        assert not killed.exists()  # nobody holds its lock: swept at once, on a hit too
        assert (live / "images.npy").is_file()  # a live process builds in it
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    load_folder(root)
    assert not live.exists()  # its builder ended without finishing


def test_a_build_leaves_no_temp_folder_or_lock_file(tmp_path, cache_dir):
    cached = load_folder(image_folder(tmp_path / "pics"))
    assert [p.name for p in cache_dir.iterdir()] == [Path(cached.preprocessing["cache_path"]).name]
    assert not (Path(cached.preprocessing["cache_path"]) / cache_module.BUILD_LOCK).exists()


def test_a_cache_made_by_the_older_decoder_is_not_reused(tmp_path):
    root = image_folder(tmp_path / "pics")
    first = load_folder(root)
    path = Path(first.preprocessing["cache_path"])
    meta = json.loads((path / "meta.json").read_text())
    meta["format"] = 1  # as the decoder without orientation, background and bit depth wrote it
    del meta["preprocessing"]["decode"], meta["skipped_files"], meta["warned"]
    meta["bad"] = []
    (path / "meta.json").write_text(json.dumps(meta))
    again = load_folder(root)
    assert again.preprocessing["cache"] == "built" and again.preprocessing["decode"]["version"] == 4
    assert load_folder(root).preprocessing["cache"] == "hit"


@pytest.mark.parametrize("decode", [DecodeSettings(background=(0, 0, 0)), DecodeSettings(max_pixels=1000)])
def test_other_decode_settings_get_their_own_key(tmp_path, decode):
    root = image_folder(tmp_path / "pics")
    plain = load_folder(root)
    other = load_folder(root, decode=decode)
    assert other.preprocessing["cache"] == "built"
    assert other.preprocessing["cache_path"] != plain.preprocessing["cache_path"]
    assert other.preprocessing["decode"] == decode.record()


def build_directly(root: Path, cache_dir: Path, can_lock: bool) -> Path:
    paths = sorted(root.rglob("*.png"))
    labels = np.array([0 if p.parent.name == "cat" else 1 for p in paths])
    folder = cache_dir / cache_module.cache_key(root, paths, None, None, 0.01)
    cache_module._build(folder, root, paths, labels, np.array([""] * len(paths)), ["cat", "dog"],
                        None, None, 0.01, DecodeSettings(), can_lock=can_lock)
    return folder


@pytest.mark.parametrize("can_lock", [False, True])
def test_a_build_succeeds_with_and_without_advisory_locks(tmp_path, cache_dir, can_lock):
    folder = build_directly(image_folder(tmp_path / "pics"), cache_dir, can_lock)
    built = cache_module._read(folder, "built")
    assert built is not None and built.x.shape == (6, 1, 8, 8)
    assert entries(cache_dir) == [folder.name]  # no temp folder left
    assert not (folder / cache_module.BUILD_LOCK).exists()


def test_without_advisory_locks_a_temp_folder_has_no_lock_file(cache_dir):
    cache_dir.mkdir()
    tmp, lock = cache_module._locked_temp(cache_dir / ("ab" * 32), can_lock=False)
    assert lock is None and tmp.name.startswith(".tmp-abababababab-")
    assert entries(tmp) == []


def make_temp(cache_dir: Path, name: str, lock_file: bool = False) -> Path:
    folder = cache_dir / name
    folder.mkdir(parents=True)
    (folder / "images.npy").write_bytes(b"partial")
    if lock_file:
        (folder / cache_module.BUILD_LOCK).touch()
    return folder


def test_the_sweep_touches_only_neuroclass_temp_names(cache_dir):
    ours = [make_temp(cache_dir, n) for n in (".tmp-0123456789ab-x1y2z3_q", ".new-0123456789ab-abcdefgh",
                                                 ".stale-0123456789ab-89abcdef")]
    others = [make_temp(cache_dir, n) for n in (".tmp-other-program", ".new-0123456789ab",
                                                   ".stale-build", ".tmp-0123456789AB-upper", "tmp-x")]
    cache_module._sweep_stale(cache_dir, now=time.time() + 2 * cache_module.STALE_AFTER_S)
    assert not any(p.exists() for p in ours)  # a day old: left by killed builds
    assert all((p / "images.npy").is_file() for p in others)  # another program's temp folders


@pytest.mark.parametrize("can_lock", [False, True])
def test_a_temp_folder_without_its_lock_file_is_left_to_the_age_rule(cache_dir, can_lock):
    # a finished build unlinks its lock file just before renaming the folder into place
    folder = make_temp(cache_dir, ".tmp-0123456789ab-finished")
    cache_module._sweep_stale(cache_dir, can_lock=can_lock, now=time.time())
    assert (folder / "images.npy").is_file()
    cache_module._sweep_stale(cache_dir, can_lock=can_lock,
                              now=time.time() + 2 * cache_module.STALE_AFTER_S)
    assert not folder.exists()


def test_without_advisory_locks_an_unheld_lock_file_waits_for_the_age_rule(cache_dir):
    folder = make_temp(cache_dir, ".tmp-0123456789ab-windows1", lock_file=True)
    cache_module._sweep_stale(cache_dir, can_lock=False, now=time.time())
    assert folder.exists()  # nothing can tell whether its builder still runs


@pytest.mark.skipif(not cache_module.CAN_LOCK, reason="no advisory locks on this system")
def test_a_lock_file_that_cannot_be_probed_falls_back_to_the_age_rule(cache_dir):
    folder = make_temp(cache_dir, ".tmp-0123456789ab-loop0001")
    (folder / cache_module.BUILD_LOCK).symlink_to(cache_module.BUILD_LOCK)  # ELOOP on open
    with pytest.raises(OSError) as caught:
        lock_is_held(folder / cache_module.BUILD_LOCK)
    assert not isinstance(caught.value, FileNotFoundError)  # unknown, neither held nor free
    cache_module._sweep_stale(cache_dir, now=time.time())
    assert folder.exists()
    cache_module._sweep_stale(cache_dir, now=time.time() + 2 * cache_module.STALE_AFTER_S)
    assert not folder.exists()


@pytest.mark.skipif(not cache_module.CAN_LOCK, reason="no advisory locks on this system")
def test_lock_if_free_answers_missing_held_and_free(tmp_path):
    path = tmp_path / ".building"
    with pytest.raises(FileNotFoundError):
        lock_if_free(path)
    assert not path.exists()  # the probe creates nothing
    held = hold_lock(path)
    try:
        with pytest.raises(BlockingIOError):
            lock_if_free(path)
    finally:
        held.close()
    with lock_if_free(path):
        assert lock_is_held(path)
        with pytest.raises(BlockingIOError):
            hold_lock(path)  # a builder cannot take it while a sweep deletes
    assert not lock_is_held(path)


@pytest.mark.skipif(not cache_module.CAN_LOCK, reason="no advisory locks on this system")
def test_a_held_lock_file_unlinked_before_the_sweep_opens_it_keeps_the_folder(tmp_path, cache_dir):
    folder = make_temp(cache_dir, ".tmp-0123456789ab-publish1", lock_file=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder / cache_module.BUILD_LOCK)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        (folder / cache_module.BUILD_LOCK).unlink()  # what a builder does just before publishing
        cache_module._sweep_stale(cache_dir, now=time.time())
        assert (folder / "images.npy").is_file()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_an_interrupt_while_the_temp_folder_is_locked_leaves_nothing(tmp_path, monkeypatch, cache_dir):
    taken = []

    def lock_then_interrupt(path, can_lock):
        taken.append(hold_lock(path, can_lock))
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "hold_lock", lock_then_interrupt)
    root = image_folder(tmp_path / "pics")
    with pytest.raises(KeyboardInterrupt):
        load_folder(root)
    assert entries(cache_dir) == []
    monkeypatch.undo()
    assert load_folder(root).preprocessing["cache"] == "built"
