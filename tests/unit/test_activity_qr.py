"""The rotating QR token: 30-second steps, current and previous step only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app.activity import qr

SECRET = "unit-test-qr-secret"
T0 = datetime(2026, 7, 1, 1, 0, 0, tzinfo=UTC)  # a step boundary (Unix time % 30 == 0)


def test_steps_are_thirty_seconds_and_expire_at_the_boundary() -> None:
    step = qr.step_of(T0)
    assert int(T0.timestamp()) % 30 == 0
    assert qr.step_of(T0 + timedelta(seconds=29.9)) == step
    assert qr.step_of(T0 + timedelta(seconds=30)) == step + 1
    assert qr.step_expires_at(step) == T0 + timedelta(seconds=30)


def test_token_is_short_url_safe_and_bound_to_activity_step_and_secret() -> None:
    step = qr.step_of(T0)
    token = qr.token_for(SECRET, 42, step)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token)
    assert token == qr.token_for(SECRET, 42, step)
    assert token != qr.token_for(SECRET, 43, step)
    assert token != qr.token_for(SECRET, 42, step + 1)
    assert token != qr.token_for("other-secret", 42, step)


def test_current_and_previous_step_accepted_older_and_future_refused() -> None:
    step = qr.step_of(T0)
    now = T0 + timedelta(seconds=5)
    assert qr.verify(SECRET, 42, qr.token_for(SECRET, 42, step), now)
    assert qr.verify(SECRET, 42, qr.token_for(SECRET, 42, step - 1), now)
    assert not qr.verify(SECRET, 42, qr.token_for(SECRET, 42, step - 2), now)
    assert not qr.verify(SECRET, 42, qr.token_for(SECRET, 42, step + 1), now)
    assert not qr.verify(SECRET, 7, qr.token_for(SECRET, 42, step), now)
    assert not qr.verify(SECRET, 42, "", now)


def test_a_shown_code_works_between_30_and_60_seconds() -> None:
    step = qr.step_of(T0)
    token = qr.token_for(SECRET, 42, step)  # shown from T0 to T0+30s
    assert qr.verify(SECRET, 42, token, T0 + timedelta(seconds=59))
    assert not qr.verify(SECRET, 42, token, T0 + timedelta(seconds=60))
