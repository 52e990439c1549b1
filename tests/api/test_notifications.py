"""The in-app inbox and subscribe-message grants, through the HTTP API."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.notify import repository, service
from app.notify.models import Notification, OutboxJob, SubscriptionGrant
from app.notify.schemas import NotificationOut, NotificationPage
from app.notify.templates import TEMPLATE_NAMES
from tests import factories
from tests.api.test_plain_routes import both_routes
from tests.conftest import TransactionSource, problem
from tests.factories import Actor


async def person(db: AsyncSession, settings: Settings, name: str = "王建国") -> Actor:
    home = await factories.org(db, "石垭镇花园村党支部")
    actor = await factories.member_actor(db, settings, home, name)
    # Release the savepoint: a request that fails rolls back only its own work.
    await db.commit()
    return actor


async def inbox_message(
    db: AsyncSession, actor: Actor, title: str = "外出登记已通过", **extra: Any
) -> int:
    notification_id = await service.notify(
        db,
        account_id=actor.account.id,
        template=extra.pop("template", "outflow_approved"),
        title=title,
        body=extra.pop("body", "请在 30 天内到流入地党组织报到"),
        data=extra.pop("data", {"certificate_no": "511621-2026-0001"}),
        **extra,
    )
    await db.commit()
    return notification_id


async def test_anonymous_is_401(client: httpx.AsyncClient) -> None:
    problem(await client.get("/api/v1/me/notifications"), 401, "auth.missing_token")
    problem(await client.post("/api/v1/me/notifications/1/read"), 401, "auth.missing_token")
    problem(await client.post("/api/v1/me/notifications/read-all"), 401, "auth.missing_token")
    problem(await client.get("/api/v1/me/subscriptions"), 401, "auth.missing_token")
    problem(
        await client.post(
            "/api/v1/me/subscriptions", json={"template": "order_status", "accepted": True}
        ),
        401,
        "auth.missing_token",
    )


async def test_notify_writes_inbox_row_and_outbox_job_in_one_transaction(
    db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    notification_id = await inbox_message(db, actor)
    job = (
        await db.execute(
            select(OutboxJob).where(OutboxJob.dedupe_key == f"notification:{notification_id}")
        )
    ).scalar_one()
    assert job.kind == "wechat.subscribe_send"
    assert job.payload == {"notification_id": notification_id}
    assert job.status == "pending"

    # A rolled-back cause leaves neither the message nor the job behind.
    before = (await db.execute(select(func.count()).select_from(OutboxJob))).scalar_one()
    savepoint = await db.begin_nested()
    rolled_back_id = await service.notify(
        db, account_id=actor.account.id, template="report_due", title="不会发送", body="回滚"
    )
    await savepoint.rollback()
    assert await db.get(Notification, rolled_back_id) is None
    after = (await db.execute(select(func.count()).select_from(OutboxJob))).scalar_one()
    assert after == before


async def test_notify_dedupe_key_makes_the_whole_notification_idempotent(
    db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    key = "outflow:42:report_due:2026-11-30"
    first = await inbox_message(db, actor, "定期报告提醒", dedupe_key=key)
    again = await inbox_message(db, actor, "定期报告提醒", dedupe_key=key)
    assert again == first
    jobs = (await db.execute(select(OutboxJob).where(OutboxJob.dedupe_key == key))).scalars()
    assert [j.payload for j in jobs] == [{"notification_id": first}]
    inbox = (
        await db.execute(select(func.count()).where(Notification.account_id == actor.account.id))
    ).scalar_one()
    assert inbox == 1


async def test_notify_member_without_account_is_none(db: AsyncSession, settings: Settings) -> None:
    home = await factories.org(db)
    roster_only = await factories.member(db, settings, home, "未绑定")
    assert (
        await service.notify_member(
            db, member_id=roster_only.id, template="report_due", title="报告", body="请报告"
        )
        is None
    )
    bound = await factories.member(db, settings, home, "已绑定")
    account = await factories.account(db, member=bound)
    notification_id = await service.notify_member(
        db, member_id=bound.id, template="report_due", title="报告", body="请报告"
    )
    assert notification_id is not None
    row = await db.get(Notification, notification_id)
    assert row is not None and row.account_id == account.id


async def test_inbox_newest_first_paginated_with_unread_count(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    ids = [await inbox_message(db, actor, f"消息 {i}") for i in range(5)]

    first = await client.get("/api/v1/me/notifications?limit=2", headers=actor.headers)
    assert first.status_code == 200
    body = first.json()
    assert [n["id"] for n in body["items"]] == [ids[4], ids[3]]
    assert body["unread_count"] == 5
    item = body["items"][0]
    assert item["title"] == "消息 4" and item["read"] is False and item["read_at"] is None
    assert item["template"] == "outflow_approved"
    assert item["data"] == {"certificate_no": "511621-2026-0001"}
    assert item["created_at"].endswith(("Z", "+00:00"))

    seen = [n["id"] for n in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        page = (
            await client.get(
                "/api/v1/me/notifications",
                params={"limit": 2, "cursor": cursor},
                headers=actor.headers,
            )
        ).json()
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(reversed(ids))


async def test_inbox_body_is_the_models_json_on_both_routes(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """The page is shaped as plain dicts and serialized once (app/core/responses.py);
    its bytes are what the pydantic models make of the same rows, whatever the data."""
    actor = await person(db, settings)
    datas: list[dict[str, Any]] = [
        {"certificate_no": "511621-2026-0001"},
        {"order_id": "12", "status": "受理"},  # an id stored as text: an integer in the body
        {"order_id": 7, "big_id": "99999999999999999999"},  # beyond bigint: the model's way
        {"urgent": True},  # a value the model coerces: the model's way
        {},
    ]
    ids = [await inbox_message(db, actor, f"消息 {i}", data=d) for i, d in enumerate(datas)]
    # Whole seconds (no fraction in the timestamp) and a read message.
    await db.execute(
        update(Notification)
        .where(Notification.id == ids[0])
        .values(created_at=func.date_trunc("second", Notification.created_at))
    )
    await db.execute(
        update(Notification).where(Notification.id == ids[1]).values(read_at=func.now())
    )
    await db.commit()

    plain, browser = await both_routes(client, "/api/v1/me/notifications?limit=4", actor.headers)
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"] == "application/json"
    stored = (
        await db.scalars(
            select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id.desc())
        )
    ).all()
    expected = NotificationPage(
        items=[service._out(n) for n in stored[:4]],
        next_cursor=plain.json()["next_cursor"],
        unread_count=4,
    )
    assert plain.content == browser.content == expected.model_dump_json().encode()
    items = plain.json()["items"]
    assert [n["id"] for n in items] == ids[:0:-1]
    assert items[0]["data"] == {} and items[2]["data"]["big_id"] == 99999999999999999999
    assert items[3]["data"] == {"order_id": 12, "status": "受理"} and items[3]["read"] is True
    last = await client.get(
        "/api/v1/me/notifications",
        params={"limit": 4, "cursor": plain.json()["next_cursor"]},
        headers=actor.headers,
    )
    only = NotificationPage(items=[service._out(stored[4])], unread_count=4)
    assert last.content == only.model_dump_json().encode()
    created_at = last.json()["items"][0]["created_at"]
    assert created_at.endswith("Z") and "." not in created_at


async def test_inbox_items_are_the_rows_with_data_parsed(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    """Each item is its row (the statement names its columns as the model's fields)
    with ``data`` parsed as the model would: ids held as text become integers, anything
    else the model would coerce or refuse takes the model's own way."""
    actor = await person(db, settings)
    datas: list[Any] = [
        {"order_id": "１２"},  # not ASCII digits: stays text
        {"order_id": "-5", "n": -3},
        {"order_id": "9223372036854775807", "x": "y"},
        {"order_id": "9223372036854775808"},  # one past bigint: the model's way
        {"big": 9223372036854775808},  # the model's way
        {"a": "1", "b_id": "007"},
    ]
    ids = [await inbox_message(db, actor, f"消息 {i}", data=d) for i, d in enumerate(datas)]
    await db.commit()
    plain, browser = await both_routes(client, "/api/v1/me/notifications", actor.headers)
    assert plain.status_code == 200, plain.text
    stored = (
        await db.scalars(
            select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id.desc())
        )
    ).all()
    expected = NotificationPage(items=[service._out(n) for n in stored], unread_count=len(ids))
    assert plain.content == browser.content == expected.model_dump_json().encode()
    assert plain.json()["items"][0]["data"] == {"a": "1", "b_id": 7}
    _, rows = await repository.inbox_page(
        TransactionSource(db), actor.account.id, unread_only=False, limit=1, before_id=None
    )
    fields = tuple(NotificationOut.model_fields)
    assert tuple(rows[0].keys())[: len(fields)] == fields


async def test_read_marks_once_and_unread_filter(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    older = await inbox_message(db, actor, "旧消息")
    newer = await inbox_message(db, actor, "新消息")

    read = await client.post(f"/api/v1/me/notifications/{older}/read", headers=actor.headers)
    assert read.status_code == 200
    assert read.json()["read"] is True
    first_read_at = read.json()["read_at"]
    assert first_read_at is not None
    again = await client.post(f"/api/v1/me/notifications/{older}/read", headers=actor.headers)
    assert again.json()["read_at"] == first_read_at  # idempotent: first time kept

    unread = (
        await client.get("/api/v1/me/notifications?unread=true", headers=actor.headers)
    ).json()
    assert [n["id"] for n in unread["items"]] == [newer]
    assert unread["unread_count"] == 1

    all_read = await client.post("/api/v1/me/notifications/read-all", headers=actor.headers)
    assert all_read.json() == {"updated": 1, "unread_count": 0}
    row = await db.get(Notification, newer, populate_existing=True)
    assert row is not None and row.read_at is not None


async def test_other_accounts_notification_is_404_and_untouched(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    owner = await person(db, settings, "王建国")
    other = await person(db, settings, "李四")
    notification_id = await inbox_message(db, owner)

    problem(
        await client.post(
            f"/api/v1/me/notifications/{notification_id}/read", headers=other.headers
        ),
        404,
        "notification.not_found",
    )
    listing = (await client.get("/api/v1/me/notifications", headers=other.headers)).json()
    assert listing["items"] == [] and listing["unread_count"] == 0
    row = await db.get(Notification, notification_id, populate_existing=True)
    assert row is not None and row.read_at is None
    problem(
        await client.post("/api/v1/me/notifications/999999999/read", headers=owner.headers),
        404,
        "notification.not_found",
    )


async def test_bad_cursor_and_limit_are_422(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    problem(
        await client.get("/api/v1/me/notifications?cursor=bm90LWpzb24", headers=actor.headers),
        422,
        "pagination.invalid_cursor",
    )
    problem(
        await client.get("/api/v1/me/notifications?limit=101", headers=actor.headers),
        422,
        "validation.failed",
    )


async def test_subscription_accepts_add_one_time_grants(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    url = "/api/v1/me/subscriptions"
    one = await client.post(
        url, json={"template": "order_status", "accepted": True}, headers=actor.headers
    )
    assert one.status_code == 200
    assert one.json()["remaining"] == 1 and one.json()["accepted"] is True
    two = await client.post(
        url, json={"template": "order_status", "accepted": True}, headers=actor.headers
    )
    assert two.json()["remaining"] == 2
    rejected = await client.post(
        url, json={"template": "order_status", "accepted": False}, headers=actor.headers
    )
    # A reject grants nothing new and does not take back earlier grants.
    assert rejected.json() == {**rejected.json(), "remaining": 2, "accepted": False}

    grant = (
        await db.execute(
            select(SubscriptionGrant).where(
                SubscriptionGrant.account_id == actor.account.id,
                SubscriptionGrant.template == "order_status",
            )
        )
    ).scalar_one()
    assert (grant.remaining, grant.accepted_count, grant.rejected_count) == (2, 2, 1)

    listing = (await client.get(url, headers=actor.headers)).json()
    by_template = {item["template"]: item for item in listing["items"]}
    assert set(by_template) == set(TEMPLATE_NAMES)
    assert by_template["order_status"]["remaining"] == 2
    assert by_template["report_due"] == {
        **by_template["report_due"],
        "remaining": 0,
        "accepted": None,
    }


async def test_subscription_retry_with_idempotency_key_counts_once(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    headers = {**actor.headers, "Idempotency-Key": "sub-1"}
    body = {"template": "activity_starting", "accepted": True}
    first = await client.post("/api/v1/me/subscriptions", json=body, headers=headers)
    replay = await client.post("/api/v1/me/subscriptions", json=body, headers=headers)
    assert first.json() == replay.json()
    assert replay.headers.get("idempotent-replayed") == "true"
    grant = (
        await db.execute(
            select(SubscriptionGrant.remaining).where(
                SubscriptionGrant.account_id == actor.account.id
            )
        )
    ).scalar_one()
    assert grant == 1


async def test_subscription_validation(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    actor = await person(db, settings)
    url = "/api/v1/me/subscriptions"
    body = problem(
        await client.post(url, json={"template": "spam", "accepted": True}, headers=actor.headers),
        422,
        "validation.failed",
    )
    assert body["errors"][0]["field"] == "template"
    body = problem(
        await client.post(
            url,
            json={"template": "order_status", "accepted": True, "remaining": 99},
            headers=actor.headers,
        ),
        422,
        "validation.failed",
    )
    assert body["errors"][0]["field"] == "remaining"
    assert (
        await db.execute(
            select(func.count()).where(SubscriptionGrant.account_id == actor.account.id)
        )
    ).scalar_one() == 0


async def test_resident_can_subscribe_and_read(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    resident = await factories.resident_actor(db, settings)
    response = await client.post(
        "/api/v1/me/subscriptions",
        json={"template": "order_status", "accepted": True},
        headers=resident.headers,
    )
    assert response.json()["remaining"] == 1
    await inbox_message(db, resident, "您的诉求已受理", template="order_status")
    listing = (await client.get("/api/v1/me/notifications", headers=resident.headers)).json()
    assert [n["title"] for n in listing["items"]] == ["您的诉求已受理"]


async def test_demo_seed_fills_the_demo_members_inbox_once(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    from app.notify.demo import DEMO_MEMBER_OPENID, seed

    home = await factories.org(db, "石垭镇花园村党支部")
    demo = await factories.member(db, settings, home, "王建国")
    account = await factories.account(db, member=demo, openid=DEMO_MEMBER_OPENID)
    demo_settings = settings.model_copy(update={"demo_data": True})
    await seed(db, demo_settings)
    await seed(db, demo_settings)  # idempotent
    await db.commit()
    actor = await factories.login(db, settings, account, demo)
    inbox = (await client.get("/api/v1/me/notifications", headers=actor.headers)).json()
    assert [n["template"] for n in inbox["items"]] == [
        "activity_starting",
        "report_due",
        "outflow_approved",
    ]
    assert inbox["unread_count"] == 3
    grants = (await client.get("/api/v1/me/subscriptions", headers=actor.headers)).json()
    assert sum(g["remaining"] for g in grants["items"]) == 3
