"""Check-ins awarded together (app/study/batching.py) and duplicates racing across
connections, with real commits on real pools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core import clock
from app.core.config import Settings
from app.core.db import is_database_unavailable, to_driver_url
from app.core.driver_pool import DriverPool
from app.study import repository as repo
from app.study import service
from app.study.batching import AwardBatcher
from app.study.models import CreditDaily, CreditLedger
from tests import factories as f
from tests.conftest import truncate_all
from tests.live import free_port
from tests.support.locks import until_waiting_on_lock
from tests.support.study import item, ledger_points, session_at


@dataclass
class Studier:
    member_id: int
    session_ids: list[int]


@pytest.fixture
async def pool(settings: Settings, engine: AsyncEngine) -> AsyncIterator[DriverPool]:
    """A real driver pool on the test server; whatever it committed is removed after."""
    assert settings.database_url
    driver_pool = await DriverPool.open(settings, settings.database_url)
    try:
        yield driver_pool
    finally:
        await driver_pool.close()
        await truncate_all(engine)


async def _studiers(
    engine: AsyncEngine, settings: Settings, members: int, sessions: int
) -> list[Studier]:
    """``members`` members of one branch, each with ``sessions`` article sessions started
    five minutes ago (article: 1 point, 6 a day)."""
    async with AsyncSession(engine, expire_on_commit=False) as db:
        await service.ensure_default_rules(db)
        branch = await f.org(db, "批量支部")
        article = await item(db, branch, kind="article", min_seconds=0, points=1)
        started = datetime.now(UTC) - timedelta(minutes=5)
        studiers = []
        for _ in range(members):
            member = await f.member(db, settings, branch)
            ids = [(await session_at(db, member, article, started)).id for _ in range(sessions)]
            studiers.append(Studier(member.id, ids))
        await db.commit()
    return studiers


def _claim(member_id: int, session_id: int, event: str | None = None) -> repo.StudyClaim:
    at = datetime.now(UTC)
    return repo.StudyClaim(
        member_id=member_id,
        session_id=session_id,
        client_event_id=event or f"ev-{session_id}",
        at=at,
        day=clock.shanghai_day(at),
    )


class RecordedBatches:
    """The claims of every batch statement, recorded around the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[list[repo.StudyClaim]] = []
        real = repo.award_studies

        async def recording(
            conn: asyncpg.Connection, claims: Sequence[repo.StudyClaim]
        ) -> list[repo.AwardRow]:
            self.batches.append(list(claims))
            return await real(conn, claims)

        monkeypatch.setattr(repo, "award_studies", recording)


@asynccontextmanager
async def _uncommitted(
    settings: Settings, claim: repo.StudyClaim
) -> AsyncIterator[tuple[repo.AwardRow, Callable[[], Awaitable[None]]]]:
    """``claim`` awarded on a connection of its own and not committed yet: its result,
    and what commits it."""
    assert settings.database_url
    conn = await asyncpg.connect(to_driver_url(settings.database_url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        yield await repo.award_study(conn, claim), transaction.commit
    finally:
        await conn.close()


async def _credits(engine: AsyncEngine, member_id: int) -> tuple[tuple[int, int], int]:
    async with AsyncSession(engine) as db:
        daily = (
            await db.execute(
                select(func.coalesce(func.sum(CreditDaily.points), 0)).where(
                    CreditDaily.member_id == member_id
                )
            )
        ).scalar_one()
        return await ledger_points(db, member_id), int(daily)


async def test_concurrent_checkins_share_statements_one_per_member(
    pool: DriverPool, engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = RecordedBatches(monkeypatch)
    studiers = await _studiers(engine, settings, members=30, sessions=2)
    batcher = AwardBatcher(pool)
    claims = [_claim(s.member_id, sid) for s in studiers for sid in s.session_ids]

    rows = await asyncio.gather(*(batcher.award(c) for c in claims))

    assert all(r.new_id is not None and r.new_points == 1 for r in rows)
    assert len({r.new_id for r in rows}) == len(claims)
    # Each member's second check-in saw his first one's total.
    by_member: dict[int, list[int]] = {}
    for claim, row in zip(claims, rows, strict=True):
        by_member.setdefault(claim.member_id, []).append(row.new_daily or 0)
    assert all(sorted(days) == [1, 2] for days in by_member.values())
    # They went out together, never two of one member in a statement.
    assert recorded.batches and max(len(b) for b in recorded.batches) > 1
    assert sum(len(b) for b in recorded.batches) <= len(claims)
    for batch in recorded.batches:
        assert len({c.member_id for c in batch}) == len(batch)
    for studier in studiers:
        assert await _credits(engine, studier.member_id) == ((2, 2), 2)


async def test_a_burst_of_one_member_stays_under_the_cap(
    pool: DriverPool, engine: AsyncEngine, settings: Settings
) -> None:
    (studier,) = await _studiers(engine, settings, members=1, sessions=12)
    batcher = AwardBatcher(pool)
    rows = await asyncio.gather(
        *(batcher.award(_claim(studier.member_id, sid)) for sid in studier.session_ids)
    )
    assert sorted(r.new_points or 0 for r in rows) == [0] * 6 + [1] * 6
    assert sorted(r.new_daily or 0 for r in rows) == [1, 2, 3, 4, 5] + [6] * 7
    assert await _credits(engine, studier.member_id) == ((12, 6), 6)


async def test_a_duplicate_racing_on_another_connection_gets_the_first_result(
    pool: DriverPool, engine: AsyncEngine, settings: Settings
) -> None:
    (studier,) = await _studiers(engine, settings, members=1, sessions=1)
    claim = _claim(studier.member_id, studier.session_ids[0], "same-event")
    async with _uncommitted(settings, claim) as (first, commit), pool.connection() as conn:
        assert first.new_id is not None
        # It cannot see the uncommitted first one: it waits on the day row's lock, then
        # fails on the ledger's unique index and answers the first one's result.
        racing = asyncio.create_task(repo.award_study(conn, claim))
        await until_waiting_on_lock(engine)
        await commit()
        second = await racing
    assert second.new_id is None and second.prev_id == first.new_id
    assert second.prev_points == 1 and second.prev_daily == 1
    assert await _credits(engine, studier.member_id) == ((1, 1), 1)


async def test_a_batch_with_a_racing_duplicate_is_awarded_one_by_one(
    pool: DriverPool, engine: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = RecordedBatches(monkeypatch)
    racer, bystander = await _studiers(engine, settings, members=2, sessions=1)
    duplicate = _claim(racer.member_id, racer.session_ids[0], "race")
    other = _claim(bystander.member_id, bystander.session_ids[0])
    async with _uncommitted(settings, duplicate) as (first, commit):
        batcher = AwardBatcher(pool)
        both = asyncio.gather(batcher.award(duplicate), batcher.award(other))
        await until_waiting_on_lock(engine)
        await commit()
        replayed, accepted = await both
    assert [len(b) for b in recorded.batches] == [2]  # the statement that failed
    assert replayed.new_id is None and replayed.prev_id == first.new_id
    assert accepted.new_id is not None and accepted.new_points == 1
    assert await _credits(engine, racer.member_id) == ((1, 1), 1)
    assert await _credits(engine, bystander.member_id) == ((1, 1), 1)


async def test_a_value_the_database_refuses_fails_only_its_own_checkin(
    pool: DriverPool, engine: AsyncEngine, settings: Settings
) -> None:
    good, bad = await _studiers(engine, settings, members=2, sessions=1)
    batcher = AwardBatcher(pool)
    results = await asyncio.gather(
        batcher.award(_claim(good.member_id, good.session_ids[0])),
        batcher.award(_claim(bad.member_id, bad.session_ids[0], "x" * 65)),  # varchar(64)
        return_exceptions=True,
    )
    accepted, refused = results
    assert isinstance(accepted, repo.AwardRow) and accepted.new_points == 1
    assert isinstance(refused, asyncpg.StringDataRightTruncationError)
    assert await _credits(engine, good.member_id) == ((1, 1), 1)
    assert await _credits(engine, bad.member_id) == ((0, 0), 0)


async def test_every_waiting_checkin_fails_when_the_database_is_unreachable(
    settings: Settings,
) -> None:
    unreachable = settings.model_copy(update={"db_pool_timeout_s": 1.0})
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/branchlink"
    driver_pool = await DriverPool.open(unreachable, nowhere)
    try:
        batcher = AwardBatcher(driver_pool)
        results = await asyncio.gather(
            *(batcher.award(_claim(m, m)) for m in range(1, 6)), return_exceptions=True
        )
    finally:
        await driver_pool.close()
    assert all(isinstance(r, Exception) and is_database_unavailable(r) for r in results), results


async def test_a_checkin_cancelled_while_waiting_is_never_sent(
    engine: AsyncEngine, settings: Settings
) -> None:
    assert settings.database_url
    one = settings.model_copy(update={"db_driver_pool_size": 1})
    driver_pool = await DriverPool.open(one, settings.database_url)
    try:
        cancelled, kept = await _studiers(engine, settings, members=2, sessions=1)
        batcher = AwardBatcher(driver_pool)
        async with driver_pool.connection():  # the only connection is busy
            waiting = asyncio.create_task(
                batcher.award(_claim(cancelled.member_id, cancelled.session_ids[0]))
            )
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        row = await batcher.award(_claim(kept.member_id, kept.session_ids[0]))
        assert row.new_points == 1
        assert await _credits(engine, cancelled.member_id) == ((0, 0), 0)
        async with AsyncSession(engine) as db:
            entries = (await db.execute(select(func.count()).select_from(CreditLedger))).scalar()
        assert entries == 1
    finally:
        await driver_pool.close()
        await truncate_all(engine)


async def test_drain_answers_every_checkin_handed_in(
    engine: AsyncEngine, settings: Settings
) -> None:
    """At shutdown the lifespan drains the batcher before the driver pool closes: the
    check-ins waiting for a connection are awarded and committed, none is dropped."""
    assert settings.database_url
    one = settings.model_copy(update={"db_driver_pool_size": 1})
    driver_pool = await DriverPool.open(one, settings.database_url)
    try:
        studiers = await _studiers(engine, settings, members=3, sessions=1)
        batcher = AwardBatcher(driver_pool)
        async with driver_pool.connection():  # the only connection is busy
            awards = [
                asyncio.create_task(batcher.award(_claim(s.member_id, s.session_ids[0])))
                for s in studiers
            ]
            await asyncio.sleep(0)  # they are handed in
            draining = asyncio.create_task(batcher.drain())
            await asyncio.sleep(0.05)
            assert not draining.done()
            assert [await _credits(engine, s.member_id) for s in studiers] == [((0, 0), 0)] * 3
        await asyncio.wait_for(draining, timeout=10)
        # Drained: every check-in is committed before anyone awaited its answer.
        assert [await _credits(engine, s.member_id) for s in studiers] == [((1, 1), 1)] * 3
        assert [(await a).new_points for a in awards] == [1, 1, 1]
        await batcher.drain()  # nothing left: returns at once
    finally:
        await driver_pool.close()
        await truncate_all(engine)
