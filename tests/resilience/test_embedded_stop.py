"""Every way of stopping ``python -m app`` stops the embedded PostgreSQL it started; a
server left behind by a killed process is reused and stopped by the next one.

Real processes on their own data directory (no ``DATABASE_URL``), real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from tests.live import ROOT, free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The app's data directory; a server a failing test left running is stopped."""
    path = tmp_path / "data"
    yield path
    try:
        leftover = psutil.Process(postmaster(path))
    except (OSError, ValueError, IndexError, psutil.NoSuchProcess):
        return
    if "postgres" in leftover.name():
        leftover.terminate()
        leftover.wait(20)


@contextmanager
def app_process(data_dir: Path, command: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m app <command>`` with the embedded server under ``data_dir``, healthy."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "APP_DATABASE_URL")
    }
    env.update(
        APP_DATA_DIR=str(data_dir),
        APP_PORT=str(port),
        APP_ENV="dev",
        APP_WECHAT_SIMULATOR="true",
    )
    log_path = data_dir.parent / f"{data_dir.name}-{command}-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", command],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("app did not start:\n" + log_path.read_text())
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def postmaster(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def gone(pid: int, within_s: float = 20) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


def stop_by(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    process.send_signal(sig)
    return process.wait(60)


@pytest.mark.parametrize(
    ("command", "sig"),
    [("dev", signal.SIGTERM), ("dev", signal.SIGINT), ("serve", signal.SIGHUP)],
)
def test_a_signal_to_the_server_stops_the_embedded_postgres(
    data_dir: Path, command: str, sig: signal.Signals
) -> None:
    with app_process(data_dir, command) as process:
        server = postmaster(data_dir)
        assert psutil.pid_exists(server)
        code = stop_by(process, sig)
    assert code in (0, 130, 143), code  # done, Ctrl-C, SIGTERM (SIGHUP is taken as one)
    assert gone(server), f"PostgreSQL {server} still runs after {sig.name} to the app"
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def test_after_a_kill_the_next_start_reuses_the_server_and_stops_it(data_dir: Path) -> None:
    with app_process(data_dir, "serve") as first:
        server = postmaster(data_dir)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    # Nothing could stop it: the server outlives the killed process ...
    assert psutil.pid_exists(server)
    # ... the next start finds it, uses it, and stops it when it leaves.
    with app_process(data_dir, "serve") as second:
        assert postmaster(data_dir) == server
        stop_by(second, signal.SIGTERM)
    assert gone(server), "the server left by the killed process is still running"
