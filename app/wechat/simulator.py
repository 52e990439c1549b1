"""A WeChat server simulator speaking the documented wire format.

Mounted at ``/_wechat`` in ``dev`` when no real app id is configured, and used as the
fake server in the tests, so the real :class:`~app.wechat.client.WeChatClient` runs
against it in both. It can never be enabled in ``prod`` (see ``Settings``).

Login codes: ``<openid>`` or ``<openid>.<anything>``; each exact code works once
(WeChat's codes are single-use: 40163 on reuse). Codes that start with ``bad`` give
40029, ``blocked`` 40226. Tests can queue errors with :meth:`WeChatSimulator.fail_next`.

Subscribe messages: while nobody was registered with :meth:`WeChatSimulator.subscribe`
the simulator accepts every send (handy in ``dev``: the app's own grant bookkeeping
still decides what is sent); once a test registers grants it is strict like WeChat
(one send per grant, 43101 otherwise). ``strict_subscriptions`` forces either mode.
``before_send`` lets a test hold a send mid-flight (to kill a worker there).
``GET /_debug/subscribe-messages`` (not a WeChat API) lists what was "delivered", so a
developer running ``make run`` can see the pushes at ``/_wechat/_debug/...``.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TIME_VALUE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
RISKY_WORDS = ("违禁", "risky-text")
REVIEW_WORDS = ("待审", "review-text")


@dataclass
class WeChatSimulator:
    appid: str
    secret: str
    token_ttl_s: int = 7200
    used_codes: set[str] = field(default_factory=set)
    tokens: dict[str, float] = field(default_factory=dict)
    current_token: str | None = None
    # endpoint name -> list of errcodes (or "http500"/"garbage") to answer next
    failures: dict[str, list[Any]] = field(default_factory=dict)
    # openid -> set of template ids the user subscribed to (one-shot, like WeChat)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    phone_codes: dict[str, str] = field(default_factory=dict)
    # None: strict once any subscription was registered, accept-all before that.
    strict_subscriptions: bool | None = None
    before_send: Callable[[dict[str, Any]], Awaitable[None]] | None = None

    def subscribe(self, openid: str, template_id: str, times: int = 1) -> None:
        """The user accepted ``template_id`` in wx.requestSubscribeMessage ``times`` times."""
        self.subscriptions.setdefault(openid, []).extend([template_id] * times)

    @property
    def strict(self) -> bool:
        if self.strict_subscriptions is not None:
            return self.strict_subscriptions
        return bool(self.subscriptions)

    def fail_next(self, endpoint: str, *errors: Any) -> None:
        self.failures.setdefault(endpoint, []).extend(errors)

    def _count(self, name: str) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        queue = self.failures.get(name)
        if queue:
            error = queue.pop(0)
            if error == "http500":
                return JSONResponse({"error": "internal"}, status_code=502)
            return JSONResponse({"errcode": error, "errmsg": f"simulated error {error}"})
        return None

    def _check_token(self, request: Request) -> JSONResponse | None:
        token = request.query_params.get("access_token", "")
        expires = self.tokens.get(token)
        if expires is None:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        if expires < time.time():
            return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
        return None

    # -- endpoints ---------------------------------------------------------------------

    async def jscode2session(self, request: Request) -> JSONResponse:
        if (failure := self._count("jscode2session")) is not None:
            return failure  # type: ignore[no-any-return]
        q = request.query_params
        if q.get("appid") != self.appid or q.get("secret") != self.secret:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        if q.get("grant_type") != "authorization_code":
            return JSONResponse({"errcode": 40002, "errmsg": "invalid grant_type"})
        code = q.get("js_code", "")
        if not code or code.startswith("bad"):
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        if code.startswith("blocked"):
            return JSONResponse({"errcode": 40226, "errmsg": "high risk user"})
        if code in self.used_codes:
            return JSONResponse({"errcode": 40163, "errmsg": "code been used"})
        self.used_codes.add(code)
        openid = code.split(".", 1)[0]
        return JSONResponse(
            {"openid": openid, "session_key": secrets.token_urlsafe(16), "unionid": f"u-{openid}"}
        )

    async def stable_token(self, request: Request) -> JSONResponse:
        if (failure := self._count("stable_token")) is not None:
            return failure  # type: ignore[no-any-return]
        body = await request.json()
        if body.get("appid") != self.appid or body.get("secret") != self.secret:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        now = time.time()
        current = self.current_token
        if body.get("force_refresh") or current is None or self.tokens.get(current, 0) < now + 300:
            current = "AT_" + secrets.token_urlsafe(24)
            self.current_token = current
            self.tokens[current] = now + self.token_ttl_s
        return JSONResponse(
            {"access_token": current, "expires_in": int(self.tokens[current] - now)}
        )

    async def msg_sec_check(self, request: Request) -> JSONResponse:
        if (failure := self._count("msg_sec_check")) is not None:
            return failure  # type: ignore[no-any-return]
        if (bad := self._check_token(request)) is not None:
            return bad
        body = await request.json()
        if body.get("version") != 2 or not body.get("openid"):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        content = str(body.get("content", ""))
        suggest, label = "pass", 100
        if any(w in content for w in RISKY_WORDS):
            suggest, label = "risky", 20001
        elif any(w in content for w in REVIEW_WORDS):
            suggest, label = "review", 20002
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"suggest": suggest, "label": label},
                "detail": [],
                "trace_id": secrets.token_hex(8),
            }
        )

    async def subscribe_send(self, request: Request) -> JSONResponse:
        if (failure := self._count("subscribe_send")) is not None:
            return failure  # type: ignore[no-any-return]
        if (bad := self._check_token(request)) is not None:
            return bad
        body = await request.json()
        for key, value in (body.get("data") or {}).items():
            text = str(value.get("value", ""))
            if key.startswith("thing") and len(text) > 20:
                return JSONResponse({"errcode": 47003, "errmsg": f"argument invalid! {key}"})
            if key.startswith("phrase") and len(text) > 5:
                return JSONResponse({"errcode": 47003, "errmsg": f"argument invalid! {key}"})
            if key.startswith("character_string") and (len(text) > 32 or not text.isascii()):
                return JSONResponse({"errcode": 47003, "errmsg": f"argument invalid! {key}"})
            if key.startswith("time") and not TIME_VALUE.fullmatch(text):
                return JSONResponse({"errcode": 47003, "errmsg": f"argument invalid! {key}"})
        if not body.get("touser") or not body.get("template_id"):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        if self.before_send is not None:
            await self.before_send(body)
        touser, template = body.get("touser"), body.get("template_id")
        if self.strict:
            granted = self.subscriptions.get(touser, [])
            if template not in granted:
                return JSONResponse({"errcode": 43101, "errmsg": "user refuse to accept the msg"})
            granted.remove(template)  # one-time subscription: used up by one send
        self.sent.append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": len(self.sent)})

    async def phone_number(self, request: Request) -> JSONResponse:
        if (failure := self._count("getuserphonenumber")) is not None:
            return failure  # type: ignore[no-any-return]
        if (bad := self._check_token(request)) is not None:
            return bad
        body = await request.json()
        code = str(body.get("code", ""))
        phone = self.phone_codes.get(code)
        if phone is None and code.startswith("phone-") and code[6:].isdigit():
            phone = code[6:]
        if phone is None:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": phone,
                    "purePhoneNumber": phone,
                    "countryCode": "86",
                    "watermark": {"timestamp": int(time.time()), "appid": self.appid},
                },
            }
        )

    async def debug_sent(self, request: Request) -> JSONResponse:
        """Not a WeChat API: what the simulator "delivered", newest first (for ``make run``)."""
        try:
            limit = max(1, min(int(request.query_params.get("limit", "50")), 500))
        except ValueError:
            limit = 50
        return JSONResponse({"items": list(reversed(self.sent[-limit:])), "total": len(self.sent)})

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/sns/jscode2session", self.jscode2session, methods=["GET"]),
                Route("/cgi-bin/stable_token", self.stable_token, methods=["POST"]),
                Route("/wxa/msg_sec_check", self.msg_sec_check, methods=["POST"]),
                Route("/cgi-bin/message/subscribe/send", self.subscribe_send, methods=["POST"]),
                Route("/wxa/business/getuserphonenumber", self.phone_number, methods=["POST"]),
                Route("/_debug/subscribe-messages", self.debug_sent, methods=["GET"]),
            ]
        )
