"""A tripwire over the whole suite: no response body or log line may carry an unmasked
ID number, a mobile number, a WeChat ``session_key`` or a traceback.

Installed by ``tests/conftest.py`` on every app the tests build and on the root logger.
The only responses allowed to carry full values are the audited reveal endpoints.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9][0-9]{5}(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)
# Not inside a longer alphanumeric run (hex request ids, tokens).
PHONE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")
SESSION_KEY = re.compile(r"session_key")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")

# Audited endpoints whose purpose is to return full values.
ALLOWED_PATHS = (
    re.compile(r"^/api/v1/members/\d+/reveal$"),
    re.compile(r"^/api/v1/orders/\d+/reveal$"),
    re.compile(r"^/api/v1/inflows/\d+/reveal$"),
    re.compile(r"^/_wechat/"),
)
# Probe endpoints of the foundation tests raise on purpose.
PROBE_PATHS = re.compile(r"^/_probe/")


@dataclass
class Findings:
    items: list[str] = field(default_factory=list)

    def scan(self, where: str, text: str, *, tracebacks: bool = True) -> None:
        for name, pattern in (
            ("id_number", ID_NUMBER),
            ("phone", PHONE),
            ("session_key", SESSION_KEY),
        ):
            match = pattern.search(text)
            if match:
                self.items.append(f"{where}: unmasked {name} {match.group(0)!r}")
        if tracebacks and TRACEBACK.search(text):
            self.items.append(f"{where}: traceback")

    def take(self) -> list[str]:
        found, self.items = self.items, []
        return found


FINDINGS = Findings()


class LeakScanMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if any(p.match(path) for p in ALLOWED_PATHS) or PROBE_PATHS.match(path):
            await self.app(scope, receive, send)
            return
        content_type = b""

        async def scanning_send(message: Message) -> None:
            nonlocal content_type
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            elif message["type"] == "http.response.body" and (
                b"json" in content_type or b"text" in content_type
            ):
                body = message.get("body", b"")
                if body:
                    FINDINGS.scan(f"{scope['method']} {path}", body.decode("utf-8", "replace"))
            await send(message)

        await self.app(scope, receive, scanning_send)


class LeakScanHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # pragma: no cover - never break logging
            return
        if "/_probe/" in text or getattr(record, "_probe", False):
            return
        FINDINGS.scan(f"log {record.name}", text)
