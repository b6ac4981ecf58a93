"""RunFolder: the one reader and writer of a run folder's files.

``runs/<data>-<model>-<timestamp>/`` holds config.yaml (resolved), model.safetensors and model.json
(runs/model_file.py), a table's fitted preprocessing preprocess.skops (runs/preprocess_file.py),
metrics.json (test metrics), metrics.csv (per epoch), timing.json, environment.json (versions,
seed, data hash), split.json / split.npz (how the data was split), data_issues.json (files ignored
or skipped, warnings, merged labels, classes missing from a split) and
report.html / report.json. A new run is assembled in a hidden ``.partial-<name>`` folder and renamed
into place once every file is written, so a failed run never leaves a half-written folder; every
file is written atomically (neuroclass/io.py) with the umask's permissions.

While a run trains, its partial folder holds config.yaml from the start and ``checkpoint/``: the
training checkpoints (written by training/checkpoint.py in ``checkpoint_dir``) and resume.json (the
budget's plan, the command, each resume). An interrupted run is reopened by ``RunFolder.reopen``;
``commit`` drops ``checkpoint/``, since the finished run's model is in model.safetensors. A process
that trains a partial folder holds a lock on it (``.lock``), so two never train the same one.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from neuroclass.config import Config, load_config, save_config
from neuroclass.data.issues import DataIssues
from neuroclass.errors import NeuroclassError
from neuroclass.io import write_bytes_atomic, write_text_atomic
from neuroclass.models import Classifier
from neuroclass.runs.lock import is_locked, lock_folder
from neuroclass.runs.model_file import load_model, read_metadata, read_weights, save_model
from neuroclass.runs.names import data_slug
from neuroclass.runs.preprocess_file import load_preprocess, save_preprocess
from neuroclass.runs.run_data import RunData, load_run_data

TIMING_RENAMED = {"train_images_per_second": "train_examples_per_second",  # timing.json: old -> new
                  "inference_images_per_second": "inference_examples_per_second"}

# the selection metrics (--metric of tune) come last, so the file's first columns stay as they were
HISTORY_FIELDS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time",
                  "val_balanced_accuracy", "val_macro_f1")
PARTIAL = ".partial-"  # prefix of a run folder being assembled (or interrupted)
CHECKPOINT_DIR = "checkpoint"
LOCK_FILE = ".lock"


def history_csv(history: list[dict]) -> str:
    """metrics.csv's text: one row per epoch, empty cells where a value is None."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in HISTORY_FIELDS})
    return buf.getvalue()


class RunFolder:
    """A run folder on disk. ``RunFolder.create`` starts a new (partial) one, ``RunFolder.open``
    reads a finished one.

    Example::

        run = RunFolder.open("runs/digits-mlp-20260101-120000")
        run.metrics()["accuracy"]
        # -> 0.97
    """

    def __init__(self, path: str | Path, final: Path | None = None) -> None:
        self.path = Path(path)
        self.final = final  # for a partial folder: the name it gets on commit
        self._lock = None  # the open lock file while this process trains the partial folder
        self._made_out: Path | None = None  # the --out folder, when ``create`` made it

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, out: str | Path, name: str) -> "RunFolder":
        """A new hidden ``out/.partial-<name>`` folder (``name-2``, ... when ``name`` is taken);
        ``discard`` removes ``out`` too when this call made it and it is empty then."""
        out = Path(out)
        try:
            made_out = not out.exists()
            out.mkdir(parents=True, exist_ok=True)
            for suffix in range(1, 10_000):
                final = out / (name if suffix == 1 else f"{name}-{suffix}")
                if final.exists():
                    continue
                try:  # mkdir is the claim: two runs started in the same second get two names
                    (out / f"{PARTIAL}{final.name}").mkdir()
                except FileExistsError:
                    continue
                run = cls(out / f"{PARTIAL}{final.name}", final)
                run._made_out = out if made_out else None
                try:
                    run._claim()
                except BaseException:
                    shutil.rmtree(run.path, ignore_errors=True)
                    raise
                return run
        except OSError as exc:
            raise NeuroclassError(f"--out '{out}': cannot create a run folder there ({exc.strerror or exc}); "
                                  "pass a folder you can write to") from None
        raise NeuroclassError(f"--out '{out}': 10,000 runs named {name}; pass another --out folder")

    def commit(self) -> Path:
        """Rename the complete partial folder to its final name, then remove its checkpoints and
        lock (leftovers of a commit cut short are swept by ``open``); returns the final path."""
        if self.final is None:
            raise RuntimeError(f"{self.path} is not a partial run folder")
        self.path.rename(self.final)
        self.path, self.final = self.final, None
        self._sweep()
        self._release()
        return self.path

    def _sweep(self) -> None:
        """Remove a finished run's training leftovers (checkpoint/ and .lock), where possible."""
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        try:
            self.file(LOCK_FILE).unlink(missing_ok=True)
        except OSError:  # a read-only run folder: the leftovers are harmless
            pass

    def discard(self) -> None:
        """Remove a partial folder (after a failure), and the --out folder that ``create`` made for
        it if nothing else is in it; a finished folder is never removed."""
        if self.final is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            if self._made_out is not None:
                with contextlib.suppress(OSError):  # not empty: another run's files are there
                    self._made_out.rmdir()
        self._release()

    def release(self) -> None:
        """Leave a partial folder as it is, resumable (after an interrupt), and unlock it."""
        self._release()

    def _claim(self) -> None:
        """Lock the partial folder for this process; NeuroclassError when another holds it or the
        lock file cannot be opened."""
        self._lock = lock_folder(self.path, LOCK_FILE)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def checkpoint_dir(self) -> Path:
        """The folder of the run's training checkpoints (made by the checkpoint writer)."""
        return self.path / CHECKPOINT_DIR

    def has_checkpoint(self) -> bool:
        """Whether a partial folder holds a checkpoint to resume from."""
        folder = self.checkpoint_dir
        return folder.is_dir() and any(p.name.startswith("ckpt-") for p in folder.iterdir())

    def write_resume_record(self, record: dict) -> None:
        """checkpoint/resume.json: what a resume needs besides a checkpoint (JSON values)."""
        self.checkpoint_dir.mkdir(exist_ok=True)
        write_text_atomic(self.checkpoint_dir / "resume.json", json.dumps(record, indent=2))

    def resume_record(self) -> dict:
        """checkpoint/resume.json ({} when absent: a run stopped before it was written)."""
        path = self.checkpoint_dir / "resume.json"
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise NeuroclassError(f"{path}: not valid JSON ({exc}); train the run again") from None

    @classmethod
    def reopen(cls, path: str | Path) -> "RunFolder":
        """An interrupted run to continue, locked for this process: ``path`` is its hidden
        ``.partial-<name>`` folder, or a folder of runs (``--out``), meaning its newest interrupted
        run. Raises NeuroclassError naming the folder when there is none to continue."""
        path = Path(path).expanduser()
        if not path.is_dir():
            raise NeuroclassError(f"--resume '{path}': no such folder; pass an interrupted run's "
                                  f"{PARTIAL}* folder or the --out folder that holds it")
        if not path.name.startswith(PARTIAL):
            if (path / "model.json").is_file():
                raise NeuroclassError(f"--resume '{path}': this run finished; there is nothing to resume")
            path = cls._newest_interrupted(path)
        if not (path / "config.yaml").is_file():
            raise NeuroclassError(f"--resume '{path}': no config.yaml (the run stopped before training "
                                  "started); train it again")
        run = cls(path, cls._free_name(path.parent, path.name[len(PARTIAL):]))
        run._claim()
        if not (path / "config.yaml").is_file():  # discarded by its own process just before the claim
            run._release()
            raise NeuroclassError(f"--resume '{path}': the run was removed meanwhile; train it again")
        return run

    @staticmethod
    def _free_name(out: Path, name: str) -> Path:
        """``out/name``, or ``name-2``, ... when a finished run took that name meanwhile."""
        for suffix in range(1, 10_000):
            final = out / (name if suffix == 1 else f"{name}-{suffix}")
            if not final.exists():
                return final
        raise NeuroclassError(f"--out '{out}': 10,000 runs named {name}; move some away")

    @classmethod
    def _newest_interrupted(cls, out: Path) -> Path:
        """The partial folder in ``out`` with the newest change that no process is training.
        NeuroclassError when there is none, naming the runs another process is training if any."""
        candidates, locked = [], []
        for folder in sorted(out.glob(f"{PARTIAL}*")):
            if not (folder / "config.yaml").is_file():
                continue  # stopped before training started
            if is_locked(folder, LOCK_FILE):
                locked.append(folder.name)  # being trained now
                continue
            try:
                changed = max(p.stat().st_mtime for p in (folder, folder / CHECKPOINT_DIR) if p.exists())
            except (FileNotFoundError, ValueError):  # removed meanwhile (a failed run discarded)
                continue
            candidates.append((changed, folder.name, folder))
        if not candidates and locked:
            runs = ", ".join(locked)
            raise NeuroclassError(f"--resume '{out}': {runs}: another process is training "
                                  f"{'it' if len(locked) == 1 else 'them'}; wait for it to end or stop it first")
        if not candidates:
            raise NeuroclassError(f"--resume '{out}': no interrupted run in this folder; pass an "
                                  f"interrupted run's {PARTIAL}* folder")
        return max(candidates)[2]

    @classmethod
    def open(cls, path: str | Path) -> "RunFolder":
        """A finished run folder; NeuroclassError when ``path`` is not one."""
        path = Path(path)
        if not path.is_dir():
            raise NeuroclassError(f"RUN '{path}': no such run folder; pass a folder made by 'neuroclass train'")
        if not (path / "model.json").is_file():
            raise NeuroclassError(f"{path}: no model.json; pass a run folder made by 'neuroclass train'")
        run = cls(path)
        if run.checkpoint_dir.exists() or run.file(LOCK_FILE).exists():  # a commit cut short
            run._sweep()
        return run

    def file(self, name: str) -> Path:
        return self.path / name

    def report_path(self, data: str | None = None, out: str | Path | None = None) -> Path:
        """Where a report's HTML goes: ``out`` (a file, or a folder to put the default name in),
        else the run folder; the default name is report.html, or report-<data>.html for an
        evaluation on other data, so that it never replaces the run's own. ``out`` names a folder
        when it is one, ends with a slash or has no suffix. report.json goes beside the HTML.

        >>> RunFolder("runs/x").report_path(), RunFolder("runs/x").report_path("blocks:n=200")
        (PosixPath('runs/x/report.html'), PosixPath('runs/x/report-blocks_n_200.html'))
        """
        name = f"report-{data_slug(data)}.html" if data else "report.html"
        if out is None:
            return self.path / name
        folder = Path(out).is_dir() or str(out).endswith(("/", "\\")) or not Path(out).suffix
        return Path(out) / name if folder else Path(out)

    # ------------------------------------------------------------------ writing
    def write_json(self, name: str, value: dict) -> None:
        write_text_atomic(self.file(name), json.dumps(value, indent=2))

    def write_config(self, cfg: Config) -> None:
        save_config(cfg, self.file("config.yaml"))

    def write_model(self, model: Classifier, meta: dict) -> None:
        save_model(self.path, model, meta)

    def write_preprocess(self, pipe: Pipeline) -> None:
        """preprocess.skops: a table run's preprocessing fitted on its training split."""
        save_preprocess(self.path, pipe)

    def write_history(self, history: list[dict]) -> None:
        write_text_atomic(self.file("metrics.csv"), history_csv(history))

    def write_data_issues(self, issues: DataIssues) -> None:
        """data_issues.json: what loading and splitting found (``DataIssues.to_json``)."""
        self.write_json("data_issues.json", issues.to_json())

    def write_split(self, indices: dict[str, np.ndarray], method: dict) -> None:
        record = {"sizes": {k: int(len(v)) for k, v in indices.items()}, **method}
        self.write_json("split.json", record)
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v, dtype=np.int64) for k, v in indices.items()})
        write_bytes_atomic(self.file("split.npz"), buf.getvalue())

    # ------------------------------------------------------------------ reading
    def read_json(self, name: str) -> dict:
        """A JSON file of the run as a dict; NeuroclassError naming the file when missing or bad."""
        path = self.file(name)
        if not path.is_file():
            raise NeuroclassError(f"{path}: missing; pass a complete run folder made by 'neuroclass train'")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise NeuroclassError(f"{path}: not valid JSON ({exc})") from None

    def config(self) -> Config:
        """config.yaml as a Config; NeuroclassError naming the file when it is missing or no longer
        valid (a run written by an older neuroclass with settings that are refused now)."""
        path = self.file("config.yaml")
        if not path.is_file():
            raise NeuroclassError(f"{path}: missing; pass a complete run folder made by 'neuroclass train'")
        try:
            return load_config(path)
        except NeuroclassError as exc:
            raise NeuroclassError(f"{path}: {exc} (the run's recorded config is refused by this "
                                  "neuroclass; it was written by an older one)") from None

    def weights(self) -> dict:
        """model.safetensors as a dict of CPU tensors; NeuroclassError naming the file when it is
        missing or unreadable."""
        return read_weights(self.path)

    def config_text(self) -> str:
        return self.file("config.yaml").read_text()

    def meta(self) -> dict:
        return read_metadata(self.path)

    def load_model(self) -> tuple[Classifier, dict]:
        return load_model(self.path)

    def preprocess(self) -> Pipeline:
        """The fitted table preprocessing (preprocess.skops; runs/preprocess_file.py)."""
        return load_preprocess(self.path)

    def metrics(self) -> dict:
        return self.read_json("metrics.json")

    def timing(self) -> dict:
        """timing.json; an older run's rates (``train_images_per_second``) under their new names."""
        return {TIMING_RENAMED.get(k, k): v for k, v in self.read_json("timing.json").items()}

    def environment(self) -> dict:
        return self.read_json("environment.json")

    def read_data_issues(self) -> DataIssues:
        """data_issues.json as a DataIssues; empty for a run folder written before the file existed."""
        if not self.file("data_issues.json").is_file():
            return DataIssues()
        return DataIssues.from_json(self.read_json("data_issues.json"))

    def split_record(self) -> dict:
        return self.read_json("split.json")

    def history(self) -> list[dict]:
        """metrics.csv rows with float values (None where empty); [] when the file is absent."""
        path = self.file("metrics.csv")
        if not path.is_file():
            return []
        with path.open(newline="") as fh:
            return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                    for row in csv.DictReader(fh)]

    def split_indices(self) -> dict[str, np.ndarray]:
        path = self.file("split.npz")
        if not path.is_file():
            raise NeuroclassError(f"{path}: missing; pass a complete run folder made by 'neuroclass train'")
        with np.load(path, allow_pickle=False) as split:
            return {name: split[name].astype(np.int64) for name in split.files}

    def load_data(self, quiet: bool = False) -> RunData:
        """The run's own data, checked against its record (runs/run_data.py ``load_run_data``)."""
        return load_run_data(self, quiet)
