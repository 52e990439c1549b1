"""The one client for WeChat's server API (https://api.weixin.qq.com wire format).

One ``httpx.AsyncClient`` made in the app's lifespan; timeouts on every call; a retry
with backoff on WeChat's ``-1`` (system busy) and on network errors for idempotent calls.
The access token comes from ``stable_token`` and is cached in PostgreSQL; refreshes are
single-flight across processes through an advisory lock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
import orjson
import structlog
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import clock
from app.wechat.errors import BUSY, INVALID_TOKEN, TOKEN_EXPIRED, WeChatError, WeChatUnavailable
from app.wechat.models import WeChatAccessToken

log = structlog.stdlib.get_logger("app.wechat")

# WeChat wants credentials in the query string (access_token, secret, js_code), and httpx
# logs every request URL at INFO: redact them on httpx's logger, before any handler.
_CREDENTIALS = re.compile(r"((?:access_token|secret|js_code|appsecret)=)[^&\s\"']+")


def redact(text: str) -> str:
    return _CREDENTIALS.sub(r"\1***", text)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(str(a)) if "=" in str(a) else a for a in record.args)
        elif isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact(record.msg)
        return True


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, RedactCredentials) for f in _httpx_log.filters):
    _httpx_log.addFilter(RedactCredentials())

TOKEN_LOCK_KEY = 0x77656368  # "wech": advisory lock id for the token refresh
REFRESH_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Session:
    openid: str
    session_key: str
    unionid: str | None


@dataclass(frozen=True)
class ContentVerdict:
    suggest: Literal["pass", "review", "risky"]
    label: int
    trace_id: str | None


class WeChatClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        appid: str,
        secret: str,
        engine: AsyncEngine | None,
        retries: int = 2,
        backoff_s: float = 0.2,
    ) -> None:
        self.http = http
        self.appid = appid
        self.secret = secret
        self.engine = engine
        self.retries = retries
        self.backoff_s = backoff_s
        # This process's copy of the shared token: saves a database round trip per call.
        self._cached: tuple[str, datetime] | None = None

    # -- transport ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        attempts = self.retries + 1 if retry else 1
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(self.backoff_s * (2 ** (attempt - 1)) * (1 + random.random()))
            try:
                content = (
                    orjson.dumps(json) if json is not None else None
                )  # real UTF-8, not \uXXXX escapes
                response = await self.http.request(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers={"Content-Type": "application/json"} if content else None,
                )
            except httpx.HTTPError as error:
                last = WeChatUnavailable(f"{type(error).__name__} calling {path}")
                continue
            if response.status_code >= 500:
                last = WeChatUnavailable(f"HTTP {response.status_code} from {path}")
                continue
            try:
                body = response.json()
            except ValueError:
                last = WeChatUnavailable(f"non-JSON answer from {path}")
                continue
            if not isinstance(body, dict):
                raise WeChatUnavailable(f"unexpected answer from {path}")
            try:
                errcode = int(body.get("errcode", 0) or 0)
            except (TypeError, ValueError):
                # A protocol mismatch, not a blip: retrying would not help.
                raise WeChatUnavailable(f"malformed errcode from {path}") from None
            if errcode == BUSY:
                last = WeChatError(errcode, str(body.get("errmsg", "")))
                continue
            if errcode:
                raise WeChatError(errcode, str(body.get("errmsg", "")))
            return body
        assert last is not None
        raise last

    # -- login -------------------------------------------------------------------------

    async def code2session(self, js_code: str) -> Session:
        body = await self._call(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": self.appid,
                "secret": self.secret,
                "js_code": js_code,
                "grant_type": "authorization_code",
            },
        )
        try:
            return Session(
                openid=str(body["openid"]),
                session_key=str(body["session_key"]),
                unionid=body.get("unionid"),
            )
        except KeyError as error:
            raise WeChatUnavailable("jscode2session answered without openid") from error

    # -- access token ------------------------------------------------------------------

    async def _fetch_stable_token(self, force_refresh: bool = False) -> tuple[str, int]:
        body = await self._call(
            "POST",
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": force_refresh,
            },
        )
        return str(body["access_token"]), int(body.get("expires_in", 7200))

    async def access_token(self, *, invalidate: str | None = None) -> str:
        """A valid access token, from the shared cache or fetched once for everybody."""
        if self.engine is None:
            token, _ = await self._fetch_stable_token()
            return token
        now = clock.now()
        cached = self._cached
        if cached and cached[1] - REFRESH_MARGIN > now and cached[0] != invalidate:
            return cached[0]
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(WeChatAccessToken).where(WeChatAccessToken.appid == self.appid)
                )
            ).first()
        if row and row.expires_at - REFRESH_MARGIN > now and row.access_token != invalidate:
            self._cached = (str(row.access_token), row.expires_at)
            return str(row.access_token)
        async with self.engine.begin() as conn:
            # Single flight: one process refreshes, the others wait and read its result.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": TOKEN_LOCK_KEY})
            row = (
                await conn.execute(
                    select(WeChatAccessToken).where(WeChatAccessToken.appid == self.appid)
                )
            ).first()
            if (
                row
                and row.expires_at - REFRESH_MARGIN > clock.now()
                and row.access_token != invalidate
            ):
                self._cached = (str(row.access_token), row.expires_at)
                return str(row.access_token)
            # stable_token without force_refresh returns the current token, or a new one
            # when it is about to expire: force_refresh is limited (20/day) and never used.
            token, expires_in = await self._fetch_stable_token()
            expires_at = clock.now() + timedelta(seconds=expires_in)
            await conn.execute(
                insert(WeChatAccessToken)
                .values(appid=self.appid, access_token=token, expires_at=expires_at)
                .on_conflict_do_update(
                    index_elements=[WeChatAccessToken.appid],
                    set_={"access_token": token, "expires_at": expires_at, "fetched_at": now},
                )
            )
            log.info("wechat access token refreshed", expires_in=expires_in)
            self._cached = (token, expires_at)
            return token

    async def _with_token(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self.access_token()
        try:
            return await self._call("POST", path, params={"access_token": token}, json=payload)
        except WeChatError as error:
            if error.errcode not in (INVALID_TOKEN, TOKEN_EXPIRED):
                raise
            token = await self.access_token(invalidate=token)
            return await self._call("POST", path, params={"access_token": token}, json=payload)

    # -- server APIs -------------------------------------------------------------------

    async def msg_sec_check(self, openid: str, content: str, scene: int = 2) -> ContentVerdict:
        """Content security check v2. errcode is 0 even for bad text: read ``suggest``."""
        body = await self._with_token(
            "/wxa/msg_sec_check",
            {"version": 2, "openid": openid, "scene": scene, "content": content},
        )
        result = body.get("result") or {}
        suggest = result.get("suggest", "review")
        if suggest not in ("pass", "review", "risky"):
            suggest = "review"
        return ContentVerdict(
            suggest=suggest, label=int(result.get("label", 0) or 0), trace_id=body.get("trace_id")
        )

    async def send_subscribe_message(
        self,
        *,
        touser: str,
        template_id: str,
        data: dict[str, str],
        page: str | None = None,
        miniprogram_state: str = "formal",
    ) -> None:
        payload: dict[str, Any] = {
            "touser": touser,
            "template_id": template_id,
            "data": {k: {"value": v} for k, v in data.items()},
            "miniprogram_state": miniprogram_state,
            "lang": "zh_CN",
        }
        if page:
            payload["page"] = page
        await self._with_token("/cgi-bin/message/subscribe/send", payload)

    async def phone_number(self, code: str) -> str:
        body = await self._with_token("/wxa/business/getuserphonenumber", {"code": code})
        info = body.get("phone_info") or {}
        phone = info.get("purePhoneNumber")
        if not phone:
            raise WeChatUnavailable("getuserphonenumber answered without a number")
        return str(phone)
