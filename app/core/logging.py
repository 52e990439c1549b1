"""JSON logs through structlog, with the request id bound per request.

Every request writes one access line, so the handler keeps the cost of a line low:
records skip what they would only look up to throw away (process id, thread, caller
frame), and access lines are written to stdout's buffer and flushed at most every
``FLUSH_INTERVAL_S`` (``APP_LOG_FLUSH_INTERVAL_S``) by a small thread, not with one
write per line: on a busy worker that write was a tenth of its CPU. Every other line
(startup, shutdown, warnings, errors) is flushed at once, and :func:`flush_logs` runs
when a process stops (the API's lifespan, the worker's exit), so a SIGTERM loses
nothing; a SIGKILL loses the access lines of the last interval at most.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import weakref
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

FLUSH_INTERVAL_S = 0.5
ACCESS_LOGGER = "app.request"  # the one high-volume logger (app/core/middleware.py)

# The switches the logging HOWTO ("Optimization") documents: nothing here prints these.
logging.logProcesses = False
logging.logThreads = False
logging.logMultiprocessing = False
logging._srcfile = None  # no caller frame lookup


class BufferedStreamHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that flushes warnings at once and other lines in batches."""

    def write_access(self, line: str) -> None:
        """An access line rendered by :func:`log_access`: buffered like the others."""
        self.acquire()
        try:
            self.stream.write(line + self.terminator)
        except Exception:
            return
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.acquire()
            try:
                self.stream.write(line + self.terminator)
                if record.levelno >= logging.WARNING or record.name != ACCESS_LOGGER:
                    self.stream.flush()
            finally:
                self.release()
        except Exception:
            self.handleError(record)


def flush_logs() -> None:
    """Write out every buffered line now (a process that is stopping calls this)."""
    for handler in list(_BUFFERED):
        try:
            handler.flush()
        except Exception:  # noqa: S112 - a stdout closed at exit must not stop the loop
            continue


def _flush_now_and_then() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_S)
        flush_logs()


_BUFFERED: weakref.WeakSet[BufferedStreamHandler] = weakref.WeakSet()
# The handler that writes JSON lines, when configured so (not the development console).
_JSON_HANDLER: BufferedStreamHandler | None = None
_ACCESS = logging.getLogger(ACCESS_LOGGER)
_FLUSHER = threading.Thread(target=_flush_now_and_then, name="log-flush", daemon=True)


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z


def _json_line(event: dict[str, Any], default: Any = None, **_: Any) -> str:
    """JSONRenderer's serializer: orjson, several times faster than the standard
    library on every access line. Values orjson refuses (integers beyond 64 bits) fall
    back to the standard library rather than lose the line."""
    try:
        return orjson.dumps(event, default=default, option=_JSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(event, default=default or str, ensure_ascii=False)


def configure_logging(
    level: str = "INFO", *, json: bool = True, flush_interval_s: float | None = None
) -> None:
    global FLUSH_INTERVAL_S
    if flush_interval_s is not None and flush_interval_s > 0:
        FLUSH_INTERVAL_S = flush_interval_s
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    root = logging.getLogger()
    # Idempotent: replace only our own handler, keep others (e.g. a test's capture).
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_branchlink", False)]
    global _JSON_HANDLER
    handler = BufferedStreamHandler(sys.stdout)
    _BUFFERED.add(handler)
    _JSON_HANDLER = handler if json else None
    if not _FLUSHER.is_alive():
        _FLUSHER.start()
    handler.setFormatter(formatter)
    handler._branchlink = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def log_access(method: str, route: str, status: int, duration_ms: float) -> None:
    """One request's access line, ``{"request_id", "event": "request", "method", "route",
    "status", "duration_ms", "level", "logger", "timestamp"}`` like every JSON line.

    Rendered here with orjson and handed to the JSON handler directly: through
    structlog's processors, a ``LogRecord`` and the formatter a line cost about 100 µs
    on a busy worker, a fifth of a whole request. With the console renderer
    (development) or the logger switched off it goes the ordinary way, or nowhere.
    """
    handler = _JSON_HANDLER
    if not _ACCESS.isEnabledFor(logging.INFO):
        return
    if handler is None:
        structlog.stdlib.get_logger(ACCESS_LOGGER).info(
            "request", method=method, route=route, status=status, duration_ms=duration_ms
        )
        return
    event = structlog.contextvars.get_contextvars()
    event["event"] = "request"
    event["method"] = method
    event["route"] = route
    event["status"] = status
    event["duration_ms"] = duration_ms
    event["level"] = "info"
    event["logger"] = ACCESS_LOGGER
    # Wall time as structlog's TimeStamper writes it (not the app's clock, which tests
    # move: a log line says when it was written).
    # (orjson writes the aware datetime as isoformat() would, with ``Z`` for +00:00.)
    event["timestamp"] = datetime.fromtimestamp(time.time(), UTC)
    handler.write_access(_json_line(event))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
