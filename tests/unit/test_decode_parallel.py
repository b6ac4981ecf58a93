"""Decoding on a pool of threads (data/parallel.py, images.decode_into): the same rows, skipped
files and warnings as one file at a time, in path order; each warning named with the file whose
thread raised it; a bounded number of results held; the caller's warning state restored.

No test measures time: concurrency is shown by threads that wait for each other (events, a
barrier), each wait bounded so that a serial run fails instead of hanging.
"""
from __future__ import annotations

import struct
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuroclass.data.cache import load_or_build
from neuroclass.data.folder import load_image_folder
from neuroclass.data.images import UnreadableImage, decode_many, read_image
from neuroclass.data.parallel import (AHEAD, MAX_WORKERS, FileWarnings, decode_workers, ordered_map,
                                      usable_cores)
from neuroclass.data.pixels import DecodeSettings
from neuroclass.errors import NeuroclassError

ORIENTATION = 0x0112
WAIT_S = 30  # a bound on waits that only a broken (serial) pool would reach; never a measurement
# ASCII EXIF tags PIL reads while finding the orientation; each names itself in its warning
WARN_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x013B, 0x8298)


def noise(path: Path, seed: int, size: tuple[int, int] = (12, 20), fmt: str = "PNG", **options) -> Path:
    """uint8 noise of (H, W) ``size`` saved as ``fmt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt, **options)
    return path


def warning_jpeg(path: Path, tag: int) -> Path:
    """A JPEG whose EXIF entry ``tag`` claims more data than the file holds: PIL warns "Tag data
    larger than file. Skipping tag <tag>" while reading the orientation."""
    entries = struct.pack("<HHII", ORIENTATION, 3, 1, 1) + struct.pack("<HHII", tag, 2, 100, 5000)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + struct.pack("<I", 0)
    return noise(path, tag, (16, 24), "JPEG", exif=b"Exif\x00\x00" + tiff)


def sideways_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    return noise(path, 7, (30, 18), "JPEG", exif=exif.tobytes())


def cut_pixels(path: Path) -> Path:
    """A PNG whose header reads but whose pixels are cut off: found unreadable by the decode pass."""
    noise(path, 3, (40, 40))
    path.write_bytes(path.read_bytes()[:120])
    return path


def mixed_folder(root: Path) -> list[Path]:
    """Every kind of file a decode meets, in one folder: sizes, gray, sideways, warning, unreadable."""
    files = [noise(root / "a" / f"{i:02d}.png", i, (12 + i, 20)) for i in range(6)]
    files += [noise(root / "a" / "07.jpg", 8, (50, 30), "JPEG"), sideways_jpeg(root / "a" / "08.jpg")]
    Image.fromarray(np.arange(240, dtype=np.uint8).reshape(12, 20)).save(root / "a" / "09.png")
    (root / "b").mkdir(parents=True)
    (root / "b" / "10.png").write_text("not an image")  # refused by the header pass
    files += [root / "a" / "09.png", root / "b" / "10.png", cut_pixels(root / "b" / "11.png")]
    files += [warning_jpeg(root / "b" / f"{12 + k}_tag{tag}.jpg", tag) for k, tag in enumerate(WARN_TAGS)]
    files += [noise(root / "b" / f"{20 + i}.png", 20 + i, (12, 20)) for i in range(4)]
    return files


# ----------------------------------------------------------------------------- the same result

@pytest.mark.parametrize("workers", [2, 3, 8])
@pytest.mark.parametrize("aspect", ["crop", "stretch"])
def test_threads_decode_what_one_thread_decodes(tmp_path, workers, aspect):
    paths = mixed_folder(tmp_path / "pics")
    decode = DecodeSettings(aspect=aspect)
    serial = decode_many(paths, None, (16, 16), 0.2, "pics", decode, workers=1)
    threaded = decode_many(paths, None, (16, 16), 0.2, "pics", decode, workers=workers)
    assert threaded.x.tobytes() == serial.x.tobytes() and threaded.x.shape == serial.x.shape
    assert threaded.kept == serial.kept and threaded.preprocessing == serial.preprocessing
    assert threaded.skipped == serial.skipped and threaded.warned == serial.warned
    assert [s.path for s in serial.skipped] == [str(paths[9]), str(paths[10])]  # header, then pixels
    assert "truncated" in serial.skipped[1].reason
    assert len(serial.kept) == len(paths) - 2 and serial.x.shape == (len(paths) - 2, 3, 16, 16)


def test_one_worker_is_the_file_by_file_loop(tmp_path):
    paths = mixed_folder(tmp_path / "pics")
    done = decode_many(paths, 3, (16, 16), 0.2, "pics", DecodeSettings(), workers=1)
    rows, warned = [], []
    for path in paths:
        try:
            x, found = read_image(path, 3, (16, 16), DecodeSettings())
        except UnreadableImage:  # the two unreadable files
            continue
        rows.append(x)
        warned += found
    assert np.array_equal(done.x, np.stack(rows)) and done.warned == warned


def test_a_sideways_photo_decodes_upright_in_every_thread(tmp_path):
    paths = [sideways_jpeg(tmp_path / "s.jpg")] * 5 + [noise(tmp_path / "n.png", 1)]
    one = decode_many(paths, None, None, 0.0, "pics", DecodeSettings(), workers=1)
    four = decode_many(paths, None, None, 0.0, "pics", DecodeSettings(), workers=4)
    assert one.preprocessing["size"] == [18, 30]  # displayed upright: the stored 30x18 turned
    assert np.array_equal(one.x, four.x) and all(np.array_equal(four.x[0], row) for row in four.x[:5])


# ----------------------------------------------------------------------------- warnings

def test_each_warning_names_its_own_file_under_threads(tmp_path):
    root = tmp_path / "pics"
    paths = []
    for k, tag in enumerate(WARN_TAGS * 3):  # 18 warning files among clean ones
        paths += [warning_jpeg(root / f"{k:02d}_tag{tag}.jpg", tag), noise(root / f"{k:02d}_clean.png", k)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        done = decode_many(paths, 3, (8, 8), 0.0, "pics", DecodeSettings(), workers=4)
    assert caught == []  # nothing escapes: each warning is the file's
    assert [w.path for w in done.warned] == [str(p) for p in paths if "_tag" in p.name]  # path order
    for issue in done.warned:
        tag = issue.path.rsplit("_tag", 1)[1].removesuffix(".jpg")
        assert issue.reason == f"Tag data larger than file. Skipping tag {tag}"


def test_interleaved_warnings_of_two_threads_are_kept_apart():
    barrier = threading.Barrier(2, timeout=WAIT_S)

    def warn_around_the_other(name: str) -> str:
        warnings.warn(f"{name} before")
        barrier.wait()  # both threads have warned once: the next warnings interleave
        warnings.warn(f"{name} after")
        barrier.wait()
        return name

    with FileWarnings() as capture, ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(capture.run, warn_around_the_other, name) for name in ("a", "b")]
        results = [future.result() for future in futures]
    for name, (value, caught) in zip("ab", results):
        assert value == name and [str(w.message) for w in caught] == [f"{name} before", f"{name} after"]
    assert capture.elsewhere == []


def test_warnings_outside_any_file_are_kept_for_the_caller():
    def stray() -> None:
        warnings.warn("from another thread")

    with FileWarnings() as capture:
        thread = threading.Thread(target=stray)
        thread.start()
        thread.join(WAIT_S)
        _, caught = capture.run(lambda: None)
    assert caught == [] and [str(w.message) for w in capture.elsewhere] == ["from another thread"]


def test_the_callers_warning_state_is_restored(tmp_path):
    paths = [warning_jpeg(tmp_path / f"{tag}.jpg", tag) for tag in WARN_TAGS]
    before_filters, before_show = list(warnings.filters), warnings.showwarning
    decode_many(paths, 3, (8, 8), 0.0, "pics", DecodeSettings(), workers=3)
    assert warnings.filters == before_filters and warnings.showwarning is before_show
    with pytest.raises(ZeroDivisionError), FileWarnings():  # an error inside restores it too
        warnings.simplefilter("error")
        raise ZeroDivisionError
    assert warnings.filters == before_filters and warnings.showwarning is before_show


def test_warnings_about_the_code_are_passed_on_from_threads(tmp_path):
    from test_image_reading import deprecated_format_image

    path, said = deprecated_format_image(tmp_path / "x.im")
    passed_on = {}
    for workers in (1, 2):
        with pytest.warns(DeprecationWarning) as caught:
            done = decode_many([path] * 4, 3, (8, 8), 0.0, "pics", DecodeSettings(), workers=workers)
        assert done.warned == []  # not blamed on the file
        passed_on[workers] = [(w.category, str(w.message)) for w in caught]
    assert passed_on[2] == passed_on[1] and passed_on[1].count((DeprecationWarning, said)) >= 4


# ----------------------------------------------------------------------------- the pool

def test_results_come_in_order_while_calls_overlap():
    second_done = threading.Event()

    def call(i: int) -> int:
        if i == 0:  # the first call can end only once the second has: they run at the same time
            assert second_done.wait(WAIT_S), "the calls did not overlap"
        else:
            second_done.set()
        return i

    assert list(ordered_map(call, range(6), 2)) == list(range(6))


def test_a_few_results_per_worker_are_held_at_most():
    lock, started, consumed, most = threading.Lock(), [0], [0], [0]

    def call(i: int) -> int:
        with lock:
            started[0] += 1
            most[0] = max(most[0], started[0] - consumed[0])
        return i

    for i in ordered_map(call, range(200), 3):
        with lock:
            consumed[0] += 1
    assert started[0] == 200 and 1 <= most[0] <= 3 * AHEAD


def test_an_error_in_a_call_is_raised_in_its_turn_and_the_pool_ends():
    def call(i: int) -> int:
        if i == 5:
            raise ValueError("bad item")
        return i

    seen = []
    with pytest.raises(ValueError, match="bad item"):
        for i in ordered_map(call, range(40), 3):
            seen.append(i)
    assert seen == [0, 1, 2, 3, 4]
    assert not [t for t in threading.enumerate() if t.name.startswith("neuroclass-decode")]


def test_one_worker_calls_in_the_calling_thread():
    threads = list(ordered_map(lambda i: threading.current_thread(), range(3), 1))
    assert threads == [threading.main_thread()] * 3


def test_the_worker_count():
    assert decode_workers(None, 1000) == min(usable_cores(), MAX_WORKERS) >= 1
    assert decode_workers(1, 1000) == 1 and decode_workers(16, 1000) == 16
    assert decode_workers(8, 3) == 3 and decode_workers(None, 0) == 1
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(NeuroclassError, match="decode workers must be a whole number >= 1"):
            decode_workers(bad, 10)


# ----------------------------------------------------------------------------- the cache

def test_the_cache_built_by_threads_is_the_serial_decode_and_shared(tmp_path):
    root = tmp_path / "pics"
    paths = mixed_folder(root)
    labels, splits = np.zeros(len(paths), np.int64), np.array([""] * len(paths))
    built = load_or_build(root, paths, labels, splits, ["a"], None, (16, 16), 0.2, DecodeSettings(),
                          workers=3)
    serial = decode_many(paths, None, (16, 16), 0.2, str(root), DecodeSettings(), workers=1)
    assert built.preprocessing["cache"] == "built" and np.array_equal(built.x, serial.x)
    assert built.kept.tolist() == serial.kept and built.warned == serial.warned
    hit = load_or_build(root, paths, labels, splits, ["a"], None, (16, 16), 0.2, DecodeSettings(),
                        workers=1)
    assert hit.preprocessing["cache"] == "hit" and hit.path == built.path  # the count is not in the key


def test_a_folder_loads_the_same_with_any_worker_count(tmp_path):
    root = tmp_path / "pics"
    for k, name in enumerate(("cat", "dog")):
        for i in range(5):
            noise(root / name / f"{i}.png", 10 * k + i, (10 + i, 14))
    one = load_image_folder(root, None, 12, 0.0, cache=False, workers=1)
    two = load_image_folder(root, None, 12, 0.0, cache=False, workers=2)
    assert np.array_equal(one.x.numpy(), two.x.numpy()) and np.array_equal(one.y.numpy(), two.y.numpy())
