"""Storage URLs of the search checked before any connection: masked passwords, unsupported and
malformed URLs, the SQLite default, the recorded search space (no database server needed)."""
from __future__ import annotations

import optuna
import pytest

from neuroclass.errors import NeuroclassError
from neuroclass.tuning.storage import STUDY_FILE, check_study_space, masked_url, open_storage, stored_space


@pytest.mark.parametrize("url, shown", [
    ("postgresql://tuner:s3cret@db:5432/search", "postgresql://tuner:***@db:5432/search"),
    ("postgresql+psycopg2://tuner:s3cret@db/search", "postgresql+psycopg2://tuner:***@db/search"),
    ("postgresql://tuner@db/search", "postgresql://tuner@db/search"),
    ("sqlite:///runs/study.db", "sqlite:///runs/study.db"),
    ("nonsense tuner:s3cret@db", "nonsense tuner:***@db"),
])
def test_masked_url_hides_the_password(url, shown):
    assert masked_url(url) == shown


@pytest.mark.parametrize("url, expected", [
    ("mysql://u:s3cret@db/search", "'mysql' databases are not supported; use sqlite:///"),
    ("postgres://u:s3cret@db/search", r"write postgresql:// \(not postgres://\)"),
    ("just words u:s3cret@db", "is not a database URL; use sqlite:///"),
    ("sqlite:////no/such/folder/study.db", "cannot open the SQLite file; .* folder '/no/such/folder' does not exist"),
])
def test_bad_urls_fail_in_one_line_without_the_password(url, expected, tmp_path):
    with pytest.raises(NeuroclassError, match=expected) as caught:
        open_storage(url, tmp_path)
    assert "s3cret" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("settings", [{"heartbeat_seconds": 0}, {"grace_seconds": -1}, {"max_retry": -1}])
def test_heartbeat_settings_are_checked(settings, tmp_path):
    with pytest.raises(ValueError, match="heartbeat_seconds and grace_seconds"):
        open_storage(None, tmp_path, **settings)


def test_default_storage_is_study_db_with_heartbeats(tmp_path):
    storage = open_storage(None, tmp_path / "new" / "study", heartbeat_seconds=7, grace_seconds=21)
    assert (tmp_path / "new" / "study" / STUDY_FILE).is_file()
    assert storage.get_heartbeat_interval() == 7
    assert isinstance(storage.get_heartbeat_stale_trial_callback(),
                      optuna.storages.RetryHeartbeatStaleTrialCallback)


def test_study_space_recorded_once_then_compared():
    study = optuna.create_study()
    assert stored_space(study) is None
    check_study_space(study, {"lr": {"low": 1e-4, "high": 0.1, "log": True}, "epochs": [5, 10]})
    # key order and tuples versus lists do not matter: the space is compared as JSON
    check_study_space(study, {"epochs": (5, 10), "lr": {"log": True, "high": 0.1, "low": 1e-4}})
    assert stored_space(study)["epochs"] == [5, 10]
    with pytest.raises(NeuroclassError, match=r"differs in: lr\)") as caught:
        check_study_space(study, {"lr": {"low": 1e-3, "high": 0.1, "log": True}, "epochs": [5, 10]})
    assert f"study '{study.study_name}'" in str(caught.value)
