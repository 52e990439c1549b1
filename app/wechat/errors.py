"""What can go wrong talking to WeChat, in terms the rest of the app can act on."""

from __future__ import annotations

from app.core.errors import AppError

BUSY = -1
INVALID_CODE = 40029
CODE_USED = 40163
RATE_LIMITED = 45011
USER_BLOCKED = 40226
INVALID_TOKEN = 40001
TOKEN_EXPIRED = 42001
NOT_SUBSCRIBED = 43101
QUOTA_EXCEEDED = 45009  # daily API quota used up


class WeChatError(Exception):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        super().__init__(f"wechat errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def retryable(self) -> bool:
        return self.errcode in (BUSY, INVALID_TOKEN, TOKEN_EXPIRED)


class WeChatUnavailable(Exception):
    """WeChat could not be reached or answered garbage (network, 5xx, timeout)."""


def content_risky() -> AppError:
    """User text that WeChat's content check judged risky (422 ``content.risky``)."""
    return AppError("content.risky", 422, "提交的内容含有不当信息，请修改后重试")
