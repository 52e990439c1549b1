"""The content-check helper and the simulator's subscribe modes, against the fake server."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import AppError
from app.wechat.client import WeChatClient
from app.wechat.content import check_text
from app.wechat.errors import NOT_SUBSCRIBED, WeChatError
from app.wechat.models import WeChatAccessToken
from app.wechat.simulator import WeChatSimulator


@pytest.fixture
async def wechat(app: FastAPI, engine: AsyncEngine) -> WeChatClient:
    async with engine.begin() as conn:
        await conn.execute(delete(WeChatAccessToken))
    client: WeChatClient = app.state.wechat
    client.backoff_s = 0.001
    return client


async def test_check_text_verdicts(wechat: WeChatClient, simulator: WeChatSimulator) -> None:
    assert await check_text(wechat, "o-1", "小区北门路灯坏了") == "pass"
    assert await check_text(wechat, "o-1", "路灯坏了", "待审 的内容") == "review"
    with pytest.raises(AppError) as raised:
        await check_text(wechat, "o-1", "正常标题", "这里有违禁内容")
    assert (raised.value.code, raised.value.status) == ("content.risky", 422)
    assert raised.value.detail
    assert simulator.calls["msg_sec_check"] == 5


async def test_check_text_skips_empty_and_chunks_long_text(
    wechat: WeChatClient, simulator: WeChatSimulator
) -> None:
    assert await check_text(wechat, "o-1", None, "", "   ") == "pass"
    assert simulator.calls.get("msg_sec_check", 0) == 0
    long_text = "正常内容。" * 600 + "违禁"  # 3002 characters: two calls, risky in the second
    with pytest.raises(AppError):
        await check_text(wechat, "o-1", long_text)
    assert simulator.calls["msg_sec_check"] == 2


async def test_check_text_holds_for_review_when_wechat_is_down(
    wechat: WeChatClient, simulator: WeChatSimulator
) -> None:
    simulator.fail_next("msg_sec_check", "http500", "http500", "http500")
    assert await check_text(wechat, "o-1", "正常内容") == "review"
    assert simulator.calls["msg_sec_check"] == 3  # the client retried, then gave up


async def test_simulator_accepts_all_until_grants_are_registered(
    wechat: WeChatClient, simulator: WeChatSimulator
) -> None:
    data = {"thing1": "测试"}
    await wechat.send_subscribe_message(touser="o-dev", template_id="t-1", data=data)
    assert len(simulator.sent) == 1  # dev: nobody registered, everything goes through

    simulator.subscribe("o-a", "t-1")
    await wechat.send_subscribe_message(touser="o-a", template_id="t-1", data=data)
    with pytest.raises(WeChatError) as raised:
        await wechat.send_subscribe_message(touser="o-a", template_id="t-1", data=data)
    assert raised.value.errcode == NOT_SUBSCRIBED
    assert not raised.value.retryable
    assert len(simulator.sent) == 2

    simulator.strict_subscriptions = False
    await wechat.send_subscribe_message(touser="o-a", template_id="t-1", data=data)
    assert len(simulator.sent) == 3


async def test_simulator_enforces_data_limits(
    wechat: WeChatClient, simulator: WeChatSimulator
) -> None:
    for bad in ({"thing1": "一" * 21}, {"phrase2": "六个字的短语"}, {"time3": "明天上午"}):
        with pytest.raises(WeChatError) as raised:
            await wechat.send_subscribe_message(touser="o-x", template_id="t", data=bad)
        assert raised.value.errcode == 47003
    assert simulator.sent == []


async def test_credentials_in_request_urls_never_reach_the_logs(
    wechat: WeChatClient, simulator: WeChatSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        await wechat.code2session("o-logcheck.1")
        await wechat.send_subscribe_message(touser="o-x", template_id="t", data={"thing1": "x"})
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "httpx")
    assert "access_token=***" in text and "secret=***" in text and "js_code=***" in text
    assert simulator.current_token and simulator.current_token not in text
    assert wechat.secret not in text and "o-logcheck.1" not in text


async def test_simulator_lists_delivered_messages_for_developers(
    wechat: WeChatClient, simulator: WeChatSimulator
) -> None:
    for i in range(3):
        await wechat.send_subscribe_message(
            touser="o-dev", template_id="t", data={"thing1": f"第{i}条"}
        )
    transport = httpx.ASGITransport(app=simulator.asgi())
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        body = (await http.get("/_debug/subscribe-messages?limit=2")).json()
        fallback = (await http.get("/_debug/subscribe-messages?limit=x")).json()
    assert body["total"] == 3
    assert [m["data"]["thing1"]["value"] for m in body["items"]] == ["第2条", "第1条"]
    assert len(fallback["items"]) == 3
