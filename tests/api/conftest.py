"""Fixtures of the API tests beyond the suite-wide ones in ``tests/conftest.py``."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.study import service as study_service
from tests.clock import Clock
from tests.support.study import NOON


@pytest.fixture
def noon_clock(clock: Clock) -> Clock:
    """The app's clock, stopped at 2026-03-10 12:00 in Shanghai (the study tests)."""
    clock.now = NOON
    return clock


@pytest.fixture
async def rules(db: AsyncSession) -> None:
    """The default study rules (the migration seeds them; other tests may truncate tables)."""
    await study_service.ensure_default_rules(db)
