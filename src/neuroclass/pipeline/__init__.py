"""The one training pipeline: prepare -> build -> fit -> finalize, then the run folder.

Every caller trains through these steps: the CLI and ``neuroclass.train`` (``train``, which writes
a run folder and its report; ``resume``, which continues an interrupted one), the scikit-learn
estimator (``estimator.train_in_memory``, no folder) and ``neuroclass bench`` (``prepare`` and ``build``).
Process-wide state that a run changes (torch's thread count, its global random generator) is
restored when the run ends.

A run folder's training writes checkpoints (training/checkpoint.py) into its hidden partial folder,
which holds the run's config.yaml from the start. A stop request (training.callbacks.StopRequest,
set by the CLI's signal handlers) ends training after the current step with a checkpoint and raises
RunInterrupted; ``resume`` then continues from the newest checkpoint with the recorded config and
the time budget that was left. A run with no checkpoint to resume from (the glass-box network's
loop writes none) is finished with the weights it has instead, and RunInterrupted says so
(``finished``). A run that fails after its first checkpoint keeps its partial folder
for a resume, unless training diverged.

Example::

    result = train(load_config(overrides=["data.source=digits", "model.name=mlp", "train.epochs=3"]))
    result.metrics["accuracy"]
    # -> 0.96...

The steps (``prepare``, ``build``, ``fit``, ``finalize``) live in pipeline/steps.py; training into a
run folder (``train``, ``resume``, ``write_run``) in pipeline/run.py.
"""
from neuroclass.errors import RunInterrupted, StoppedBeforeCheckpoint
from neuroclass.pipeline.run import resume, train, write_run
from neuroclass.pipeline.steps import (MODEL_INPUT_KEYS, BeforeRename, Finished, Prepared, RunResult, build,
                                       finalize, fit, prepare, process_state)

__all__ = ["MODEL_INPUT_KEYS", "BeforeRename", "Finished", "Prepared", "RunInterrupted", "RunResult",
           "StoppedBeforeCheckpoint", "build", "finalize", "fit", "prepare", "process_state", "resume",
           "train", "write_run"]
