"""Advice to start from ImageNet weights: when a run is about to train photos from scratch on few
images per class, the command that starts from a pretrained torchvision network instead, and where
its weights file goes on a machine without network access.

Pure but for one look at the disk (is the weights file already in torch's hub cache?); the caller
decides where the advice is shown (the pipeline logs it among a run's first lines, the doctor
offers it for a run stuck at chance).

When it is given: images (C, H, W) that look like photographs, colour at least COLOUR_MIN_SIDE
pixels on the shorter side (CIFAR-like and larger) or grey at least GREY_MIN_SIDE (scans and grey
photographs; ``--pretrained`` sums the RGB stem kernels for them, models/transfer.py), with fewer
than MANY_PER_CLASS training images per class, and no starting point chosen yet (``--pretrained``,
``--weights``, ``--from``). Never for tables, nor for small grey images (MNIST-like digits and
clothes, which small networks learn well from scratch).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from neuroclass.errors import NeuroclassError
from neuroclass.models.transfer import pretrained_location

# Below ~1000 images per class a network trained from scratch on photos overfits or fails to start,
# and ImageNet features help most; with more images, training from scratch closes much of the gap
# given time (He et al., "Rethinking ImageNet Pre-training", 2019).
MANY_PER_CLASS = 1000
COLOUR_MIN_SIDE = 32
GREY_MIN_SIDE = 64
# On a CPU: mobilenet_v3_small (ImageNet top-1 67.7%, 2.5M parameters, a 10 MB weights file) trained
# 3-7x the images/s of resnet18 (69.8%, 11.7M, 45 MB) at 128 and 224 px in two measurements on a
# 2-core machine (benchmarks/tv_archs.py), and efficientnet_b0 (77.7%, 20 MB) was as slow as resnet18
# at 128 px and slower at 224; within a time budget the speed buys epochs and resolution, and the
# smaller file is quicker to carry to an offline machine. With an accelerator, resnet18: speed
# matters less there, and ResNets fine-tune robustly with plain settings.
CPU_ARCH = "mobilenet_v3_small"
ACCELERATOR_ARCH = "resnet18"
DEFAULT_BUDGET = "3m"  # a few minutes: enough epochs of a small pretrained network on a few thousand images


@dataclass(frozen=True)
class PretrainedAdvice:
    """``why`` (one sentence), ``command`` (to run as is), ``weights`` (where the weights file is,
    or where to place it offline) and ``arch`` (the torchvision architecture suggested)."""
    why: str
    command: str
    weights: str
    arch: str

    @property
    def text(self) -> str:
        """Three lines: why, the command, the weights file."""
        return f"{self.why}\n  {self.command}\n  {self.weights}"


def _duration(seconds: float) -> str:
    """'3m', '90s', '1.5h': the shortest unit that is a whole or one-decimal number."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and (seconds / size * 10) % 1 == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _photo_like(shape: tuple[int, ...]) -> bool:
    channels, side = shape[0], min(shape[1:])
    return (channels == 3 and side >= COLOUR_MIN_SIDE) or (channels == 1 and side >= GREY_MIN_SIDE)


def _arch(model: str, accelerator: bool, locate: Callable[[str], tuple[str, Path]]) -> str:
    """The user's own tv architecture when torchvision has weights for it, else the default."""
    if model.startswith("tv:"):
        try:
            locate(model[3:])
            return model[3:]
        except NeuroclassError:  # an architecture without pretrained weights
            pass
    return ACCELERATOR_ARCH if accelerator else CPU_ARCH


def _check(input_shape, native_shape, train_images: int, classes: int) -> None:
    for name, shape in (("input_shape", input_shape), ("native_shape", native_shape)):
        if shape is not None and not (isinstance(shape, (tuple, list))
                                      and all(isinstance(n, int) and n > 0 for n in shape)):
            raise NeuroclassError(f"pretrained_advice: {name} must be sizes like (3, 224, 224); "
                                  f"got {shape!r}")
    if not isinstance(train_images, int) or train_images < 0:
        raise NeuroclassError(f"pretrained_advice: train_images must be a count >= 0; got {train_images!r}")
    if not isinstance(classes, int) or classes < 1:
        raise NeuroclassError(f"pretrained_advice: classes must be a count >= 1; got {classes!r}")


def pretrained_advice(*, source: str, input_shape: Optional[tuple[int, ...]], train_images: int,
                      classes: int, model: str, starting_point: bool,
                      time_budget: Optional[float] = None, out: Optional[str] = None,
                      native_shape: Optional[tuple[int, ...]] = None, accelerator: bool = False,
                      locate: Callable[[str], tuple[str, Path]] = pretrained_location,
                      ) -> Optional[PretrainedAdvice]:
    """Advice to start from ImageNet weights, or None where they would not help (see the module).

    ``source``: the data as the user typed it (quoted into the command). ``input_shape``: the
    model's input (C, H, W) as chosen, or the table row's shape / None for tables. ``native_shape``:
    the images' own (C, H, W) when known (a photo folder's typical size); it decides whether the
    images look like photographs, else ``input_shape`` does. ``train_images``: examples in the
    training split; ``classes``: K. ``model``: the family chosen, as ``model.name`` holds it
    ("cnn", "auto", "tv:resnet50"). ``starting_point``: --pretrained, --weights or --from already
    set. ``time_budget``: seconds, None when not set (the command then suggests DEFAULT_BUDGET).
    ``out``: the --out folder given, None for the default. ``accelerator``: training runs on a GPU.
    ``locate``: arch -> (url, path in torch's hub cache), models.transfer.pretrained_location.
    Raises NeuroclassError for malformed shapes or counts.

    Example::

        pretrained_advice(source="my photos", input_shape=(3, 64, 64), train_images=400, classes=3,
                          model="cnn", starting_point=False).command
        # -> "neuroclass train 'my photos' --model tv:mobilenet_v3_small --pretrained --time-budget 3m"
    """
    _check(input_shape, native_shape, train_images, classes)
    shape = native_shape or input_shape
    if starting_point or shape is None or len(shape) != 3 or not _photo_like(tuple(shape)):
        return None
    per_class = train_images / classes
    if per_class >= MANY_PER_CLASS:
        return None
    arch = _arch(model, accelerator, locate)
    budget = _duration(time_budget) if time_budget else DEFAULT_BUDGET
    argv = ["neuroclass", "train", source, "--model", f"tv:{arch}", "--pretrained", "--time-budget", budget]
    command = shlex.join(argv + (["--out", out] if out else []))
    url, path = locate(arch)
    weights = (f"the weights file is already at {path}" if path.is_file()
               else f"offline: download {url} and place it at {path}")
    colour = "colour" if shape[0] == 3 else "gray"
    why = (f"{per_class:.0f} training images per class ({train_images} in {classes} classes) of "
           f"{colour} {shape[2]}x{shape[1]} px images, trained from scratch: a network pretrained on "
           "ImageNet brings features that so few photos cannot teach, and usually reaches a higher "
           f"accuracy sooner. Start from tv:{arch}'s ImageNet weights:")
    return PretrainedAdvice(why, command, weights, arch)
