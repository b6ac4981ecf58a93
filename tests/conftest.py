"""Shared fixtures: tiny synthetic datasets, seeds, temporary run folders, a PostgreSQL server."""
from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from postgres import PostgresServer, find_bin_folder, missing_postgresql_message, running_postgresql

from neuroclass.config import load_config
from neuroclass.data.blocks import make_blocks


@pytest.fixture(autouse=True)
def _seed_and_isolated_cache(tmp_path_factory, monkeypatch):
    """Seeded RNGs, and decoded-image caches in a temp folder, never in the user's ~/.cache."""
    torch.manual_seed(0)
    np.random.seed(0)
    monkeypatch.setenv("NEUROCLASS_CACHE", str(tmp_path_factory.getbasetemp() / "image-cache"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_not_ignored():
    """Ctrl-C delivered as KeyboardInterrupt while the tests run, and so in the processes they
    start. A shell starts a background job (``cmd &``) with SIGINT ignored, which its children
    inherit, and neuroclass leaves an ignored SIGINT ignored (interrupts.py): the interrupt tests
    would then test nothing."""
    before = signal.getsignal(signal.SIGINT)
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def blocks_small():
    """64 RGB 16x16 images of coloured shapes, 4 colour classes: learnable in a second."""
    return make_blocks(n=64, size=16, task="colour", seed=0)


def quick_config(tmp_path, source="blocks:n=240,size=16", model="mlp", **extra):
    """A config that trains in about a second on the CPU."""
    overrides = [f"data.source={source}", f"model.name={model}", f"out={tmp_path / 'runs'}",
                 "train.epochs=3", "train.quiet=true", "train.batch_size=32"]
    if model == "mlp":
        overrides.append("model.options.hidden=[32]")
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(overrides=overrides)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One finished run folder on blocks (colour task), shared by predict/evaluate tests."""
    from neuroclass.pipeline import train as train_run

    out = tmp_path_factory.mktemp("shared-run")
    cfg = load_config(overrides=["data.source=blocks:n=400,size=16", "model.name=cnn",
                                 "model.options.channels=[8,16]", "model.options.convs_per_stage=1",
                                 "model.options.hidden=32", f"out={out}", "train.epochs=6",
                                 "train.quiet=true", "train.batch_size=32"])
    return train_run(cfg, report=False)


# The PostgreSQL fixtures live here, not in a tests/integration/conftest.py: the tests import
# helpers with `from conftest import ...`, and a second conftest.py would take that module name.
@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server (tests/postgres.py) on a free 127.0.0.1 port for the whole session, run
    as the ``postgres`` user when the tests run as root; started only when a test asks for it.
    No PostgreSQL installed: the test fails (never skips) with the command that installs it."""
    bin_folder = find_bin_folder()
    if bin_folder is None:
        pytest.fail(missing_postgresql_message(), pytrace=False)
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgresql(bin_folder))
        except RuntimeError as exc:
            pytest.fail(f"PostgreSQL did not start: {exc}", pytrace=False)
        yield server


@pytest.fixture
def postgresql_url(postgresql_server: PostgresServer) -> str:
    """``postgresql://neuroclass@127.0.0.1:PORT/DB``: a new, empty database for this test (trust
    authentication on loopback, no password)."""
    return postgresql_server.create_database(f"test_{uuid.uuid4().hex[:12]}")
