"""Command line: ``python -m app serve|migrate|create-admin|seed-demo|partitions|worker|dev``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings


class ConfigurationError(Exception):
    """The process cannot start as configured; the message says what to set."""


def database_url(settings: Settings) -> str:
    """The external server's URL, or the embedded server's (started if needed)."""
    if settings.database_url:
        return settings.database_url
    if settings.env == "prod":  # Settings refuses this too; never start one in prod
        raise ConfigurationError("APP_ENV=prod needs DATABASE_URL")
    from app.core import embedded

    try:
        url = embedded.start(settings.data_dir)
    except embedded.NotInstalled as error:
        raise ConfigurationError(str(error)) from error
    # Child processes (uvicorn workers, alembic) use the same server.
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    return url


def migrate(url: str, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False  # our logging, not alembic.ini's
    command.upgrade(config, revision)
    print(f"database migrated to {revision}")


async def _in_session(url: str, work: Callable[[AsyncSession, Settings], Awaitable[str]]) -> str:
    """Run one piece of CLI work in a transaction and commit it."""
    from app.core.db import create_engine, make_sessionmaker

    settings = get_settings()
    engine = create_engine(settings, url)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await work(session, settings)
            await session.commit()
            return result
    finally:
        await engine.dispose()


def _seed_demo(url: str) -> str:
    from app.demo import seed_demo

    return asyncio.run(_in_session(url, seed_demo))


def _partitions(args: argparse.Namespace, url: str) -> int:
    from app.core import clock, partitions

    async def work(session: AsyncSession, _settings: Settings) -> str:
        if args.action == "create":
            return await partitions.create_ahead(session, clock.today(), ahead=args.ahead)
        if before is not None:
            names = await partitions.detach_before(session, before)
            return "detached " + ", ".join(names) if names else "nothing to detach"
        rows = await partitions.listing(session)
        return "\n".join(f"{table:<16} {name:<28} ~{n:,} rows" for table, name, n in rows)

    before = None
    if args.action == "detach":
        try:
            before = partitions.parse_month(args.before)
        except ValueError as error:
            print(f"branchlink: {error}", file=sys.stderr)
            return 2
    print(asyncio.run(_in_session(url, work)))
    return 0


def serve(settings: Settings, url: str) -> None:
    import uvicorn

    from app.core import metrics

    os.environ["DATABASE_URL"] = url
    metrics.prepare_multiprocess(settings.data_dir, settings.workers)
    if settings.metrics_port is not None:
        # In this (the supervising) process: it outlives the workers it restarts.
        metrics.serve_on_port(settings.host, settings.metrics_port)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        proxy_headers=False,  # the app reads X-Forwarded-For (APP_TRUSTED_PROXIES)
        log_config=None,
        access_log=False,
    )


def _leave_properly_on_signals() -> None:
    """SIGTERM ends the process as Ctrl-C does: ``finally`` blocks and atexit handlers
    run, so an embedded PostgreSQL this process started is stopped. (uvicorn serves with
    its own SIGINT/SIGTERM handlers, shuts down gracefully, then restores these and
    raises the signal again: with the default action the process would die on the spot.)
    SIGHUP (a closed terminal) is taken as SIGTERM, so a serving uvicorn shuts down
    gracefully for it too."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    def _as_sigterm(_signum: int, _frame: object) -> None:
        signal.raise_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _as_sigterm)


def _reason(error: Exception) -> str:
    if isinstance(error, ConfigurationError):
        return str(error)
    from pydantic import ValidationError

    assert isinstance(error, ValidationError)
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description="branchlink")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="serve the API (APP_HOST, APP_PORT, APP_WORKERS)")
    sub.add_parser("migrate", help="alembic upgrade head")
    admin = sub.add_parser("create-admin", help="root organisation + superadmin for an openid")
    admin.add_argument("--openid", required=True)
    admin.add_argument("--name", required=True)
    admin.add_argument("--org-name", default="县委组织部")
    admin.add_argument("--region-code", default=None)
    sub.add_parser("seed-demo", help="demo organisations, members and content (once)")
    parts = sub.add_parser("partitions", help="monthly partitions of the history tables")
    parts_sub = parts.add_subparsers(dest="action", required=True)
    parts_sub.add_parser("list", help="every attached partition with its estimated rows")
    ahead = parts_sub.add_parser("create", help="this month's and the next months' now")
    ahead.add_argument("--ahead", type=int, default=3, help="months after this one")
    detach = parts_sub.add_parser(
        "detach", help="detach the months before --before (they stay as plain tables)"
    )
    detach.add_argument("--before", required=True, metavar="YYYY-MM")
    worker_cmd = sub.add_parser("worker", help="run the outbox worker and the scheduled jobs")
    dev_cmd = sub.add_parser(
        "dev", help="migrate, seed demo data once, serve with the worker (make run)"
    )
    for command in (serve_cmd, worker_cmd, dev_cmd):
        command.add_argument(
            "--clock-offset",
            metavar="OFFSET",
            help="dev/test only: run the app's clock ahead, e.g. 3d, 12h, 90m or seconds "
            "(same as APP_CLOCK_OFFSET; refused in prod)",
        )
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from app.core import metrics

    if args.command not in ("serve", "dev"):
        metrics.use_single_process()  # before anything that defines a metric is imported
    if getattr(args, "clock_offset", None):
        # Through the environment, so that uvicorn's worker processes run with it too.
        os.environ["APP_CLOCK_OFFSET"] = args.clock_offset
        get_settings.cache_clear()
    try:
        settings = get_settings()
        if settings.clock_offset:
            from app.core import clock

            clock.set_offset(settings.clock_offset)
            local = clock.now().astimezone(clock.SHANGHAI)
            print(f"clock: {settings.clock_offset} ahead, now {local:%Y-%m-%d %H:%M} Asia/Shanghai")
    except (ValidationError, ConfigurationError) as error:
        print(f"branchlink: cannot start: {_reason(error)}", file=sys.stderr)
        return 2
    _leave_properly_on_signals()
    embedded_dir = None if settings.database_url else settings.data_dir
    try:
        return _run(args, database_url(settings))
    except ConfigurationError as error:
        print(f"branchlink: cannot start: {_reason(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if embedded_dir is not None:
            from app.core import embedded

            embedded.stop(embedded_dir)


def _run(args: argparse.Namespace, url: str) -> int:
    settings = get_settings()
    if args.command == "migrate":
        from app.core.db import direct_url

        migrate(direct_url(settings, url))  # DDL and its session lock: never via PgBouncer
    elif args.command == "create-admin":
        from app.organization.bootstrap import create_admin

        print(
            asyncio.run(
                _in_session(
                    url,
                    lambda session, st: create_admin(
                        session,
                        st,
                        openid=args.openid,
                        name=args.name,
                        org_name=args.org_name,
                        region_code=args.region_code,
                    ),
                )
            )
        )
    elif args.command == "seed-demo":
        print(_seed_demo(url))
    elif args.command == "partitions":
        return _partitions(args, url)
    elif args.command == "worker":
        from app.notify.worker import run_worker

        asyncio.run(run_worker(settings, url))
    elif args.command == "serve":
        serve(settings, url)
    elif args.command == "dev":
        migrate(url)
        print(_seed_demo(url))
        os.environ["APP_WORKER_IN_PROCESS"] = "true"
        get_settings.cache_clear()
        settings = get_settings()
        print(f"\n  branchlink is running: http://{settings.host}:{settings.port}/docs\n")
        serve(settings, url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
