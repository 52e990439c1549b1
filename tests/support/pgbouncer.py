"""A real PgBouncer (Debian's 1.18) in transaction mode in front of the test's PostgreSQL.

``pytest --via-pgbouncer`` runs the chosen tests with the app's pools behind it
(``APP_DB_PGBOUNCER``); ``make test-pgbouncer`` runs the slice CI runs (logins, check-ins,
transitions, the outbox worker). Without the ``pgbouncer`` binary those tests are skipped
with a message saying so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlunparse

from app.core.config import Settings
from tests.live import end_process, free_port

BINARY_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")
# The process id and log file behind each URL :func:`pgbouncer` handed out (for CPU
# measurements, and to show PgBouncer's side of a failure while it runs).
PIDS: dict[str, int] = {}
LOGS: dict[str, Path] = {}


def binary() -> str | None:
    for candidate in BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _run_as() -> list[str]:
    """PgBouncer refuses to run as root: it then switches to the embedded server's user."""
    if os.geteuid() != 0:
        return []
    for user in ("embedded_postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    return []


def server_connect_query(settings: Settings) -> str:
    """What the app sends as startup parameters when it talks to PostgreSQL itself and
    PgBouncer refuses: set on each server connection PgBouncer opens."""
    return (
        f"SET statement_timeout = {settings.db_statement_timeout_ms}; "
        "SET idle_in_transaction_session_timeout = 60000"
    )


@contextmanager
def pgbouncer(url: str, settings: Settings, *, pool_size: int = 8) -> Iterator[str]:
    """Start PgBouncer in transaction mode for the server of ``url``; yield ``url`` with
    its host and port replaced by PgBouncer's."""
    exe = binary()
    if exe is None:
        raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
    parts = urlparse(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = query.get("port", [str(parts.port or 5432)])[0]
    user = parts.username or "postgres"
    listen = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="branchlink-pgbouncer-"))
    workdir.chmod(0o755)
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={host} port={port} user={user} "
        f"connect_query='{server_connect_query(settings)}'\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {listen}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {workdir / 'users.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 500\n"
        "server_reset_query =\n"
        f"admin_users = {user}\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o644)
    log_path = workdir / "pgbouncer.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [exe, *_run_as(), str(workdir / "pgbouncer.ini")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", listen)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("pgbouncer did not start:\n" + log_path.read_text())
            time.sleep(0.05)
        netloc = f"{user}@127.0.0.1:{listen}"
        bouncer_url = urlunparse(parts._replace(netloc=netloc, query=""))
        PIDS[bouncer_url] = process.pid
        LOGS[bouncer_url] = log_path
        yield bouncer_url
    finally:
        end_process(process, 5)
        shutil.rmtree(workdir, ignore_errors=True)


def behind(settings: Settings, bouncer_url: str) -> Settings:
    """``settings`` with the pools through PgBouncer and LISTEN straight to the server."""
    return settings.model_copy(
        update={
            "database_url": bouncer_url,
            "database_direct_url": settings.database_url,
            "db_pgbouncer": True,
        }
    )
