"""Content security for user text (``msg_sec_check`` v2), for orders and reports.

``check_text`` raises 422 ``content.risky`` for text WeChat calls risky and returns
``"review"`` for text a person should look at (the caller stores it flagged). When
WeChat cannot be reached the text is not refused: it comes back as ``"review"`` so a
WeChat outage never blocks a member's report, and a human still sees it.
"""

from __future__ import annotations

from typing import Literal

import structlog

from app.wechat.client import WeChatClient
from app.wechat.errors import WeChatError, WeChatUnavailable, content_risky

log = structlog.stdlib.get_logger("app.wechat")

# msg_sec_check accepts at most 2500 characters per call.
MAX_CHUNK = 2500
# Scenes of msg_sec_check v2: 1 profile, 2 comment, 3 forum, 4 social log.
SCENE_COMMENT = 2


def _chunks(text: str) -> list[str]:
    return [text[i : i + MAX_CHUNK] for i in range(0, len(text), MAX_CHUNK)]


async def check_text(
    wechat: WeChatClient, openid: str, *texts: str | None, scene: int = SCENE_COMMENT
) -> Literal["pass", "review"]:
    """Check each non-empty text; raise ``content.risky`` if any is risky."""
    verdict: Literal["pass", "review"] = "pass"
    for text in texts:
        if text is None or not text.strip():
            continue
        for chunk in _chunks(text):
            try:
                result = await wechat.msg_sec_check(openid, chunk, scene=scene)
            except (WeChatError, WeChatUnavailable) as error:
                log.warning("content check unavailable, text held for review", error=str(error))
                verdict = "review"
                continue
            if result.suggest == "risky":
                raise content_risky()
            if result.suggest == "review":
                verdict = "review"
    return verdict
