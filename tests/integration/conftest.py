"""Fixtures of the integration tests: a real PostgreSQL server (tests/postgres.py).

Here rather than in tests/conftest.py: only integration tests (marked slow) use a database server,
so the unit tests neither see the fixture nor import its module. The server starts once a session
(about a second) and each test gets a database of its own.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from postgres import PostgresServer, find_bin_folder, missing_postgresql_message, running_postgresql


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a free 127.0.0.1 port for the whole session, run as the ``postgres``
    user when the tests run as root. No PostgreSQL installed: the test fails (never skips) with
    the command that installs it."""
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
