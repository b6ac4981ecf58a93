"""Where a hyperparameter search keeps its trials: an Optuna RDB storage (SQLite file or
PostgreSQL), with heartbeats so that the trial of a worker that died is failed and run again.

One search, many workers: every worker opens the same URL and study name and calls
``study.optimize``; the database hands out trials and records results (Optuna, "Easy
Parallelization", https://optuna.readthedocs.io/en/stable/tutorial/10_key_features/004_distributed.html).
Without a URL the study lives in ``study.db`` (SQLite) in the study folder: nothing to set up, one
machine.

Heartbeats (Optuna ``RDBStorage(heartbeat_interval=, grace_period=,
heartbeat_stale_trial_callback=)``; https://optuna.readthedocs.io/en/stable/reference/generated/optuna.storages.RDBStorage.html):
while ``study.optimize`` runs a trial, a thread writes the trial's heartbeat every
``heartbeat_seconds``. Before asking for its next trial, any worker fails the RUNNING trials whose
last heartbeat is older than ``grace_seconds`` (their worker was killed, lost its machine or its
network), and ``RetryHeartbeatStaleTrialCallback`` (Optuna's ``RetryFailedTrialCallback`` before
4.9) queues a copy of each with the same parameters, so that the search loses no trial. The copy
records the failed trial's number (``system_attrs["failed_trial"]``, ``["retry_history"]``).
Heartbeats are written only inside ``study.optimize``: an ask/tell loop gets no heartbeat.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     study = optuna.create_study(storage=open_storage(None, Path(folder)))
...     print((Path(folder) / STUDY_FILE).exists())
True
>>> masked_url("postgresql://tuner:s3cret@db.example:5432/search")
'postgresql://tuner:***@db.example:5432/search'
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from neuroclass.errors import NeuroclassError

STUDY_FILE = "study.db"  # the SQLite file of a study folder when no storage URL is given
HEARTBEAT_SECONDS = 10  # a running trial's heartbeat is written this often
# A trial whose last heartbeat is this old is failed and queued again: three missed heartbeats,
# so that a worker slowed down (busy cores, a slow database) is not taken for a dead one. A trial
# failed while its worker is in fact alive would run twice, and that worker stops with an error.
GRACE_SECONDS = 30
MAX_RETRY = 2  # a trial that kills its worker every time (out of memory, say) is not retried forever
CONNECT_TIMEOUT_SECONDS = 10  # an unreachable PostgreSQL host fails after this long, not minutes
SPACE_ATTR = "space"  # the study user attribute holding the search space, as JSON
SCHEMES = {"sqlite": "sqlite:///PATH/study.db", "postgresql": "postgresql://USER:PASSWORD@HOST:5432/DB"}
POSTGRESQL_DRIVER = "psycopg2"  # what the `postgresql` extra installs (psycopg2-binary)
# Workers that open a new database at the same moment race to create its tables: PostgreSQL's
# CREATE TABLE / CREATE TYPE checks, then creates, so all but one fail with "already exists"
# (SQLSTATE unique_violation in the catalog, duplicate_table or duplicate_object) once the first
# one commits. Those try again, and then find the tables made.
CREATE_ATTEMPTS = 5
_CREATED_BY_ANOTHER = ("23505", "42P07", "42710")

# Phrases of the database drivers' connection errors, and the fix each calls for.
_FIXES = (
    ("connection refused", "start the database server there, or correct the host and port"),
    ("could not translate host name", "correct the host name"),
    ("name or service not known", "correct the host name"),
    ("timeout expired", "check that the host can be reached from here (firewall, VPN) and the port"),
    ("password authentication failed", "correct the user name and password"),
    ("no password supplied", "add the password: postgresql://USER:PASSWORD@HOST:PORT/DB"),
    ('role "', "correct the user name, or create that user on the server"),
    ('database "', "create the database (createdb NAME) or correct its name"),
    ("unable to open database file", "check that the folder exists and can be written"),
)


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs.

    >>> masked_url("postgresql://u:pw@h/db"), masked_url("sqlite:///runs/s/study.db")
    ('postgresql://u:***@h/db', 'sqlite:///runs/s/study.db')
    >>> masked_url("not a url: u:pw@h")
    'not a url: u:***@h'
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        head, at, tail = url.rpartition("@")
        if not at or ":" not in head:
            return url
        return head.rsplit(":", 1)[0] + ":***@" + tail


def open_storage(url: str | None, study_folder: Path, *, heartbeat_seconds: int = HEARTBEAT_SECONDS,
                 grace_seconds: int = GRACE_SECONDS, max_retry: int = MAX_RETRY) -> optuna.storages.RDBStorage:
    """Open the storage of a study: ``url`` (``sqlite:///...`` or ``postgresql://...``), or, when
    None, the SQLite file ``study_folder/study.db`` (the folder is created). Tables are created on
    first use; the connection is tried at once.

    ``heartbeat_seconds`` and ``grace_seconds`` (whole seconds, > 0; Optuna's heartbeat takes
    integers) and ``max_retry`` (>= 0) set the dead-worker detection described in the module
    docstring. A ``postgresql://`` URL without a driver uses psycopg2 (``pip install
    'neuroclass[postgresql]'``); ``postgresql+psycopg://`` picks psycopg 3.

    Raises NeuroclassError (one line, password masked, with the fix) when the URL cannot be parsed,
    names a database other than SQLite and PostgreSQL, needs a driver that is not installed, or
    the database cannot be reached (refused, unknown host, wrong password, no such database;
    PostgreSQL gives up after CONNECT_TIMEOUT_SECONDS); ValueError for settings out of range.

    >>> open_storage("postgres://tuner:s3cret@db.example/search", Path("runs/search"))
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: storage 'postgres://tuner:***@db.example/search': write postgresql:// (not postgres://)
    """
    if min(heartbeat_seconds, grace_seconds) <= 0 or max_retry < 0:
        raise ValueError(f"heartbeat_seconds and grace_seconds must be > 0 and max_retry >= 0; got "
                         f"{heartbeat_seconds}, {grace_seconds}, {max_retry}")
    if url is None:
        try:
            study_folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NeuroclassError(f"study folder '{study_folder}': cannot create it "
                                  f"({exc.strerror or exc}); choose a folder you can write") from None
        address = URL.create("sqlite", database=str((study_folder / STUDY_FILE).resolve()))
    else:
        address = _parse(url)
    engine_kwargs: dict[str, Any] = {}
    if address.get_backend_name() == "postgresql":
        # pool_pre_ping: a connection left idle during a long trial may have been closed by the
        # server or the network; it is tested and replaced before use
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                         "pool_pre_ping": True}
    shown = masked_url(url) if url is not None else str(study_folder / STUDY_FILE)
    with warnings.catch_warnings():
        # heartbeats and the retry callback are marked experimental in Optuna; the user can do
        # nothing about that warning
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        try:
            return _tables_made(lambda: optuna.storages.RDBStorage(
                address.render_as_string(hide_password=False), engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_seconds, grace_period=grace_seconds,
                heartbeat_stale_trial_callback=retry))
        except ImportError as exc:
            module = getattr(exc.__cause__, "name", None) or address.drivername
            fix = ("pip install 'neuroclass[postgresql]'" if module == POSTGRESQL_DRIVER else
                   f"pip install {module}, or write postgresql:// to use {POSTGRESQL_DRIVER}")
            raise NeuroclassError(f"storage '{shown}': the database driver {module} is not "
                                  f"installed; {fix}") from None
        except DBAPIError as exc:
            message = _connection_message(shown, exc, address.password)
            if address.get_backend_name() == "sqlite" and "unable to open database file" in message:
                message = _sqlite_message(shown, address.database or "")
            raise NeuroclassError(message) from None


def _tables_made(open_rdb: Callable[[], optuna.storages.RDBStorage]) -> optuna.storages.RDBStorage:
    """``open_rdb()`` (which creates the tables that are missing), tried again, up to
    CREATE_ATTEMPTS times in all, while it fails because another worker created a table at the
    same moment. Raises what the last attempt raises."""
    for _ in range(CREATE_ATTEMPTS - 1):
        try:
            return open_rdb()
        except DBAPIError as exc:
            if not _created_by_another(exc):
                raise
    return open_rdb()


def _created_by_another(exc: DBAPIError) -> bool:
    """Whether ``exc`` says that a table or type being created exists already: another worker
    opening the same new database created it at the same moment (SQLSTATE from psycopg2's
    ``pgcode`` or psycopg 3's ``sqlstate``)."""
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return code in _CREATED_BY_ANOTHER


def _parse(url: str) -> URL:
    """The SQLAlchemy URL of a storage URL, checked: a known scheme; PostgreSQL with an explicit
    driver (psycopg2 unless one is named). Raises NeuroclassError naming the accepted forms."""
    forms = " or ".join(SCHEMES.values())
    try:
        address = make_url(url)
    except ArgumentError:
        raise NeuroclassError(f"storage '{masked_url(url)}' is not a database URL; use {forms}") from None
    backend = address.get_backend_name()
    if backend == "postgres":
        raise NeuroclassError(f"storage '{masked_url(url)}': write postgresql:// (not postgres://)")
    if backend not in SCHEMES:
        raise NeuroclassError(f"storage '{masked_url(url)}': '{backend}' databases are not supported; "
                              f"use {forms}")
    if backend == "postgresql" and "+" not in address.drivername:
        address = address.set(drivername=f"postgresql+{POSTGRESQL_DRIVER}")
    return address


def _connection_message(shown: str, exc: DBAPIError, password: str | None) -> str:
    """One line: the storage, the driver's first line of complaint (password hidden), the fix."""
    detail = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    if password:
        detail = detail.replace(password, "***")
    lowered = detail.lower()
    fix = next((fix for phrase, fix in _FIXES if phrase in lowered),
               "check the URL and that the database server is running")
    return f"storage '{shown}': cannot connect ({detail}); {fix}"


def _sqlite_message(shown: str, database: str) -> str:
    """One line for a SQLite file that cannot be opened: the path SQLite tried (a relative one from
    the current folder: ``sqlite:///tmp/s.db`` has three slashes, so it names ``tmp/s.db``), what
    is wrong with its folder, and the fix (four slashes for an absolute path).

    >>> _sqlite_message("sqlite:///no/such/s.db", "no/such/s.db").split("; ")[1]
    "SQLite tried 'no/such/s.db' (relative to the current folder), whose folder 'no/such' does not exist"
    """
    path = Path(database)
    tried = f"SQLite tried '{path}'" + ("" if path.is_absolute() else " (relative to the current folder)")
    if not path.parent.is_dir():
        problem, fix = f"whose folder '{path.parent}' does not exist", "create that folder"
    else:
        problem, fix = "which cannot be opened", f"check that '{path}' is a file in a folder you can write"
    if not path.is_absolute():
        fix = f"for the absolute path '/{path.as_posix()}' write four slashes: sqlite:////{path.as_posix()}; or {fix}"
    return f"storage '{shown}': cannot open the SQLite file; {tried}, {problem}; {fix}"


def stored_space(study: optuna.Study) -> dict[str, Any] | None:
    """The search space recorded in ``study`` (user attribute ``"space"``, JSON), None if none is."""
    text = study.user_attrs.get(SPACE_ATTR)
    return None if text is None else json.loads(text)


def check_study_space(study: optuna.Study, space: Mapping[str, Any]) -> None:
    """Record ``space`` (JSON-serializable: the search space as plain data) in a study that has
    none; raise NeuroclassError when the study was created with another space, naming the keys
    that differ. Workers joining a study thereby check that they search the same space.

    Two workers that start a new study at the same moment with different spaces both pass (the
    last one's space is recorded); the check is for studies that already exist.

    >>> study = optuna.create_study(study_name="s")
    >>> check_study_space(study, {"lr": [0.001, 0.1]})
    >>> check_study_space(study, {"lr": [0.001, 0.1]})
    >>> check_study_space(study, {"lr": [0.01, 1.0], "epochs": [5, 20]})
    Traceback (most recent call last):
    neuroclass.errors.NeuroclassError: study 's' was created with another search space (differs in: epochs, lr); use the same search space, or another study name for this one
    """
    wanted = json.loads(json.dumps(space, sort_keys=True))
    recorded = stored_space(study)
    if recorded is None:
        study.set_user_attr(SPACE_ATTR, json.dumps(wanted, sort_keys=True))
        return
    if recorded != wanted:
        keys = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        raise NeuroclassError(f"study '{study.study_name}' was created with another search space "
                              f"(differs in: {', '.join(keys)}); use the same search space, or "
                              "another study name for this one")
