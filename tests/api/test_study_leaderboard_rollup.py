"""Leaderboards read the rollups (credit_daily for days, credit_rollup for months and
years): after check-ins on both sides of day, month and year boundaries (Asia/Shanghai),
every board of every subtree, page by page, equals a recount of the ledger."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import SHANGHAI
from app.core.config import Settings
from app.members.models import Member
from app.organization.models import Organization
from app.study import boards
from app.study.service import period_range
from tests import factories as f
from tests.clock import Clock
from tests.conftest import problem
from tests.support.study import item, session_at

CHECKINS = "/api/v1/study/checkins"
BOARD = "/api/v1/study/leaderboard"
PERIODS = ("day", "month", "year")


async def _recount(
    db: AsyncSession, root: Organization, start: date, end: date
) -> list[tuple[int, int, int]]:
    """(rank, member, points) from the ledger: members whose home organisation is in the
    subtree now, points of the ledger rows of [start, end], ranked with ties."""
    rows = (
        await db.execute(
            text(
                "SELECT l.member_id, sum(l.points) AS points FROM credit_ledger l "
                "JOIN members m ON m.id = l.member_id "
                "JOIN organizations o ON o.id = m.home_org_id "
                "WHERE l.day BETWEEN :start AND :end AND starts_with(o.path, :root) "
                "GROUP BY l.member_id HAVING sum(l.points) > 0"
            ),
            {"start": start, "end": end, "root": root.path},
        )
    ).all()
    ordered = sorted(((int(p), int(m)) for m, p in rows), key=lambda r: (-r[0], r[1]))
    return [(1 + sum(1 for q, _ in ordered if q > p), m, p) for p, m in ordered]


async def _board(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: int, period: str, limit: int
) -> tuple[list[tuple[int, int, int]], dict[str, Any]]:
    """Every page of a board (``limit`` rows a page), joined."""
    entries: list[tuple[int, int, int]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"org_id": org_id, "period": period, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(BOARD, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += [(e["rank"], e["member_id"], e["points"]) for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return entries, body


@pytest.mark.parametrize("small_subtree", [10_000, 0], ids=["by-member", "walk"])
async def test_boards_equal_a_recount_of_the_ledger_across_boundaries(
    client: httpx.AsyncClient,
    db: AsyncSession,
    settings: Settings,
    clock: Clock,
    rules: None,
    monkeypatch: pytest.MonkeyPatch,
    small_subtree: int,
) -> None:
    # Both ways of reading a subtree: its members one by one (every subtree here is
    # small), and the walk down the period's index that large subtrees take.
    monkeypatch.setattr(boards, "SMALL_SUBTREE", dict.fromkeys(PERIODS, small_subtree))
    rng = random.Random(19)
    clock.now = datetime(2025, 12, 31, 23, 30, tzinfo=SHANGHAI)
    county = await f.org(db, "县委")
    street = await f.org(db, "街道党工委", parent=county, kind="committee")
    branch_a = await f.org(db, "一支部", parent=street)
    branch_b = await f.org(db, "二支部", parent=street)
    branch_c = await f.org(db, "三支部", parent=county)
    other = await f.org(db, "外县")
    admin_account = (await f.admin_actor(db, settings, county)).account
    homes = [branch_a] * 5 + [branch_b] * 4 + [branch_c] * 3 + [other] * 2
    members = [await f.member(db, settings, home, f"党员{i}") for i, home in enumerate(homes)]
    accounts = [await f.account(db, member=m) for m in members]
    article = await item(db, None, kind="article", min_seconds=0, points=1)
    quiz = await item(db, None, kind="quiz", min_seconds=0, points=2)
    roots = (county, street, branch_a, branch_b, branch_c, other)

    async def study(moment: datetime) -> None:
        """Some members check in a few times at ``moment`` (Shanghai)."""
        clock.now = moment
        for m, acc in zip(members, accounts, strict=True):
            actor = await f.login(db, settings, acc, m)
            for _ in range(rng.randrange(4)):
                study_item = quiz if rng.random() < 0.5 else article
                sess = await session_at(db, m, study_item, clock.now)
                response = await client.post(
                    CHECKINS,
                    json={"session_id": sess.id, "client_event_id": f"ev-{sess.id}"},
                    headers=actor.headers,
                )
                assert response.status_code == 200, response.text

    async def check(moment: datetime) -> int:
        """Every board of every subtree at ``moment`` equals the recount; returns how
        many ranked entries were compared."""
        clock.now = moment
        admin = await f.login(db, settings, admin_account)
        compared = 0
        for period in PERIODS:
            start, end = period_range(period, clock.today())  # type: ignore[arg-type]
            for root in roots:
                want = await _recount(db, root, start, end)
                if root is other:
                    problem(
                        await client.get(
                            BOARD,
                            params={"org_id": root.id, "period": period},
                            headers=admin.headers,
                        ),
                        404,
                        "study.org_not_found",
                    )
                    continue
                got, body = await _board(client, admin.headers, root.id, period, limit=3)
                assert got == want, (moment, period, root.name)
                assert (body["start"], body["end"]) == (start.isoformat(), end.isoformat())
                compared += len(got)
            # A member's own standing in the county equals his recount.
            me = members[6]
            mine = (
                await client.get(
                    BOARD,
                    params={"org_id": county.id, "period": period},
                    headers=(await f.login(db, settings, accounts[6], me)).headers,
                )
            ).json()["me"]
            recount = {m: (r, p) for r, m, p in await _recount(db, county, start, end)}
            assert (mine["rank"], mine["points"]) == recount.get(me.id, (None, 0)), period
        return compared

    moments = [
        datetime(2025, 12, 31, 23, 30, tzinfo=SHANGHAI),  # the last half hour of 2025
        datetime(2026, 1, 1, 0, 10, tzinfo=SHANGHAI),  # 2025-12-31 16:10 UTC
        datetime(2026, 1, 31, 23, 50, tzinfo=SHANGHAI),
        datetime(2026, 2, 1, 7, 0, tzinfo=SHANGHAI),
        datetime(2026, 2, 1, 21, 0, tzinfo=SHANGHAI),
    ]
    compared = 0
    for moment in moments:
        await study(moment)
        compared += await check(moment)
    # A member moves to another branch: he is ranked where he belongs now.
    await db.execute(
        update(Member).where(Member.id == members[0].id).values(home_org_id=branch_c.id)
    )
    for moment in (moments[0], moments[2], moments[-1]):
        compared += await check(moment)
    assert compared > 100

    # Ties: some ranks are shared, so the boards exercise the tie rule across pages.
    admin = await f.login(db, settings, admin_account)
    year, _ = await _board(client, admin.headers, county.id, "year", limit=3)
    assert max(Counter(rank for rank, _, _ in year).values()) > 1

    # The rollup equals a grouping of the ledger itself, with each member's organisation
    # now (the moved member's rows followed him).
    rollup = await db.execute(
        text("SELECT member_id, period, start, points, org_id FROM credit_rollup ORDER BY 1, 2, 3")
    )
    grouped = await db.execute(
        text(
            "SELECT member_id, p.period, p.start, sum(points), min(m.home_org_id) "
            "FROM credit_ledger l JOIN members m ON m.id = l.member_id "
            "CROSS JOIN LATERAL (VALUES ('month', date_trunc('month', l.day::timestamp)::date), "
            "('year', date_trunc('year', l.day::timestamp)::date)) AS p (period, start) "
            "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
    )
    assert rollup.all() == grouped.all()
