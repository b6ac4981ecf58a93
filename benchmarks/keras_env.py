"""The Keras contender's own environment, benchmarks/.venv-keras, and running keras_peer.py in it.

Keras stays out of the project's .venv: on first use a separate venv gets `pip install keras torch`
(a few minutes). Every failure becomes a reason string for the results table, never an exception.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-keras"
PYTHON = VENV / "bin" / "python"
MARKER = VENV / ".installed"  # written only after a complete install
INSTALL_TIMEOUT_S = 1800


def ensure_env() -> str:
    """Create and fill the venv if needed; '' when ready, else why not."""
    if MARKER.is_file() and PYTHON.exists():
        return ""
    print(f"setting up {VENV.relative_to(HERE.parent)} (first use: pip install keras torch, "
          "a few minutes; log in install.log there)...", file=sys.stderr, flush=True)
    try:
        if not PYTHON.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True,
                           capture_output=True, text=True, timeout=300)
        with open(VENV / "install.log", "w") as log:
            subprocess.run([str(PYTHON), "-m", "pip", "install", "keras", "torch"], check=True,
                           stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S)
        check = subprocess.run([str(PYTHON), "-c", "import keras, torch"], capture_output=True,
                               text=True, timeout=300, env=peer_environment("cpu"))
        if check.returncode != 0:
            return "keras installed but does not import: " + last_line(check.stderr)
        MARKER.write_text("keras torch\n")
        return ""
    except subprocess.TimeoutExpired:
        return f"installing keras took over {INSTALL_TIMEOUT_S} s; see {VENV / 'install.log'}"
    except subprocess.CalledProcessError as exc:
        detail = last_line(exc.stderr or "") or f"exit {exc.returncode}"
        return f"could not install keras ({detail}); see {VENV / 'install.log'}"
    except OSError as exc:
        return f"could not create {VENV}: {exc}"


def peer_environment(device: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # Keras' torch backend would otherwise take a GPU
    return env


def last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def run_peer(args: list[str], device: str, timeout_s: float) -> tuple[dict | None, str]:
    """Run keras_peer.py with ``args``: (its JSON result, '') or (None, why it failed)."""
    reason = ensure_env()
    if reason:
        return None, reason
    try:
        proc = subprocess.run([str(PYTHON), str(HERE / "keras_peer.py"), *args], capture_output=True,
                              text=True, timeout=timeout_s, env=peer_environment(device))
    except subprocess.TimeoutExpired:
        return None, f"keras peer ran past {timeout_s:.0f} s"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return None, f"keras peer failed (exit {proc.returncode}): {last_line(proc.stderr)}"
    try:
        return json.loads(lines[-1]), ""
    except json.JSONDecodeError:
        return None, "keras peer printed no valid JSON line"
