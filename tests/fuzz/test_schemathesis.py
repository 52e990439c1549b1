"""Schemathesis against ``openapi/openapi.json`` on the running app, as an admin and a member.

Checks: no server errors, status codes and content types as documented, responses match
their schemas. The whole HTTP exchange is recorded (HAR) and scanned for leaked personal
data, session keys and tracebacks, and so is the server's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.db import create_engine
from tests import factories
from tests.leakscan import ALLOWED_PATHS, Findings
from tests.live import ROOT, live_server, scratch_database

pytestmark = pytest.mark.slow

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "12")
SEED = os.environ.get("FUZZ_SEED", "20261123")


async def _seed(url: str) -> dict[str, str]:
    settings = Settings(env="test", database_url=url, access_token_ttl_s=3600)
    engine = create_engine(settings, url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as db:
            county = await factories.org(db, "模糊测试县委")
            branch = await factories.org(db, "模糊测试支部", parent=county)
            admin = await factories.admin_actor(db, settings, county)
            member = await factories.member_actor(db, settings, branch, "王五")
            await db.commit()
            return {"admin": admin.token, "member": member.token}
    finally:
        await engine.dispose()


def _run_schemathesis(base_url: str, token: str, har: Path) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).parent / "st"
    return subprocess.run(
        [
            str(st),
            "run",
            str(ROOT / "openapi" / "openapi.json"),
            "--url",
            base_url,
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            MAX_EXAMPLES,
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "2",
            "--seed",
            SEED,
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "20",
            "--no-color",
            "--report",
            "har",
            "--report-har-path",
            str(har),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _scan_har(har: Path, findings: Findings) -> None:
    data = json.loads(har.read_text())
    for entry in data["log"]["entries"]:
        url = entry["request"]["url"]
        path = "/" + url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        if any(p.match(path) for p in ALLOWED_PATHS):
            continue
        text = entry["response"].get("content", {}).get("text") or ""
        findings.scan(f"{entry['request']['method']} {path}", text)


async def test_fuzz_every_operation_as_admin_and_member(migrated_url: str, tmp_path: Path) -> None:
    async with scratch_database(migrated_url, "branchlink_fuzz") as url:
        tokens = await _seed(url)
        findings = Findings()
        failures = []
        with live_server(url) as base_url:
            for role, token in tokens.items():
                har = tmp_path / f"{role}.har"
                result = _run_schemathesis(base_url, token, har)
                if result.returncode != 0:
                    # Whole: its error details come before a long list of warnings, and
                    # a tail cut them off (a runtime error once went unexplained so).
                    failures.append(f"--- as {role} ---\n{result.stdout}{result.stderr[-2000:]}")
                if har.exists():
                    _scan_har(har, findings)
        server_log = live_server.last_log  # type: ignore[attr-defined]
        for line in server_log.splitlines():
            findings.scan("server log", line)
        assert not failures, "\n".join(failures)
        assert not findings.items, "\n".join(findings.items[:20])
