"""The access line, rendered without structlog's chain, says what a structlog line says."""

from __future__ import annotations

import io
import json
import logging

import structlog

from app.core import logging as app_logging


def _handler() -> logging.StreamHandler[io.StringIO]:
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_branchlink", False))
    assert isinstance(handler, logging.StreamHandler)
    return handler


def test_access_line_has_the_fields_of_a_structlog_line() -> None:
    app_logging.configure_logging(json=True)
    handler = _handler()
    original, handler.stream = handler.stream, io.StringIO()
    try:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id="req-1")
        structlog.stdlib.get_logger("app.request").info(
            "request", method="GET", route="/api/v1/me", status=200, duration_ms=1.5
        )
        app_logging.log_access("GET", "/api/v1/me", 200, 1.5)
        first, second = (json.loads(line) for line in handler.stream.getvalue().splitlines())
    finally:
        handler.stream = original
        structlog.contextvars.clear_contextvars()
    assert first.keys() == second.keys()
    first.pop("timestamp"), second.pop("timestamp")
    assert (
        first
        == second
        == {
            "request_id": "req-1",
            "event": "request",
            "method": "GET",
            "route": "/api/v1/me",
            "status": 200,
            "duration_ms": 1.5,
            "level": "info",
            "logger": "app.request",
        }
    )


def test_access_line_respects_the_level() -> None:
    app_logging.configure_logging(level="WARNING", json=True)
    handler = _handler()
    original, handler.stream = handler.stream, io.StringIO()
    try:
        app_logging.log_access("GET", "/api/v1/me", 200, 1.5)
        assert handler.stream.getvalue() == ""
    finally:
        handler.stream = original
        app_logging.configure_logging(json=True)
