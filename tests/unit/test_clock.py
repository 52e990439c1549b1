"""The one clock: offsets (dev/test only), the Asia/Shanghai day, the test handle."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.core import clock
from app.core.config import Settings
from tests.clock import Clock


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3d", 3 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("30s", 30),
        ("3600", 3600),
        (" 1.5D ", 129600),
        ("", 0),
    ],
)
def test_parse_offset(text: str, seconds: int) -> None:
    assert clock.parse_offset(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["-3d", "3 days", "3w", "d", "1d2", "3600s1"])
def test_parse_offset_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="3d"):
        clock.parse_offset(text)


def test_settings_read_the_offset_in_dev_and_test() -> None:
    assert Settings(env="dev", clock_offset="3d").clock_offset == timedelta(days=3)
    assert Settings(env="test", clock_offset=7200).clock_offset == timedelta(hours=2)
    assert Settings(env="dev").clock_offset == timedelta(0)
    with pytest.raises(ValidationError):
        Settings(env="dev", clock_offset="-1d")


def test_prod_refuses_an_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_CLOCK_OFFSET", "3d")
    with pytest.raises(ValidationError, match="APP_CLOCK_OFFSET"):
        Settings(env="prod")


def test_offset_moves_now_and_today_forward(clock: Clock) -> None:
    clock.now = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)  # 23:59 in Shanghai
    assert clock.today() == date(2026, 3, 1)
    clock.advance(minutes=1)
    assert clock.today() == date(2026, 3, 2)
    assert clock.now == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_running_clock_with_an_offset_is_ahead_of_real_time(clock: Clock) -> None:
    before = datetime.now(UTC)
    clock.advance(days=3)
    moved = clock.now - before
    assert timedelta(days=3) <= moved < timedelta(days=3, seconds=5)
    with pytest.raises(ValueError):
        clock.advance(days=-4)


def test_set_day_is_a_shanghai_hour(clock: Clock) -> None:
    clock.set_day(date(2026, 3, 2), hour_shanghai=0)
    assert clock.now == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert clock.today() == date(2026, 3, 2)


def test_nothing_in_app_reads_the_time_around_the_clock() -> None:
    """One clock: ``datetime.now()``, ``date.today()`` and a zone of their own appear only
    in app/core/clock.py (security windows count epoch seconds with ``time.time``)."""
    import ast

    app_dir = Path(__file__).resolve().parent.parent.parent / "app"
    offenders = []
    for path in sorted(app_dir.rglob("*.py")):
        if path == app_dir / "core" / "clock.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = (
                f"{getattr(func.value, 'id', '?')}.{func.attr}"
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            if called in {"datetime.now", "datetime.utcnow", "date.today", "ZoneInfo"}:
                offenders.append(f"{path.relative_to(app_dir.parent)}:{node.lineno} {called}")
    assert offenders == [], "use app.core.clock instead:\n" + "\n".join(offenders)


def test_the_cli_flag_is_refused_in_prod_before_anything_starts(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env.update(APP_ENV="prod", APP_DATA_DIR=str(tmp_path), DATABASE_URL="postgresql://unused/x")
    done = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--clock-offset", "3d"],
        cwd=Path(__file__).resolve().parent.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "APP_CLOCK_OFFSET (the clock cannot be moved in prod)" in done.stderr
    assert not any(tmp_path.iterdir())  # no server, no data
