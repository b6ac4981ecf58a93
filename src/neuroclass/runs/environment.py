"""environment.json: what a run ran on, for reading its numbers later."""
from __future__ import annotations

import platform
import sys

import numpy as np
import torch


def environment_record(device: torch.device, threads: int, seed: int, data_hash: str, command: str) -> dict:
    """Versions (neuroclass, Python, torch, torchvision, NumPy, scikit-learn), platform and
    processor, the ``device``, the ``threads`` torch used, the training ``seed``, the data's
    content hash and the ``command`` that made the run.

    >>> environment_record(torch.device("cpu"), 2, 0, "ab12", "neuroclass train digits")["threads"]
    2
    """
    import sklearn
    import torchvision

    from neuroclass import __version__

    return {"neuroclass": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "device": str(device),
            "threads": threads, "seed": seed, "data_hash": data_hash, "command": command}
