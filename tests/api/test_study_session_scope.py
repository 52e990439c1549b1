"""``POST /study/sessions`` is one statement: item visibility (global, the caller's home
path, an admin's subtrees) is decided inside it, roles as the database has them at
that moment, and the keyed request writes in the request's transaction instead."""

from __future__ import annotations

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.organization.models import RoleAssignment
from app.study.models import StudySession
from tests import factories as f
from tests.conftest import problem
from tests.support.study import item

SESSIONS = "/api/v1/study/sessions"


async def _sessions_of(db: AsyncSession, member_id: int) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(StudySession)
            .where(StudySession.member_id == member_id)
        )
        or 0
    )


async def test_admin_sees_items_of_his_subtree_until_the_role_goes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county_a = await f.org(db, "甲县")
    home = await f.org(db, "甲县某支部", parent=county_a)
    county_b = await f.org(db, "乙县")
    branch_b = await f.org(db, "乙县某支部", parent=county_b)
    elsewhere = await f.org(db, "丙县")
    admin = await f.member_actor(db, settings, home, name="王书记")
    assert admin.member is not None
    role = await f.grant(db, admin.member, county_b)
    ancestor_item = await item(db, county_a, min_seconds=30)
    subtree_item = await item(db, branch_b, min_seconds=45)
    global_item = await item(db, None, min_seconds=15)
    foreign_item = await item(db, elsewhere)

    for study, seconds in ((ancestor_item, 30), (subtree_item, 45), (global_item, 15)):
        started = await client.post(SESSIONS, json={"item_id": study.id}, headers=admin.headers)
        assert started.status_code == 201, started.text
        assert started.json()["item_id"] == study.id
        assert started.json()["min_seconds"] == seconds
    problem(
        await client.post(SESSIONS, json={"item_id": foreign_item.id}, headers=admin.headers),
        404,
        "study.item_not_found",
    )
    assert await _sessions_of(db, admin.member.id) == 3

    # The role is read inside the statement: once it is gone, so is the subtree.
    await db.execute(delete(RoleAssignment).where(RoleAssignment.id == role.id))
    await db.flush()
    problem(
        await client.post(SESSIONS, json={"item_id": subtree_item.id}, headers=admin.headers),
        404,
        "study.item_not_found",
    )
    assert await _sessions_of(db, admin.member.id) == 3


async def test_superadmin_member_sees_every_item(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    home = await f.org(db, "支部")
    elsewhere = await f.org(db, "别处")
    actor = await f.member_actor(db, settings, home)
    assert actor.member is not None
    actor.account.is_superadmin = True
    await db.flush()
    actor = await f.login(db, settings, actor.account, actor.member)
    foreign_item = await item(db, elsewhere)
    started = await client.post(SESSIONS, json={"item_id": foreign_item.id}, headers=actor.headers)
    assert started.status_code == 201, started.text
    assert await _sessions_of(db, actor.member.id) == 1


async def test_keyed_start_is_stored_and_replayed(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    branch = await f.org(db, "支部")
    member = await f.member_actor(db, settings, branch)
    assert member.member is not None
    study = await item(db, branch)
    headers = {**member.headers, "Idempotency-Key": "start-once"}
    first = await client.post(SESSIONS, json={"item_id": study.id}, headers=headers)
    again = await client.post(SESSIONS, json={"item_id": study.id}, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    row = await db.get(StudySession, first.json()["session_id"])
    assert row is not None and row.member_id == member.member.id
    assert await _sessions_of(db, member.member.id) == 1
    # Without a key every request starts a session of its own.
    plain = await client.post(SESSIONS, json={"item_id": study.id}, headers=member.headers)
    assert plain.status_code == 201 and plain.json()["session_id"] != first.json()["session_id"]
    assert await _sessions_of(db, member.member.id) == 2
