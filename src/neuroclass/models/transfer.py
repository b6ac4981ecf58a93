"""Transfer learning: start a model from weights learned elsewhere, and tell its head from its backbone.

Three starting points, at most one per run:
- ``model.pretrained`` (``--pretrained``): torchvision's ImageNet weights for ``tv:ARCH``, read from
  torch's hub cache (``torch.hub.get_dir()/checkpoints``) and downloaded there only when missing;
- ``model.weights`` (``--weights PATH``): a local ``.safetensors`` or PyTorch state-dict file, matched
  by name, with what did not fit reported in one warning line;
- ``model.from_run`` (``--from RUN``): an earlier run's model (same family, options, input shape).

The *head* is the final classifier layer that each family declares (``register_model(head=...)``:
``head.2`` for resnet, ``fc`` / ``classifier[-1]`` / ``heads.head`` / squeezenet's 1x1 conv for
torchvision models, capsnet's class-capsule transforms). Everything else is the *backbone*. A head
is replaced (left as initialised for the data's classes) when the source was trained on other
classes. Input standardization (``standardize.*``) is never taken from a source: it always holds
the statistics of the data being trained on.
"""
from __future__ import annotations

import logging
import math
import re
import urllib.error
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from neuroclass.errors import NeuroclassError
from neuroclass.models.layers import Classifier

log = logging.getLogger(__name__)

# prefixes that wrap the same network under other names: our Classifier ("net."), the tv family's
# torchvision model ("model."), nn.DataParallel ("module."), torch.compile ("_orig_mod.")
WRAPPER_PREFIXES = ("net.", "_orig_mod.", "module.", "model.")
# torchvision's googlenet / inception_v3 weights hold auxiliary heads; our models are built without
AUX_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")


@dataclass(frozen=True)
class Head:
    """Where a Classifier's head is: its parameter names, and the tensor ``embed`` reads (the
    features): the input of module ``feature_module`` (``feature_side="input"``) or its output.
    """

    params: tuple[str, ...]  # e.g. ("net.head.2.weight", "net.head.2.bias")
    feature_module: str  # e.g. "net.head.2"
    feature_side: str  # "input" | "output"


def find_head(model: Classifier) -> Head:
    """The head and feature layer that ``model``'s family declares, as names inside ``model``.

    A declared module's parameters all belong to the head; a declared parameter is the head alone.
    Raises NeuroclassError when the declared path names nothing in the network.

    Example::

        find_head(create(ModelConfig(name="mlp"), (1, 28, 28), 10, mean, std)).params
        # -> ('net.layers.9.weight', 'net.layers.9.bias')
    """
    family, net = model.family, model.net
    path = family.head_path(net)
    try:
        params = tuple(f"net.{path}.{p}" for p, _ in net.get_submodule(path).named_parameters())
    except AttributeError:  # not a module: a parameter of one (capsnet's transform), or nothing
        try:
            net.get_parameter(path)
        except AttributeError:
            raise NeuroclassError(f"model {family.name}: its declared head '{path}' is neither a module "
                                  "nor a parameter of the network") from None
        params = (f"net.{path}",)
    if not params:
        raise NeuroclassError(f"model {family.name}: its declared head '{path}' holds no parameters")
    return Head(params, f"net.{family.feature_path(net)}", family.feature_side.value)


def split_backbone_head(model: Classifier) -> tuple[list[str], list[str]]:
    """(backbone parameter names, head parameter names), each in definition order."""
    head = set(find_head(model).params)
    names = [n for n, _ in model.named_parameters()]
    return [n for n in names if n not in head], [n for n in names if n in head]


def canonical(key: str) -> str:
    """A state-dict key without wrapper prefixes, so that files from other wrappers match.

    >>> canonical("net.model.layer1.0.conv1.weight"), canonical("layer1.0.conv1.weight")
    ('layer1.0.conv1.weight', 'layer1.0.conv1.weight')
    """
    for prefix in WRAPPER_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


# ----------------------------------------------------------------------------- reading weight files

def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """A state dict, or one nested under "state_dict" / "model" (common checkpoint layouts)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise NeuroclassError(f"{path}: holds no tensors by name; save model.state_dict() with torch.save "
                          "or safetensors.torch.save_file")


def read_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors by name from a .safetensors file or a torch.save'd state dict (never unpickling code).

    Example::

        state = read_state_file("resnet-fashion.safetensors")
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise NeuroclassError(f"weights file '{path}' not found; check the --weights / model.weights path")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise NeuroclassError(f"{path}: cannot read safetensors ({exc})") from None
    try:
        # weights_only: a file can hold only tensors and plain containers, never code to run
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by cause
        reason = " ".join(str(exc).split())[:200]
        raise NeuroclassError(f"{path}: not a readable state dict of tensors ({reason}); save "
                              "model.state_dict() with torch.save or safetensors.torch.save_file") from None
    return _unwrap(obj, path)


# ----------------------------------------------------------------------------- matching by name

@dataclass
class LoadReport:
    """What a tolerant load did, by canonical key."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # in both, with different shapes
    note: str = ""  # a last word for the summary

    def summary(self, where: str) -> str:
        """One line: counts and the first few names of each kind of mismatch."""
        total = len(self.loaded) + len(self.missing) + len(self.mismatched)
        parts = [f"{where}: loaded {len(self.loaded)} of {total} tensors"]
        for label, names in (("shape-mismatched (left as initialised)", self.mismatched),
                             ("missing (left as initialised)", self.missing),
                             ("unexpected (ignored)", self.unexpected)):
            if names:
                more = f", +{len(names) - 3} more" if len(names) > 3 else ""
                parts.append(f"{len(names)} {label}: {', '.join(names[:3])}{more}")
        return "; ".join(parts + ([self.note] if self.note else []))


def load_matching(model: Classifier, state: dict[str, torch.Tensor],
                  skip: frozenset[str] | set[str] = frozenset()) -> LoadReport:
    """Copy every tensor of ``state`` whose canonical name and shape match one of ``model``'s.

    ``skip`` lists model names (e.g. the head) to leave alone. Counters of BatchNorm
    (num_batches_tracked) are copied when present but never reported as missing.
    """
    source = {canonical(k): v for k, v in state.items()}
    targets = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    report, used = LoadReport(), set()
    with torch.no_grad():
        for name, tensor in targets.items():
            key = canonical(name)
            if name.startswith("standardize.") or name in skip:
                used.add(key)
                continue
            if key not in source:
                if not key.endswith("num_batches_tracked"):
                    report.missing.append(key)
                continue
            used.add(key)
            if tuple(source[key].shape) != tuple(tensor.shape):
                report.mismatched.append(f"{key} {tuple(source[key].shape)} vs {tuple(tensor.shape)}")
                continue
            tensor.copy_(source[key])
            report.loaded.append(key)
    report.unexpected = [k for k in source if k not in used and not k.startswith("standardize.")]
    return report


def load_weights_file(model: Classifier, path: str | Path) -> bool:
    """``--weights PATH``: load what matches; warn once about the rest. Returns True when the head
    was not loaded (it has other classes, or the file has none), so it starts from scratch."""
    state = read_state_file(path)
    head, own = find_head(model).params, model.state_dict()
    source = {canonical(k): v for k, v in state.items()}
    # a head is taken whole or not at all: a bias without its weight matrix means nothing
    misfits = [n for n in head if canonical(n) not in source
               or tuple(source[canonical(n)].shape) != tuple(own[n].shape)]
    report = load_matching(model, state, skip=set(head) if misfits else set())
    for name in misfits:
        key = canonical(name)
        if key not in source:
            report.missing.append(key)
        else:
            report.mismatched.append(f"{key} {tuple(source[key].shape)} vs {tuple(own[name].shape)}")
    if misfits:
        report.note = "the head starts from scratch"
    if not report.loaded:
        raise NeuroclassError(f"{path}: none of its {len(state)} tensors match the model by name and "
                              f"shape (first names: {', '.join(list(state)[:3])}); pass weights "
                              "saved from the same model family and options")
    if report.missing or report.unexpected or report.mismatched:
        warnings.warn(report.summary(str(path)), stacklevel=2)
    return bool(misfits)


# ----------------------------------------------------------------------------- torchvision weights

def pretrained_location(arch: str) -> tuple[str, Path]:
    """(download URL, cache path) of torchvision's default weights for ``arch``.

    >>> pretrained_location("resnet18")[1].name
    'resnet18-f37072fd.pth'
    """
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(arch).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise NeuroclassError(f"tv:{arch}: torchvision ships no pretrained weights for it; "
                              "drop --pretrained") from None
    return weights.url, Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def fetch_pretrained(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's weights for ``arch`` from the hub cache; downloaded (hash-checked) if missing,
    with an INFO log record of the "neuroclass" hierarchy saying what is fetched (the library
    draws no progress bar of its own)."""
    url, path = pretrained_location(arch)
    if not path.is_file():
        hash_prefix = re.search(r"-([a-f0-9]+)\.", path.name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            log.info("downloading %s to %s", url, path)
            # writes a temp file and renames it into place: no half-written cache entry
            torch.hub.download_url_to_file(url, str(path), hash_prefix and hash_prefix.group(1),
                                           progress=False)
        except (urllib.error.URLError, OSError, RuntimeError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:160]
            raise NeuroclassError(
                f"--pretrained tv:{arch}: weights file '{path.name}' is not in {path.parent} and "
                f"could not be downloaded ({reason}); download {url} where there is network access "
                f"and place it in {path.parent} (or point TORCH_HOME at a folder whose "
                "hub/checkpoints holds it)") from None
    return read_state_file(path)


def adapt_stem_kernel(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first-conv kernel (O, 3, k, k) for ``channels`` inputs: grey sums the RGB kernels (what a
    grey image, R = G = B, meets in the original); other counts cycle them, scaled by 3 / channels.

    >>> adapt_stem_kernel(torch.ones(2, 3, 1, 1), 1).flatten().tolist()
    [3.0, 3.0]
    """
    if weight.shape[1] == channels:
        return weight
    if channels == 1:
        return weight.sum(1, keepdim=True)
    repeats = math.ceil(channels / weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :channels] * (weight.shape[1] / channels)


def load_pretrained(model: Classifier, arch: str) -> None:
    """``--pretrained``: ImageNet weights into a tv model; stem adapted, head left for our classes."""
    state = {k: v for k, v in fetch_pretrained(arch).items() if not k.startswith(AUX_PREFIXES)}
    stem = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    key = canonical(f"{stem}.weight")
    if key in state:
        state[key] = adapt_stem_kernel(state[key], model.get_submodule(stem).in_channels)
    # the head is skipped: ImageNet's 1000 classes are not ours
    report = load_matching(model, state, skip=set(find_head(model).params))
    if not report.loaded:
        raise NeuroclassError(f"tv:{arch}: the pretrained file matched none of the model's tensors")
    if report.missing or report.unexpected or report.mismatched:
        warnings.warn(report.summary(f"--pretrained tv:{arch}"), stacklevel=2)
