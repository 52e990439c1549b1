"""An ID number already on the roll is no existence oracle (issue 14, "Medium").

Creating, changing or importing a member with an ID number registered anywhere answers
the same way whether the number lies inside or outside the caller's scope, names no
organisation, points to the relation transfer (组织关系转接), is audited on both sides and
is rate-limited per admin.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core import pii
from app.core.config import Settings
from app.core.ratelimit import Policy, wait_text
from app.members import conflicts
from app.members.models import Member
from app.organization.models import Organization
from tests import factories as f
from tests.conftest import problem
from tests.factories import Actor


@dataclass
class Sides:
    branch: Organization
    other: Organization
    admin: Actor
    other_admin: Actor
    mine: Member  # registered in the admin's subtree
    theirs: Member  # registered in another county


@pytest.fixture
async def sides(db: AsyncSession, settings: Settings) -> Sides:
    county = await f.org(db, "甲县委")
    branch = await f.org(db, "甲村党支部", parent=county)
    other = await f.org(db, "乙县委")
    return Sides(
        branch=branch,
        other=other,
        admin=await f.admin_actor(db, settings, county, name="甲部长"),
        other_admin=await f.admin_actor(db, settings, other, name="乙部长"),
        mine=await f.member(db, settings, branch, "甲党员"),
        theirs=await f.member(db, settings, other, "乙党员"),
    )


def id_of(settings: Settings, member: Member) -> str:
    return pii.keyring(settings).decrypt(member.id_number_enc, context=pii.ID_NUMBER)


async def create(client: httpx.AsyncClient, s: Sides, id_number: str) -> httpx.Response:
    return await client.post(
        "/api/v1/members",
        json={"name": "新党员", "id_number": id_number, "home_org_id": s.branch.id},
        headers=s.admin.headers,
    )


def answer(response: httpx.Response) -> dict[str, Any]:
    body = problem(response, 409, "member.id_number_taken")
    assert "组织关系转接" in body["detail"]
    assert "管辖" not in body["detail"] and "以外" not in body["detail"]
    assert [(link["rel"], link["method"], link["href"]) for link in body["links"]] == [
        ("transfer", "POST", "/api/v1/transfers")
    ]
    return body


@pytest.fixture
def tight_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = Policy(f"test-id-conflict-{uuid.uuid4().hex[:8]}", 2, 3600)
    monkeypatch.setattr(conflicts, "ID_CONFLICTS", policy)


async def test_one_answer_inside_and_outside_scope(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, sides: Sides
) -> None:
    before = (await db.execute(select(func.count()).select_from(Member))).scalar_one()
    inside = answer(await create(client, sides, id_of(settings, sides.mine)))
    outside = answer(await create(client, sides, id_of(settings, sides.theirs)))
    assert inside == outside

    third = await f.member(db, settings, sides.branch, "甲另一党员")
    patched = await client.patch(
        f"/api/v1/members/{third.id}",
        json={"version": third.version, "id_number": id_of(settings, sides.theirs)},
        headers=sides.admin.headers,
    )
    assert answer(patched) == inside
    await db.refresh(third)
    assert third.id_number_idx != sides.theirs.id_number_idx
    assert (await db.execute(select(func.count()).select_from(Member))).scalar_one() == before + 1


async def test_the_import_names_no_organisation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, sides: Sides
) -> None:
    roster = f"姓名,身份证号\n乙党员,{id_of(settings, sides.theirs)}\n".encode("utf-8-sig")
    response = await client.post(
        "/api/v1/members/import",
        params={"org_id": sides.branch.id},
        files={"file": ("roster.csv", roster, "text/csv")},
        headers=sides.admin.headers,
    )
    body = problem(response, 422, "import.invalid_rows")
    [error] = body["errors"]
    assert error["field"] == "身份证号"
    assert "组织关系转接" in error["message"] and "管辖" not in error["message"]
    assert (
        error["message"]
        == answer(await create(client, sides, id_of(settings, sides.mine)))["detail"]
    )
    # The refused import is audited although nothing was imported.
    conflicts_seen = (
        await db.execute(
            select(AuditEntry.org_id, AuditEntry.detail).where(
                AuditEntry.action == "member.id_number_conflict",
                AuditEntry.actor_account_id == sides.admin.account.id,
            )
        )
    ).all()
    assert (sides.branch.id, {"via": "import", "count": 1, "rate_limited": False}) in [
        (org, detail) for org, detail in conflicts_seen
    ]


async def test_every_conflict_is_audited_on_both_sides(
    client: httpx.AsyncClient, settings: Settings, sides: Sides
) -> None:
    answer(await create(client, sides, id_of(settings, sides.theirs)))

    mine = await client.get("/api/v1/audit", headers=sides.admin.headers)
    [entry] = [e for e in mine.json()["items"] if e["action"] == "member.id_number_conflict"]
    # The prober's side: where he tried, not whom he found.
    assert entry["org_id"] == sides.branch.id
    assert entry["subject_id"] is None
    assert entry["detail"] == {"via": "create", "count": 1, "rate_limited": False}

    theirs = await client.get("/api/v1/audit", headers=sides.other_admin.headers)
    [owner] = [e for e in theirs.json()["items"] if e["action"] == "member.id_number_conflict"]
    # The owner's side: which of its members someone tried to register, and who.
    assert owner["org_id"] == sides.other.id
    assert (owner["subject_type"], owner["subject_id"]) == ("member", sides.theirs.id)
    assert owner["actor_account_id"] == sides.admin.account.id


@pytest.mark.usefixtures("tight_limit")
async def test_conflicts_are_rate_limited_per_admin(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, sides: Sides
) -> None:
    for _ in range(2):
        answer(await create(client, sides, id_of(settings, sides.theirs)))
    limited = problem(
        await create(client, sides, id_of(settings, sides.theirs)), 429, "rate_limited"
    )
    assert limited["detail"] == f"操作过于频繁，请{wait_text(limited['retry_after_s'])}后再试"
    # Still audited, and marked as refused by the limit.
    details = (
        await db.execute(
            select(AuditEntry.detail)
            .where(
                AuditEntry.action == "member.id_number_conflict",
                AuditEntry.org_id == sides.branch.id,
            )
            .order_by(AuditEntry.id)
        )
    ).scalars()
    assert [d["rate_limited"] for d in details] == [False, False, True]
    # Registering a new person is not what the limit is about.
    fresh = await create(client, sides, f.unique_id_number())
    assert fresh.status_code == 201, fresh.text
    # Another admin has his own budget.
    other = await client.post(
        "/api/v1/members",
        json={"name": "x", "id_number": id_of(settings, sides.mine), "home_org_id": sides.other.id},
        headers=sides.other_admin.headers,
    )
    answer(other)


@pytest.mark.usefixtures("tight_limit")
async def test_every_imported_conflict_counts(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, sides: Sides
) -> None:
    others = [await f.member(db, settings, sides.other, f"乙{n}") for n in range(3)]
    lines = "".join(f"乙{n},{id_of(settings, m)}\n" for n, m in enumerate(others))
    response = await client.post(
        "/api/v1/members/import",
        params={"org_id": sides.branch.id, "partial": "true"},
        files={"file": ("roster.csv", f"姓名,身份证号\n{lines}".encode("utf-8-sig"), "text/csv")},
        headers=sides.admin.headers,
    )
    problem(response, 429, "rate_limited")
    assert (
        await db.execute(
            select(func.count()).select_from(Member).where(Member.home_org_id == sides.branch.id)
        )
    ).scalar_one() == 1  # only 甲党员
