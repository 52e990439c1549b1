"""``alembic check`` (models and migrations agree) plus a full downgrade/upgrade cycle.

Runs against ``DATABASE_URL`` if set (in a scratch database), else a throwaway embedded server.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def _run(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    command.check(config)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    print("migrations: upgrade, check, downgrade base, upgrade: ok")


def main() -> int:
    from app.core import embedded

    if os.environ.get("DATABASE_URL"):
        import asyncio

        import asyncpg

        base = os.environ["DATABASE_URL"]
        name = "branchlink_migration_check"

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(base)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
        try:
            from urllib.parse import urlparse, urlunparse

            _run(urlunparse(urlparse(base)._replace(path="/" + name)))
        finally:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="branchlink-migrations-"))
    os.environ["XDG_RUNTIME_DIR"] = str(tmp)
    try:
        _run(embedded.start(tmp, cleanup_mode="delete"))
    finally:
        embedded.stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
