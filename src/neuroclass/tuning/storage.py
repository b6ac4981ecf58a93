"""Placeholder: the SQLite default storage (replaced by the storage module with PostgreSQL support)."""
from __future__ import annotations

from pathlib import Path

import optuna


def open_storage(url: str | None, study_folder: Path):
    return optuna.storages.RDBStorage(url or f"sqlite:///{Path(study_folder) / 'study.db'}",
                                      heartbeat_interval=10, grace_period=30,
                                      failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=3))
