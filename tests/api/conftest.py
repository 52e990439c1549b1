"""Fixtures of the API tests beyond the suite-wide ones in ``tests/conftest.py``.

``clock`` here is the study clock; modules with a clock of their own (mobility) define
a fixture of that name, which takes precedence in them.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.study import service as study_service
from tests.support.study import NOON, Clock


@pytest.fixture(name="clock")
def clock_fixture(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(NOON)
    monkeypatch.setattr(study_service, "utcnow", fake)
    return fake


@pytest.fixture(name="rules")
async def rules_fixture(db: AsyncSession) -> None:
    """The default rules (the migration seeds them; other tests may truncate tables)."""
    await study_service.ensure_default_rules(db)
