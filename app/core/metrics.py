"""Prometheus plumbing shared by the API and the worker.

* **Bounded labels.** A request's ``method`` label is one of the HTTP methods the API
  knows, anything else is ``other``; its ``route`` label is the OpenAPI path of the
  route that answered (``/api/v1/orgs/{org_id}``), or ``unmatched``. However many
  methods and paths a scanner sends, the series stay a fixed, small set.
* **Counting never undoes work.** :func:`record` runs one metric update and swallows
  (and logs once per metric) whatever it raises: a missing multiprocess directory or a
  full disk costs a sample, never a request or a delivered message.
* **Processes.** ``python -m app serve`` with several uvicorn workers keeps the samples
  in ``PROMETHEUS_MULTIPROC_DIR`` (prepared by :func:`prepare_multiprocess`, set to
  ``APP_DATA_DIR/prometheus`` when unset); a scrape adds up the workers' files, and the
  live gauges of workers that died are removed first (:func:`reap_dead_processes`).
  Every other command, the worker among them, is one process and keeps its samples in
  memory (:func:`use_single_process`): it needs no directory at all.

prometheus_client reads ``PROMETHEUS_MULTIPROC_DIR`` once, when it is first imported,
so this module imports it only inside functions: the CLI calls the two ``prepare``
functions before anything that defines a metric is imported.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = structlog.stdlib.get_logger("app.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


def route_paths(routes: Iterable[Any]) -> dict[int, str]:
    """Route object id -> its OpenAPI path, for every route of the app's included routers.

    FastAPI puts the route *as its router declared it* into ``scope["route"]``, whose
    ``path`` lacks the prefixes it was included under (``/api/v1``, a parent router's);
    the included router knows the full path of each.
    """
    paths: dict[int, str] = {}
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is None:
            continue
        for context in contexts():
            path = getattr(context, "path_format", None)
            if isinstance(path, str):
                paths.setdefault(id(context.original_route), path)
    return paths


def route_label(route: Any, paths: Mapping[int, str]) -> str:
    """The OpenAPI path of the matched route (path convertors stripped), or ``unmatched``."""
    if route is None:
        return UNMATCHED_ROUTE
    path = paths.get(id(route)) or getattr(route, "path_format", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


# -- counting safely ----------------------------------------------------------------------

_FAILED: set[str] = set()


def record(name: str, update: Callable[[], object]) -> None:
    """Run one metric update; a failure is logged (once per metric) and otherwise ignored."""
    try:
        update()
    except Exception as error:
        if name not in _FAILED:
            _FAILED.add(name)
            log.warning("metric not recorded", metric=name, error=f"{type(error).__name__}")


# -- processes ----------------------------------------------------------------------------


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess(data_dir: Path, workers: int) -> Path | None:
    """Before uvicorn starts its workers: a fresh, existing directory for their samples.

    Uses ``PROMETHEUS_MULTIPROC_DIR`` when set, else ``data_dir/prometheus`` when there
    are several workers; one serving instance per directory (it is emptied here).
    """
    path = multiprocess_dir()
    if path is None and workers > 1:
        path = data_dir / "prometheus"
    if path is None:
        return None
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def use_single_process() -> None:
    """A command that is one process (the worker, migrate, ...): samples in memory."""
    os.environ.pop(MULTIPROC_ENV, None)
    os.environ.pop(MULTIPROC_ENV.lower(), None)


_PID_FILE = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_processes() -> list[int]:
    """Remove the live-gauge files of worker processes that are gone; their pids."""
    path = multiprocess_dir()
    if path is None:
        return []
    from prometheus_client import multiprocess

    dead = set()
    for file in path.glob("gauge_live*_*.db"):
        match = _PID_FILE.search(file.name)
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        with contextlib.suppress(FileNotFoundError):
            multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return sorted(dead)


def leave() -> None:
    """A serving process stops: its live gauges no longer count."""
    path = multiprocess_dir()
    if path is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(FileNotFoundError):
        multiprocess.mark_process_dead(os.getpid(), str(path))  # type: ignore[no-untyped-call]


class _LiveWorkers:
    """The workers' files, read at each scrape after the dead workers' gauges are gone."""

    def __init__(self) -> None:
        from prometheus_client import multiprocess

        self._files = multiprocess.MultiProcessCollector(None)  # type: ignore[no-untyped-call]

    def collect(self) -> Any:
        reap_dead_processes()
        return self._files.collect()  # type: ignore[no-untyped-call]


def registry() -> CollectorRegistry:
    """What a scrape shows: every worker's files in multiprocess mode, else this process."""
    from prometheus_client import REGISTRY, CollectorRegistry

    if multiprocess_dir() is None:
        return REGISTRY
    aggregated = CollectorRegistry()
    aggregated.register(_LiveWorkers())
    return aggregated


def exposition() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry()), CONTENT_TYPE_LATEST


def serve_on_port(host: str, port: int) -> Any:
    """Expose :func:`registry` on a port of its own (a thread); the server (``.shutdown()``
    stops it, ``.server_port`` is the bound port)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=registry())
    log.info("metrics listening", host=host, port=server.server_port)
    return server


def bearer_matches(authorization: str | None, token: str) -> bool:
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
