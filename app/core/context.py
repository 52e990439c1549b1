"""Per-request metadata available to services without passing the Request around."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_client_ip: ContextVar[str | None] = ContextVar("client_ip", default=None)


def set_request_meta(request_id: str | None, ip: str | None) -> None:
    _request_id.set(request_id)
    _client_ip.set(ip)


def current_request_meta() -> tuple[str | None, str | None]:
    return _request_id.get(), _client_ip.get()
