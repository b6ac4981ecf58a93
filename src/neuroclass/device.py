"""Device and thread choice, in one place: every module asks here."""
from __future__ import annotations

import contextlib
import ctypes
import platform
from typing import Iterator, Optional

import torch

from neuroclass.errors import NeuroclassError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu; an explicit name is checked.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NeuroclassError(f"The 'train.device' parameter must be auto, cpu, cuda, cuda:N or mps. "
                              f"Got {name!r} instead.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NeuroclassError("train.device is 'cuda' but no CUDA GPU is available; use --set train.device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise NeuroclassError("train.device is 'mps' but MPS is not available; use --set train.device=cpu")
    return device


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads (default: PyTorch's choice, one per physical core) from now
    on, process-wide; returns the count in use. ``use_threads`` is the form that restores it."""
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


@contextlib.contextmanager
def use_threads(threads: int | None) -> Iterator[int]:
    """``set_threads`` for the ``with`` block only: torch's intra-op thread count is put back on
    exit. Yields the count in use.

    >>> with use_threads(1) as count:
    ...     count
    1
    """
    before = torch.get_num_threads()
    try:
        yield set_threads(threads)
    finally:
        torch.set_num_threads(before)


def memory_format(device: torch.device, channels_last: bool, ndim: int) -> torch.memory_format:
    """channels_last for 4-D image batches where asked: measured 1.3x faster training on CPU."""
    if channels_last and ndim == 4:
        return torch.channels_last
    return torch.contiguous_format


# Devices with fused Adam/AdamW kernels (one kernel over all parameters instead of a loop of small
# ops per tensor): measured ~2% faster training of the cnn's size l on 2 CPU cores (1,262 -> 1,284
# img/s; with device.keep_freed_memory 1,323)
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


def fused_optimizer(params: list[torch.Tensor]) -> bool:
    """Whether every parameter can take a fused Adam/AdamW step (floating point, cpu or cuda)."""
    return bool(params) and all(p.is_floating_point() and p.device.type in FUSED_OPTIMIZER_DEVICES
                                for p in params)


# glibc malloc: activations larger than its (adaptive) mmap threshold are mapped fresh for every
# step and the heap top above its trim threshold goes back to the system, so a training step of
# the cnn's sizes m/l (activations up to 9.6 MB at batch 128, 28x28) faulted in 500-4,600 pages,
# varying from process to process. With both thresholds fixed, blocks up to 32 MiB are reused
# from the heap and up to 256 MiB of free heap top is kept: 0-180 faults per step, 2-4% faster
# training on 2 CPU cores. Blocks over 32 MiB still map and unmap.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES = 32 << 20, 256 << 20


# glibc's documented defaults of both thresholds (mallopt(3)), which keep_freed_memory restores
DEFAULT_MMAP_THRESHOLD_BYTES = DEFAULT_TRIM_THRESHOLD_BYTES = 128 << 10
# how many keep_freed_memory blocks are open, and whether the outermost could set the thresholds:
# the allocator is process-wide, so its bookkeeping is too
_KEPT = {"depth": 0, "set": False}


def _glibc() -> Optional[ctypes.CDLL]:
    """The C library where it is glibc (whose malloc mallopt tunes), else None (macOS, Windows,
    musl: another allocator that keeps its own behaviour)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Tune glibc malloc for a training loop (see above) inside the ``with`` block; yields whether
    it could (False on another C library, which keeps its own behaviour).

    On exit both thresholds go back to glibc's defaults (128 KiB). glibc's dynamic adjustment of
    them, on by default, stays off: mallopt turns it off for good once either is set, and glibc
    offers no way to read the values set before, so a caller's own mallopt setting is not restored
    either. Nested blocks (a run around its fit) keep the setting until the outermost one ends.

    Example::

        with keep_freed_memory():
            state = trainer.fit(model, train, val)
    """
    libc = _glibc()
    if libc is None:
        yield False
        return
    if _KEPT["depth"]:  # an enclosing block holds the setting and restores it
        _KEPT["depth"] += 1
        try:
            yield _KEPT["set"]
        finally:
            _KEPT["depth"] -= 1
        return
    _KEPT["depth"], _KEPT["set"] = 1, bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                                            and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    try:
        yield _KEPT["set"]
    finally:
        _KEPT["depth"] = 0
        libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD_BYTES)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD_BYTES)


@contextlib.contextmanager
def run_process_state(seed: int, threads: int | None) -> Iterator[int]:
    """Seed torch's global generator with ``seed``, set the thread count (``use_threads``) and keep
    freed memory in glibc's heap (``keep_freed_memory``) for a run; all three are restored
    afterwards. Yields the number of threads in use. The allocator setting spans the evaluation
    after training too: without it those passes ran 1.6x slower than the validation passes the
    time budget measures them by."""
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        torch.manual_seed(seed)  # dropout and initialisation draw from it
        with use_threads(threads) as used, keep_freed_memory():
            yield used
