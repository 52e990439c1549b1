"""Relation transfers (组织关系转接) through the API: home side approves with a letter of
introduction, the receiving side accepts or refuses; completion moves the member's home
organisation, closes his open outflow as transferred, and scope follows at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry
from app.core.config import Settings
from app.members.models import Member
from app.mobility.models import Outflow
from app.notify.models import Notification
from app.organization.models import DualManagementGrant
from app.transfers.models import RelationTransfer, RelationTransferEvent
from app.transfers.rules import TRANSITIONS
from tests import factories
from tests.api.test_mobility import World, accept, approve, checkin, clock, make_world, register
from tests.clock import Clock
from tests.conftest import problem
from tests.factories import Actor

__all__ = ["clock"]  # the mobility tests' clock (2026-03-02), used by name

BASE = "/api/v1/transfers"


@pytest.fixture
async def world(db: AsyncSession, settings: Settings, clock: Clock) -> World:
    return await make_world(db, settings)


def member_id(w: World) -> int:
    assert w.member.member is not None
    return w.member.member.id


async def request(
    client: httpx.AsyncClient, actor: Actor, to_org_id: int, **over: Any
) -> dict[str, Any]:
    body = {"to_org_id": to_org_id, "reason": "在深圳定居，工作稳定", **over}
    response = await client.post(BASE, json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def move(
    client: httpx.AsyncClient, actor: Actor, t: dict[str, Any], action: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{BASE}/{t['id']}/{action}", json={"version": t["version"], **body}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def row(db: AsyncSession, transfer_id: int) -> RelationTransfer:
    t = (
        await db.execute(
            select(RelationTransfer)
            .where(RelationTransfer.id == transfer_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return t


async def home_of(db: AsyncSession, mid: int) -> tuple[int, int]:
    m = (
        await db.execute(
            select(Member).where(Member.id == mid).execution_options(populate_existing=True)
        )
    ).scalar_one()
    return m.home_org_id, m.version


async def member_ids(client: httpx.AsyncClient, admin: Actor) -> set[int]:
    response = await client.get("/api/v1/members", params={"limit": 100}, headers=admin.headers)
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["items"]}


async def inbox(db: AsyncSession, actor: Actor, template: str) -> list[Notification]:
    rows = await db.execute(
        select(Notification)
        .where(Notification.account_id == actor.account.id, Notification.template == template)
        .order_by(Notification.id)
    )
    return list(rows.scalars())


# ---------------------------------------------------------------------------


async def test_home_approves_receiver_accepts_and_everything_follows(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    """The done-when path: a co-managed mobile member settles at the destination."""
    w = world
    mid = member_id(w)
    outflow = await accept(
        client,
        w,
        await checkin(
            client, w, await approve(client, w.branch_admin, await register(client, w.member))
        ),
    )
    _, member_version = await home_of(db, mid)

    t = await request(
        client, w.branch_admin, w.destination.id, member_id=mid, note="介绍信随后寄出"
    )
    assert (t["status"], t["member"]["id"], t["from_org"]["id"], t["to_org"]["id"]) == (
        "requested",
        mid,
        w.branch.id,
        w.destination.id,
    )
    assert t["requested_by_account_id"] == w.branch_admin.account.id
    # The home side must act: its admins hear of it.
    told = await inbox(db, w.branch_admin, "transfer_requested")
    assert [n.data["transfer_id"] for n in told] == [t["id"]]

    t = await move(client, w.branch_admin, t, "approve", letter_no="岳组转〔2026〕015号")
    assert (t["status"], t["letter_no"]) == ("approved", "岳组转〔2026〕015号")
    assert t["approved_at"] is not None
    # Now the receiving side must act; the member hears his home side agreed.
    assert [n.data["transfer_id"] for n in await inbox(db, w.dest_admin, "transfer_requested")] == [
        t["id"]
    ]
    assert [n.data["result"] for n in await inbox(db, w.member, "transfer_status")] == ["同意转出"]
    assert await home_of(db, mid) == (w.branch.id, member_version)  # nothing moved yet

    done = await move(client, w.dest_admin, t, "accept", reason="同意接收")
    assert (done["status"], done["outflow_id"], done["close_reason"]) == (
        "completed",
        outflow["id"],
        "同意接收",
    )
    assert [(e["action"], e["from_state"], e["to_state"]) for e in done["timeline"]] == [
        ("request", "new", "requested"),
        ("approve", "requested", "approved"),
        ("accept", "approved", "completed"),
    ]
    assert done["timeline"][1]["data"] == {"letter_no": "岳组转〔2026〕015号"}
    assert [e["actor_name"] for e in done["timeline"]] == ["张书记", "张书记", "陈书记"]

    # The member's home organisation changed (one version step), his outflow closed as
    # transferred, and the destination's co-management ended with it.
    assert await home_of(db, mid) == (w.destination.id, member_version + 1)
    closed = (
        await db.execute(
            select(Outflow)
            .where(Outflow.id == outflow["id"])
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    assert closed.status == "transferred"
    assert closed.transfer_suggest_on is None and closed.report_due_on is None
    grants = (
        await db.execute(
            select(DualManagementGrant.ended_at).where(DualManagementGrant.member_id == mid)
        )
    ).scalars()
    assert all(ended is not None for ended in grants)

    # Scope follows at once: the old branch no longer sees him, the new home does and
    # may change him.
    problem(
        await client.get(f"/api/v1/members/{mid}", headers=w.branch_admin.headers),
        404,
        "member.not_found",
    )
    assert mid not in await member_ids(client, w.branch_admin)
    assert mid not in await member_ids(client, w.county_admin)
    assert mid in await member_ids(client, w.dest_admin)
    seen = await client.get(f"/api/v1/members/{mid}", headers=w.dest_admin.headers)
    assert seen.status_code == 200 and seen.json()["home_org_id"] == w.destination.id
    renamed = await client.patch(
        f"/api/v1/members/{mid}",
        json={"version": seen.json()["version"], "phone": "13912340000"},
        headers=w.dest_admin.headers,
    )
    assert renamed.status_code == 200, renamed.text

    # Ledgers: the old branch keeps the closed outflow in its history; the transfer is
    # in both sides' lists and its detail, with the audit entry on both sides.
    ledger = await client.get(
        "/api/v1/outflows", params={"status": "transferred"}, headers=w.branch_admin.headers
    )
    assert [o["id"] for o in ledger.json()["items"]] == [outflow["id"]]
    for admin, direction in ((w.branch_admin, "out"), (w.dest_admin, "in")):
        listed = await client.get(BASE, params={"direction": direction}, headers=admin.headers)
        assert [i["id"] for i in listed.json()["items"]] == [t["id"]], direction
        assert (await client.get(f"{BASE}/{t['id']}", headers=admin.headers)).status_code == 200
        audit = await client.get("/api/v1/audit", params={"limit": 100}, headers=admin.headers)
        assert "transfer.completed" in {e["action"] for e in audit.json()["items"]}
    # The member and the requester hear of the completion.
    assert [n.data["result"] for n in await inbox(db, w.member, "transfer_status")] == [
        "同意转出",
        "已完成",
    ]
    assert [n.data["result"] for n in await inbox(db, w.branch_admin, "transfer_status")] == [
        "已完成"
    ]
    mine = await client.get("/api/v1/me/transfers", headers=w.member.headers)
    assert [(i["id"], i["status"]) for i in mine.json()["items"]] == [(t["id"], "completed")]


async def test_member_asks_for_himself_one_open_at_a_time_and_withdraws(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    w = world
    mid = member_id(w)
    t = await request(client, w.member, w.destination.id)
    assert t["member"]["id"] == mid and t["requested_by_account_id"] == w.member.account.id
    for actor in (w.member, w.branch_admin):
        again = await client.post(
            BASE,
            json={"member_id": mid, "to_org_id": w.other_county.id, "reason": "再申请"},
            headers=actor.headers,
        )
        problem(again, 409, "transfer.already_open")
    assert len((await db.execute(select(RelationTransfer.id))).all()) == 1

    t = await move(client, w.branch_admin, t, "approve", letter_no="015")
    gone = await move(client, w.member, t, "withdraw", reason="暂不转接")
    assert (gone["status"], gone["close_reason"]) == ("withdrawn", "暂不转接")
    assert (await row(db, t["id"])).status == "withdrawn"
    assert await home_of(db, mid) == (w.branch.id, 1)
    assert [n.data["result"] for n in await inbox(db, w.member, "transfer_status")] == ["同意转出"]
    # Withdrawn is over: he may ask again; when his branch withdraws it, he is told.
    again = await request(client, w.member, w.other_county.id)
    assert again["status"] == "requested"
    await move(client, w.branch_admin, again, "withdraw", reason="申请材料不全，请补充后再申请")
    told = await inbox(db, w.member, "transfer_status")
    assert [n.data["result"] for n in told] == ["同意转出", "已撤回"]
    assert "申请材料不全" in told[-1].body


async def test_reject_and_refuse_need_a_reason_and_tell_the_member_and_requester(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    w = world
    mid = member_id(w)
    t = await request(client, w.county_admin, w.destination.id, member_id=mid)
    missing = await client.post(
        f"{BASE}/{t['id']}/reject", json={"version": t["version"]}, headers=w.branch_admin.headers
    )
    assert [e["field"] for e in problem(missing, 422, "validation.failed")["errors"]] == ["reason"]
    rejected = await move(client, w.branch_admin, t, "reject", reason="党费未缴清")
    assert (rejected["status"], rejected["close_reason"]) == ("rejected", "党费未缴清")
    member_told = await inbox(db, w.member, "transfer_status")
    assert [n.data["result"] for n in member_told] == ["未同意"]
    assert "党费未缴清" in member_told[0].body
    assert [n.data["result"] for n in await inbox(db, w.county_admin, "transfer_status")] == [
        "未同意"
    ]

    t = await move(
        client,
        w.branch_admin,
        await request(client, w.member, w.destination.id),
        "approve",
        letter_no="16",
    )
    refused = await move(client, w.dest_admin, t, "refuse", reason="非本辖区常住")
    assert refused["status"] == "refused"
    assert [n.data["result"] for n in await inbox(db, w.member, "transfer_status")][-1] == "未接收"
    assert await home_of(db, mid) == (w.branch.id, 1)
    # The refusal is in both sides' audit logs.
    for admin in (w.branch_admin, w.dest_admin):
        audit = await client.get("/api/v1/audit", params={"limit": 100}, headers=admin.headers)
        assert "transfer.refused" in {e["action"] for e in audit.json()["items"]}


async def test_every_illegal_move_is_409_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    """Table-driven over every state x action, by a superadmin (he is on every side)."""
    w = world
    boss = await factories.superadmin_actor(db, settings)
    path = {
        "requested": [],
        "approved": [("approve", {"letter_no": "L1"})],
        "completed": [("approve", {"letter_no": "L1"}), ("accept", {})],
        "rejected": [("reject", {"reason": "不同意"})],
        "refused": [("approve", {"letter_no": "L1"}), ("refuse", {"reason": "不接收"})],
        "withdrawn": [("withdraw", {})],
    }
    bodies = {
        "approve": {"letter_no": "L2"},
        "reject": {"reason": "理由"},
        "accept": {},
        "refuse": {"reason": "理由"},
        "withdraw": {},
    }
    checked = 0
    for state, steps in path.items():
        someone = await factories.member(db, settings, w.branch, f"党员{state}")
        t = await request(client, boss, w.destination.id, member_id=someone.id)
        for action, body in steps:
            t = await move(client, boss, t, action, **body)
        assert t["status"] == state
        for action, body in bodies.items():
            savepoint = await db.begin_nested()
            try:
                response = await client.post(
                    f"{BASE}/{t['id']}/{action}",
                    json={"version": t["version"], **body},
                    headers=boss.headers,
                )
                target = TRANSITIONS.get((state, action))
                if target is None:
                    answer = problem(response, 409, "transfer.invalid_transition")
                    assert (answer["state"], answer["action"]) == (state, action)
                    assert "不能" in answer["detail"]
                    current = await row(db, t["id"])
                    assert (current.status, current.version) == (state, t["version"])
                else:
                    assert response.status_code == 200, (state, action, response.text)
                    assert response.json()["status"] == target
                checked += 1
            finally:
                await savepoint.rollback()
    assert checked == 30


async def test_stale_version_and_bad_input_change_nothing(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    w = world
    t = await request(client, w.member, w.destination.id)
    url = f"{BASE}/{t['id']}"
    problem(
        await client.post(
            f"{url}/approve", json={"version": 7, "letter_no": "L"}, headers=w.branch_admin.headers
        ),
        409,
        "conflict.stale_version",
    )
    for body, field in (
        ({"version": 1}, "letter_no"),
        ({"version": 1, "letter_no": ""}, "letter_no"),
        ({"version": 1, "letter_no": "L", "extra": 1}, "extra"),
        ({"letter_no": "L"}, "version"),
        ({"version": True, "letter_no": "L"}, "version"),
    ):
        answer = problem(
            await client.post(f"{url}/approve", json=body, headers=w.branch_admin.headers),
            422,
            "validation.failed",
        )
        assert field in {e["field"] for e in answer["errors"]}, body
    current = await row(db, t["id"])
    assert (current.status, current.version, current.letter_no) == ("requested", 1, None)
    events = await db.execute(
        select(RelationTransferEvent.action).where(RelationTransferEvent.transfer_id == t["id"])
    )
    assert list(events.scalars()) == ["request"]

    # Requests: to nowhere, to his own branch, without a reason, with control characters.
    other = w.branch_admin
    problem(
        await client.post(BASE, json={"to_org_id": 10**12, "reason": "x"}, headers=other.headers),
        404,
        "transfer.receiving_org_not_found",
    )
    same = await client.post(
        BASE, json={"to_org_id": w.branch.id, "reason": "x"}, headers=other.headers
    )
    assert [e["field"] for e in problem(same, 422, "transfer.same_org")["errors"]] == ["to_org_id"]
    for body, field in (
        ({"to_org_id": w.destination.id}, "reason"),
        ({"to_org_id": w.destination.id, "reason": "a\x00b"}, "reason"),
        ({"to_org_id": "x", "reason": "r"}, "to_org_id"),
    ):
        answer = problem(
            await client.post(BASE, json=body, headers=other.headers), 422, "validation.failed"
        )
        assert [e["field"] for e in answer["errors"]] == [field], body
    assert len((await db.execute(select(RelationTransfer.id))).all()) == 1


async def test_co_managers_serve_but_never_move_him(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    """The destination co-manages the member (accepted check-in): it is no home side."""
    w = world
    mid = member_id(w)
    await accept(
        client,
        w,
        await checkin(
            client, w, await approve(client, w.branch_admin, await register(client, w.member))
        ),
    )
    # He may not ask on the member's behalf; the attempt stays in the home side's log.
    problem(
        await client.post(
            BASE,
            json={"member_id": mid, "to_org_id": w.destination.id, "reason": "转入本组织"},
            headers=w.dest_admin.headers,
        ),
        403,
        "transfer.home_admin_required",
    )
    # A transfer to his own organisation: he is the receiving side, and may not approve.
    t = await request(client, w.member, w.destination.id)
    problem(
        await client.post(
            f"{BASE}/{t['id']}/approve",
            json={"version": t["version"], "letter_no": "L"},
            headers=w.dest_admin.headers,
        ),
        403,
        "transfer.home_admin_required",
    )
    # Nor accept before the home side approved (the table says so, for him too).
    problem(
        await client.post(
            f"{BASE}/{t['id']}/accept", json={"version": t["version"]}, headers=w.dest_admin.headers
        ),
        409,
        "transfer.invalid_transition",
    )
    # The home side cannot accept for the receiving side.
    t = await move(client, w.branch_admin, t, "approve", letter_no="L")
    problem(
        await client.post(
            f"{BASE}/{t['id']}/accept",
            json={"version": t["version"]},
            headers=w.county_admin.headers,
        ),
        403,
        "transfer.receiving_admin_required",
    )
    assert (await row(db, t["id"])).status == "approved"
    refused = (
        await db.execute(
            select(AuditEntry.org_id, AuditEntry.detail).where(
                AuditEntry.action.in_(("transfer.move_refused", "transfer.request_refused"))
            )
        )
    ).all()
    assert sorted((org, str(d.get("action"))) for org, d in refused) == sorted(
        [(w.branch.id, "None"), (w.branch.id, "approve"), (w.destination.id, "accept")]
    )
    # Withdrawing is for the requester, the member and the home side.
    problem(
        await client.post(
            f"{BASE}/{t['id']}/withdraw",
            json={"version": t["version"]},
            headers=w.dest_admin.headers,
        ),
        403,
        "transfer.requester_required",
    )
    # A transfer elsewhere is none of his business: 404 for him.
    await move(client, w.member, t, "withdraw")
    elsewhere = await request(client, w.member, w.other_county.id)
    for call in (
        client.get(f"{BASE}/{elsewhere['id']}", headers=w.dest_admin.headers),
        client.post(
            f"{BASE}/{elsewhere['id']}/approve",
            json={"version": 1, "letter_no": "L"},
            headers=w.dest_admin.headers,
        ),
    ):
        problem(await call, 404, "transfer.not_found")


async def test_anonymous_401_other_subtree_404_and_lists_by_direction(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    w = world
    t = await request(client, w.member, w.destination.id)
    for url in (BASE, f"{BASE}/{t['id']}", "/api/v1/me/transfers"):
        problem(await client.get(url), 401, "auth.missing_token")
    problem(await client.post(BASE, json={}), 401, "auth.missing_token")

    # Another county's admin, another member of the same branch: absent.
    stranger = await factories.member_actor(db, settings, w.branch, "赵六")
    for actor in (w.other_admin, stranger):
        problem(
            await client.get(f"{BASE}/{t['id']}", headers=actor.headers), 404, "transfer.not_found"
        )
        problem(
            await client.post(
                f"{BASE}/{t['id']}/withdraw", json={"version": 1}, headers=actor.headers
            ),
            404,
            "transfer.not_found",
        )
    assert (await client.get(BASE, headers=w.other_admin.headers)).json()["items"] == []
    problem(
        await client.get(BASE, params={"org_id": w.branch.id}, headers=w.other_admin.headers),
        404,
        "org.not_found",
    )
    problem(await client.get(BASE, headers=stranger.headers), 403, "auth.admin_required")
    assert (await client.get("/api/v1/me/transfers", headers=stranger.headers)).json()[
        "items"
    ] == []

    # Directions, the org_id subtree, the status and member filters.
    def ids(response: httpx.Response) -> list[int]:
        assert response.status_code == 200, response.text
        return [i["id"] for i in response.json()["items"]]

    county = w.county_admin.headers
    assert ids(await client.get(BASE, params={"direction": "out"}, headers=county)) == [t["id"]]
    assert ids(await client.get(BASE, params={"direction": "in"}, headers=county)) == []
    assert ids(
        await client.get(BASE, params={"direction": "in"}, headers=w.dest_admin.headers)
    ) == [t["id"]]
    assert ids(
        await client.get(
            BASE, params={"org_id": w.branch.id, "status": "requested"}, headers=county
        )
    ) == [t["id"]]
    assert ids(await client.get(BASE, params={"status": "completed"}, headers=county)) == []
    assert ids(await client.get(BASE, params={"member_id": member_id(w)}, headers=county)) == [
        t["id"]
    ]
    # Paging: two more, newest first, one per page.
    others = [
        await request(
            client,
            w.branch_admin,
            w.destination.id,
            member_id=(await factories.member(db, settings, w.branch, n)).id,
        )
        for n in ("钱七", "孙八")
    ]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(BASE, params=params, headers=county)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [others[1]["id"], others[0]["id"], t["id"]]
    problem(
        await client.get(BASE, params={"cursor": "garbage"}, headers=county),
        422,
        "pagination.invalid_cursor",
    )


async def test_completion_refuses_when_someone_moved_him_meanwhile(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    w = world
    mid = member_id(w)
    t = await move(
        client,
        w.branch_admin,
        await request(client, w.member, w.destination.id),
        "approve",
        letter_no="L",
    )
    sibling = await factories.org(db, "邻村党支部", parent=w.county)
    seen = (await client.get(f"/api/v1/members/{mid}", headers=w.county_admin.headers)).json()
    moved = await client.patch(
        f"/api/v1/members/{mid}",
        json={"version": seen["version"], "home_org_id": sibling.id},
        headers=w.county_admin.headers,
    )
    assert moved.status_code == 200, moved.text
    problem(
        await client.post(
            f"{BASE}/{t['id']}/accept", json={"version": t["version"]}, headers=w.dest_admin.headers
        ),
        409,
        "transfer.home_changed",
    )
    assert (await home_of(db, mid))[0] == sibling.id
    assert (await row(db, t["id"])).status == "approved"


async def test_a_pending_outflow_closes_as_transferred_too(
    client: httpx.AsyncClient, db: AsyncSession, world: World
) -> None:
    w = world
    pending = await register(client, w.member)
    t = await move(
        client,
        w.branch_admin,
        await request(client, w.member, w.destination.id),
        "approve",
        letter_no="L",
    )
    done = await move(client, w.dest_admin, t, "accept")
    assert done["outflow_id"] == pending["id"]
    mine = await client.get(f"/api/v1/outflows/{pending['id']}", headers=w.member.headers)
    assert mine.json()["status"] == "transferred"
    # The old home side can no longer approve it.
    problem(
        await client.post(
            f"/api/v1/outflows/{pending['id']}/approve",
            json={"version": mine.json()["version"]},
            headers=w.branch_admin.headers,
        ),
        409,
        "outflow.invalid_transition",
    )


async def test_the_transfer_suggested_flag_links_to_the_transfer(
    client: httpx.AsyncClient, db: AsyncSession, world: World, clock: Clock
) -> None:
    w = world
    o = await approve(client, w.branch_admin, await register(client, w.member))
    assert o["links"] == []
    clock.advance(days=200)  # away at one place for more than six months
    ledger = await client.get(
        "/api/v1/outflows", params={"flag": "transfer_suggested"}, headers=w.branch_admin.headers
    )
    [item] = ledger.json()["items"]
    [link] = item["links"]
    assert (link["rel"], link["method"], link["href"]) == ("transfer", "POST", BASE)
    mine = await client.get("/api/v1/me/outflow", headers=w.member.headers)
    assert mine.json()["links"] == item["links"]
    # Following it (the admin names the member) starts the transfer.
    followed = await client.post(
        link["href"],
        json={"member_id": item["member"]["id"], "to_org_id": w.destination.id, "reason": "定居"},
        headers=w.branch_admin.headers,
    )
    assert followed.status_code == 201 and followed.json()["status"] == "requested"


async def test_the_demo_has_a_transfer_in_each_state(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from app.demo import seed_demo

    on = settings.model_copy(update={"demo_data": True, "env": "dev"})
    assert (await seed_demo(db, on)).startswith("demo data created")
    assert (await seed_demo(db, on)).startswith("demo data already present")

    async def login(code: str) -> dict[str, str]:
        response = await client.post("/api/v1/auth/wechat/login", json={"code": code})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    county = await login("demo-admin.1")
    items = (await client.get(BASE, params={"limit": 100}, headers=county)).json()["items"]
    by_state = {i["status"]: i["member"]["name"] for i in items}
    assert by_state == {
        "requested": "何文斌",
        "approved": "梁秀兰",
        "completed": "黄志明",
        "refused": "苏建华",
        "rejected": "吴美玲",
        "withdrawn": "吴美玲",
    }
    completed = next(i for i in items if i["status"] == "completed")
    # 黄志明 belongs to 天河 now: the county sees his transfer, no longer him.
    problem(
        await client.get(f"/api/v1/members/{completed['member']['id']}", headers=county),
        404,
        "member.not_found",
    )
    mobile = await login("demo-mobile.1")
    mine = (await client.get("/api/v1/me/transfers", headers=mobile)).json()["items"]
    assert [(i["status"], i["to_org"]["id"]) for i in mine] == [
        ("requested", completed["to_org"]["id"])
    ]


async def test_requests_are_idempotent_and_need_a_member(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings, world: World
) -> None:
    w = world
    body = {"to_org_id": w.destination.id, "reason": "定居"}
    headers = {**w.member.headers, "Idempotency-Key": "transfer-once"}
    first = await client.post(BASE, json=body, headers=headers)
    again = await client.post(BASE, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    problem(
        await client.post(BASE, json={**body, "reason": "另一个原因"}, headers=headers),
        422,
        "idempotency.key_reused",
    )
    assert len((await db.execute(select(RelationTransfer.id))).all()) == 1
    # A resident (no roster member) has no relation to transfer.
    resident = await factories.resident_actor(db, settings)
    problem(
        await client.post(BASE, json=body, headers=resident.headers),
        403,
        "transfer.member_required",
    )
