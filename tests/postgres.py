"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temporary folder, ``pg_ctl
start`` on a free loopback port, a database per test, everything stopped and removed at the end.

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the server's commands
run as the unprivileged ``postgres`` user through ``runuser -u postgres --`` and the temporary
folder belongs to that user. The client commands (``createdb``) connect over TCP and run as the
caller. Authentication is ``trust`` on 127.0.0.1 only: the server listens on nothing else and
lives only as long as the test session.

A missing installation is an error, never a skip: the message says how to install it.

>>> missing_postgresql_message().startswith("PostgreSQL is not installed")
True
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SEARCHED = "/usr/lib/postgresql/*/bin"  # Debian and Ubuntu: one folder per major version
SUPERUSER = "neuroclass"  # the database superuser initdb creates; not an operating-system user
UNPRIVILEGED = "postgres"  # the operating-system user that runs the server when we are root
START_TIMEOUT_SECONDS = 60  # pg_ctl -w waits at most this long for the server to accept connections


def missing_postgresql_message() -> str:
    """The failure message when no PostgreSQL server programs are found (no skip: a skipped test
    would hide a missing feature)."""
    return (f"PostgreSQL is not installed: no initdb and pg_ctl in {SEARCHED} or on PATH; install "
            "it with `apt-get install -y postgresql` (Debian/Ubuntu; .ci/run does this) or your "
            "system's postgresql server package")


def find_bin_folder() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``createdb``: the newest version under
    /usr/lib/postgresql, else the one on PATH; None when PostgreSQL is not installed."""
    def version(folder: str) -> int:
        name = Path(folder).parent.name
        return int(name) if name.isdigit() else -1

    for folder in sorted(glob.glob(SEARCHED), key=version, reverse=True):
        if all(Path(folder, tool).is_file() for tool in ("initdb", "pg_ctl", "createdb")):
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl") and shutil.which("createdb"):
        return Path(initdb).parent
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class PostgresServer:
    """A running server: its programs, data folder and port; ``url(db)`` names a database on it."""

    bin_folder: Path
    folder: Path
    port: int

    def url(self, database: str) -> str:
        """``postgresql://neuroclass@127.0.0.1:PORT/DATABASE`` (trust authentication, no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL. Raises CalledProcessError with the
        command's output when ``createdb`` fails."""
        _run([str(self.bin_folder / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
              "-U", SUPERUSER, name], cwd=self.folder, as_server=False)
        return self.url(name)


def _server_user() -> str | None:
    """The user the server's programs run as: ``postgres`` when we are root, else ourselves (None)."""
    return UNPRIVILEGED if os.geteuid() == 0 else None


def _run(command: list[str], cwd: Path, as_server: bool) -> str:
    """Run ``command`` (as the server's user when ``as_server``), returning its output; a failure
    raises RuntimeError with the command and its output."""
    user = _server_user() if as_server else None
    full = ["runuser", "-u", user, "--", *command] if user else command
    done = subprocess.run(full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=START_TIMEOUT_SECONDS + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(full)} failed ({done.returncode}):\n{done.stdout}")
    return done.stdout


def _make_folder() -> Path:
    """A fresh temporary folder the server's user owns. Under the system's temp folder, not
    pytest's tmp_path: pytest's base folder is readable by its owner only, so the ``postgres``
    user could not reach a folder inside it."""
    folder = Path(tempfile.mkdtemp(prefix="neuroclass-pg-"))
    user = _server_user()
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            shutil.rmtree(folder)
            raise RuntimeError(f"running as root, but there is no '{user}' user to run PostgreSQL "
                               "as (the Debian package postgresql creates it)") from None
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


@contextlib.contextmanager
def running_postgresql(bin_folder: Path) -> Iterator[PostgresServer]:
    """Start a server from ``bin_folder`` on a free loopback port; stop it and remove its folder on
    exit. Raises RuntimeError with the server's log when it does not start.

    Durability settings are off (fsync, full-page writes): the data lives for one test session.
    """
    folder = _make_folder()
    data, log = folder / "data", folder / "server.log"
    try:
        _run([str(bin_folder / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
              "--encoding=UTF8", "--locale=C", "--no-sync"], cwd=folder, as_server=True)
        port = free_port()
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off")
        try:
            _run([str(bin_folder / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                  "-t", str(START_TIMEOUT_SECONDS), "-o", options, "start"], cwd=folder, as_server=True)
        except RuntimeError as error:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{error}\nserver log:\n{tail}") from None
        try:
            yield PostgresServer(bin_folder=bin_folder, folder=folder, port=port)
        finally:
            _run([str(bin_folder / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                 cwd=folder, as_server=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
