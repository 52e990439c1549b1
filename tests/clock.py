"""The test handle on the app's one clock (``app.core.clock``), given by the ``clock``
fixture: tests set and move time, they never sleep to wait for it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from app.core import clock as app_clock


class Clock:
    """``now`` reads the app's clock; setting it stops the clock at that instant,
    ``advance`` moves it forward (stopped or running)."""

    @property
    def now(self) -> datetime:
        return app_clock.now()

    @now.setter
    def now(self, moment: datetime) -> None:
        app_clock.pin(moment)

    def advance(self, **delta: float) -> datetime:
        return app_clock.advance(timedelta(**delta))

    def set_day(self, day: date, hour_shanghai: int = 12) -> None:
        """Stop the clock at ``hour_shanghai`` o'clock of ``day`` in Asia/Shanghai."""
        self.now = datetime(day.year, day.month, day.day, tzinfo=app_clock.SHANGHAI).replace(
            hour=hour_shanghai
        )

    def today(self) -> date:
        return app_clock.today()

    @staticmethod
    def reset() -> None:
        app_clock.pin(None)
