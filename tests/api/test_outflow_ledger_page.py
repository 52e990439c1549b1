# ruff: noqa: F811 - the shared fixtures are imported from test_mobility
"""``GET /outflows`` is one driver statement shaped as plain dicts: its bytes are the
model path's (``ledger.page`` over the ORM, ``Page[OutflowOut].model_dump_json()``) for
every kind of row and caller: pending, active with a check-in pending elsewhere,
co-managed, returned, rejected, flagged (with the transfer link), consented; county,
branch and destination admins, an admin's own outflow outside his subtree, a
superadmin; every filter, the cursor and ``org_id``."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.security import RoleClaim
from app.identity.principal import Principal
from app.mobility import ledger, ledger_repository
from app.mobility.models import Outflow
from app.mobility.repository import LedgerFilter
from app.organization.models import RoleAssignment
from app.organization.scope import build_scope
from tests import factories
from tests.api.test_mobility import (  # noqa: F401 - fixtures
    Clock,
    World,
    accept,
    approve,
    checkin,
    clock,
    consent,
    make_world,
    register,
    world,
)
from tests.conftest import problem
from tests.factories import Actor


async def _principal(db: AsyncSession, actor: Actor) -> Principal:
    member_id = actor.member.id if actor.member else None
    roles = (
        await db.execute(
            select(RoleAssignment.role, RoleAssignment.org_id).where(
                RoleAssignment.member_id == member_id
            )
        )
    ).all()
    return Principal(
        account_id=actor.account.id,
        kind="admin",
        member_id=member_id,
        superadmin=actor.account.is_superadmin,
        roles=tuple(RoleClaim(role, org_id) for role, org_id in roles),
    )


async def _same_as_model(
    client: httpx.AsyncClient,
    db: AsyncSession,
    clock: Clock,
    actor: Actor,
    *,
    org_id: int | None = None,
    limit: int = 20,
    cursor: str | None = None,
    **filters: object,
) -> dict[str, object]:
    params: dict[str, object] = {"limit": limit, **filters}
    if org_id is not None:
        params["org_id"] = org_id
    if cursor is not None:
        params["cursor"] = cursor
    response = await client.get("/api/v1/outflows", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    typed = {
        key: date.fromisoformat(str(value)) if key.endswith(("_from", "_to")) else value
        for key, value in filters.items()
    }
    scope = await build_scope(db, await _principal(db, actor))
    expected = await ledger.page(
        db,
        scope,
        org_id=org_id,
        filters=LedgerFilter(**typed),  # type: ignore[arg-type]
        today=clock.today(),
        limit=limit,
        cursor=cursor,
    )
    assert response.content == expected.model_dump_json().encode(), params
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("small_scope", [0, 10_000], ids=["by-id", "by-organisation"])
async def test_the_page_is_the_models_json(
    client: httpx.AsyncClient,
    world: World,
    clock: Clock,
    db: AsyncSession,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    small_scope: int,
) -> None:
    """Both ways to the page (a large scope newest first by id, a small one organisation
    by organisation) give the model's bytes."""
    monkeypatch.setattr(ledger_repository, "SMALL_SCOPE", small_scope)
    # The member: approved, consented, checked in at the destination and accepted there
    # (an open dual-management grant: the destination co-manages this outflow).
    o = await approve(client, world.branch_admin, await register(client, world.member))
    await consent(client, world.member)
    await accept(client, world, await checkin(client, world, o))
    # A check-in still pending at the destination.
    waiting = await factories.member_actor(db, settings, world.branch, "刘等待")
    w = await approve(client, world.branch_admin, await register(client, waiting))
    response = await client.post(
        f"/api/v1/outflows/{w['id']}/destination-checkin",
        json={"org_id": world.destination.id, "version": w["version"]},
        headers=waiting.headers,
    )
    assert response.status_code == 200, response.text
    # Pending, rejected and returned ones.
    pending = await factories.member_actor(db, settings, world.branch, "陈待批")
    await register(client, pending, destination_region_code="330106", reason="study")
    rejected = await factories.member_actor(db, settings, world.branch, "孙驳回")
    r = await register(client, rejected, reason="business", employer=None)
    response = await client.post(
        f"/api/v1/outflows/{r['id']}/reject",
        json={"version": r["version"], "reason": "材料不全"},
        headers=world.branch_admin.headers,
    )
    assert response.status_code == 200, response.text
    back = await factories.member_actor(db, settings, world.branch, "周返回")
    b = await approve(client, world.branch_admin, await register(client, back))
    response = await client.post(
        f"/api/v1/outflows/{b['id']}/return",
        json={"returned_on": "2026-03-02", "version": b["version"]},
        headers=back.headers,
    )
    assert response.status_code == 200, response.text
    # An admin of the other county whose own outflow starts in this branch.
    both = await factories.member(db, settings, world.branch, "吴双职")
    await factories.grant(db, both, world.other_county)
    dual = await factories.login(db, settings, await factories.account(db, member=both), both)
    mine = await register(client, dual, destination_region_code="440304")
    superadmin = await factories.superadmin_actor(db, settings)
    # Whole seconds in one timestamp (no fraction in its JSON).
    await db.execute(
        update(Outflow)
        .where(Outflow.id == o["id"])
        .values(decided_at=func.date_trunc("second", Outflow.decided_at))
    )
    await db.commit()

    # Seven months on: check-in and report overdue, transfer suggested (with its link).
    clock.set_day(date(2026, 10, 5))
    page = await _same_as_model(client, db, clock, world.county_admin)
    assert len(page["items"]) == 6  # type: ignore[arg-type]
    flagged = next(i for i in page["items"] if i["id"] == w["id"])  # type: ignore[attr-defined,union-attr]
    assert "transfer_suggested" in flagged["flags"] and flagged["links"]
    assert flagged["checkin"]["org"]["name"] == world.destination.name

    first = await _same_as_model(client, db, clock, world.county_admin, limit=2)
    assert first["next_cursor"]
    second = await _same_as_model(
        client, db, clock, world.county_admin, limit=2, cursor=first["next_cursor"]
    )
    assert second["next_cursor"]
    for query in (
        {"status": "active"},
        {"status": "pending"},
        {"status": "returned"},
        {"flag": "transfer_suggested"},
        {"flag": "checkin_overdue"},
        {"destination_region_code": "330000"},
        {"destination_region_code": "440305"},
        {"reason": "business"},
        {"checkin_status": "pending"},
        {"departed_from": "2026-03-01", "departed_to": "2026-03-10"},
        {"returned_from": "2026-03-01", "returned_to": "2026-03-03"},
        {"q": "刘"},
        {"q": o["certificate_no"].lower()},
        {"consent": True},
        {"consent": False},
    ):
        await _same_as_model(client, db, clock, world.county_admin, **query)
    await _same_as_model(client, db, clock, world.county_admin, org_id=world.branch.id)
    await _same_as_model(client, db, clock, world.branch_admin)
    # The destination: the co-managed outflow and the check-in pending there.
    dest = await _same_as_model(client, db, clock, world.dest_admin)
    assert sorted(i["id"] for i in dest["items"]) == sorted([o["id"], w["id"]])  # type: ignore[union-attr]
    await _same_as_model(client, db, clock, world.dest_admin, org_id=world.destination.id)
    # His own outflow without org_id; only his county's with it (none).
    own = await _same_as_model(client, db, clock, dual)
    assert [i["id"] for i in own["items"]] == [mine["id"]]  # type: ignore[union-attr]
    assert (await _same_as_model(client, db, clock, dual, org_id=world.other_county.id))[
        "items"
    ] == []
    everything = await _same_as_model(client, db, clock, superadmin, limit=100)
    assert len(everything["items"]) == 6  # type: ignore[arg-type]
    await _same_as_model(client, db, clock, superadmin, org_id=world.destination.id)


@pytest.mark.parametrize("small_scope", [0, 10_000], ids=["by-id", "by-organisation"])
async def test_a_full_page_of_a_hundred_has_a_next_cursor(
    client: httpx.AsyncClient,
    world: World,
    clock: Clock,
    db: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    small_scope: int,
) -> None:
    monkeypatch.setattr(ledger_repository, "SMALL_SCOPE", small_scope)
    o = await approve(client, world.branch_admin, await register(client, world.member))
    columns = [
        c.name
        for c in Outflow.__table__.columns
        if c.name not in ("id", "status", "certificate_no", "returned_on")
    ]
    copied = ", ".join(columns)
    await db.execute(
        text(
            f"INSERT INTO outflows ({copied}, status, returned_on) "
            f"SELECT {copied}, 'returned', departed_on FROM outflows, generate_series(1, 101) "
            "WHERE id = :id"
        ),
        {"id": o["id"]},
    )
    await db.commit()
    first = await _same_as_model(client, db, clock, world.county_admin, limit=100)
    assert len(first["items"]) == 100 and first["next_cursor"]  # type: ignore[arg-type]
    rest = await _same_as_model(
        client, db, clock, world.county_admin, limit=100, cursor=first["next_cursor"]
    )
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None  # type: ignore[arg-type]


async def test_scope_answers_come_from_the_statement(
    client: httpx.AsyncClient, world: World, clock: Clock, db: AsyncSession
) -> None:
    problem(
        await client.get(
            f"/api/v1/outflows?org_id={world.county.id}", headers=world.branch_admin.headers
        ),
        404,
        "org.not_found",
    )
    problem(
        await client.get("/api/v1/outflows?org_id=999999999", headers=world.county_admin.headers),
        404,
        "org.not_found",
    )
    # The scope answers before a garbled cursor, as before.
    problem(
        await client.get(
            f"/api/v1/outflows?org_id={world.county.id}&cursor=garbage!",
            headers=world.branch_admin.headers,
        ),
        404,
        "org.not_found",
    )
    problem(
        await client.get("/api/v1/outflows?cursor=garbage!", headers=world.branch_admin.headers),
        422,
        "pagination.invalid_cursor",
    )
    # A removed role stops at once: nothing administered is 403, as before.
    assert world.branch_admin.member is not None
    await db.execute(
        delete(RoleAssignment).where(RoleAssignment.member_id == world.branch_admin.member.id)
    )
    await db.commit()
    problem(
        await client.get("/api/v1/outflows", headers=world.branch_admin.headers),
        403,
        "auth.admin_required",
    )


async def test_the_page_answers_alike_on_both_routes(
    client: httpx.AsyncClient, world: World, clock: Clock
) -> None:
    """A phone's request takes the plain route, a browser's the documented one: the
    same pages, filters (a dependency's query parameters) and errors, together when
    several parameters fail."""
    from tests.api.test_plain_routes import _comparable, both_routes

    o = await approve(client, world.branch_admin, await register(client, world.member))
    await consent(client, world.member)
    await checkin(client, world, o)
    county = world.county.id
    for actor, path in (
        (world.county_admin, "/api/v1/outflows"),
        (world.county_admin, f"/api/v1/outflows?org_id={county}&limit=1"),
        (world.county_admin, "/api/v1/outflows?status=active&consent=true&reason=work"),
        (world.county_admin, "/api/v1/outflows?q=%E5%BC%A0&departed_from=2020-01-01"),
        (world.branch_admin, "/api/v1/outflows?flag=report_overdue"),
        (world.branch_admin, f"/api/v1/outflows?org_id={county}"),
        (world.county_admin, "/api/v1/outflows?status=nonsense"),
        (world.county_admin, "/api/v1/outflows?status=nonsense&limit=0&departed_to=x"),
        (world.county_admin, "/api/v1/outflows?destination_region_code=12"),
        (world.county_admin, "/api/v1/outflows?cursor=garbage!"),
        (world.member, "/api/v1/outflows"),
    ):
        plain, browser = await both_routes(client, path, actor.headers)
        assert plain.status_code in (200, 403, 404, 422), (path, plain.text)
        assert _comparable(plain) == _comparable(browser), path
    plain, _ = await both_routes(
        client, "/api/v1/outflows?status=nonsense&limit=0&departed_to=x", world.county_admin.headers
    )
    assert {e["field"] for e in plain.json()["errors"]} == {"status", "limit", "departed_to"}
    unauthenticated, browser = await both_routes(client, "/api/v1/outflows", {})
    assert unauthenticated.status_code == 401
    assert _comparable(unauthenticated) == _comparable(browser)
