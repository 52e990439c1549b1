"""The handler of ``wechat.subscribe_send``: push one notification as a subscribe message.

Runs inside the worker's transaction that holds the job's row lock. It locks the
notification and the account's grant for the template, sends only while the
notification's ``delivery`` is ``pending``, and records the result in the same
transaction, so a committed job is never pushed again:

* no grant left (or no WeChat template, or the account is disabled): ``skipped``, the
  message stays in the in-app inbox only;
* WeChat accepted: ``sent``, one grant used;
* 43101 (the user did not subscribe): ``unsubscribed``, grants zeroed, no retry;
* -1 (busy), a rate or quota limit, a network failure, or no access token (e.g. a
  wrong secret, fixed later): :class:`RetryLater`, the worker backs off; on the final
  attempt ``failed``;
* any other WeChat error (bad template id, bad data): ``failed``, job dead, no retry.

The grant row stays locked until the job commits, so sends to one account for one
template go one after another (the count stays exact, and no send is wasted on a grant
that is already used up); sends to different accounts run in parallel lanes.

Metrics are counted only after the transaction committed (``ctx.count_after_commit``):
a failing counter can neither roll back a delivery WeChat accepted nor cause a resend.

At-least-once edge, stated honestly: if the process dies after WeChat accepted a send
but before this transaction commits, the job is still pending and a later run pushes it
again. That window is one HTTP response plus one COMMIT; nothing is ever lost.
"""

from __future__ import annotations

from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import func

from app.notify import repository
from app.notify.jobs import JobContext, Outcome, RetryLater
from app.notify.models import Notification
from app.notify.templates import TEMPLATES, build_data, template_ids
from app.wechat.errors import (
    NOT_SUBSCRIBED,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    WeChatError,
    WeChatUnavailable,
)

log = structlog.stdlib.get_logger("app.notify")

SENDS = Counter(
    "wechat_subscribe_messages_total", "Subscribe-message outcomes", ["template", "delivery"]
)

# Beyond WeChatError.retryable (-1, expired token): limits that lift by themselves.
TRANSIENT = (RATE_LIMITED, QUOTA_EXCEEDED)


def _finish(ctx: JobContext, notification: Notification, delivery: str) -> None:
    notification.delivery = delivery
    notification.delivered_at = func.now()
    template = notification.template
    ctx.count_after_commit(
        "wechat_subscribe_messages", lambda: SENDS.labels(template, delivery).inc()
    )


async def deliver_subscribe_message(ctx: JobContext, payload: dict[str, Any]) -> Outcome:
    session = ctx.session
    notification = await repository.lock_notification(session, int(payload["notification_id"]))
    if notification is None:
        return Outcome("done", "notification gone")
    if notification.delivery != "pending":
        return Outcome("done", f"already {notification.delivery}")
    template = TEMPLATES.get(notification.template)
    account = await repository.account_for_delivery(session, notification.account_id)
    if template is None or account is None:
        _finish(ctx, notification, "skipped")
        await session.flush()
        return Outcome("done", "no WeChat template" if template is None else "account disabled")
    grant = await repository.lock_grant(session, notification.account_id, notification.template)
    if grant is None or grant.remaining <= 0:
        _finish(ctx, notification, "skipped")
        await session.flush()
        return Outcome("done", "no subscription grant: inbox only")

    data = build_data(
        template,
        data={k: str(v) for k, v in (notification.data or {}).items()},
        title=notification.title,
        body=notification.body,
        created_at=notification.created_at,
    )
    try:
        await ctx.wechat.access_token()  # no token is our problem, not the message's: retry
    except (WeChatError, WeChatUnavailable) as error:
        if not ctx.final_attempt:
            raise RetryLater(f"no access token: {error}") from error
        _finish(ctx, notification, "failed")
        await session.flush()
        return Outcome("dead", f"no access token: {error}"[:300])
    try:
        await ctx.wechat.send_subscribe_message(
            touser=account.openid,
            template_id=template_ids().for_template(template.name),
            data=data,
            page=notification.page or template.page,
            miniprogram_state="formal" if ctx.settings.env == "prod" else "developer",
        )
    except WeChatError as error:
        if error.errcode == NOT_SUBSCRIBED:
            grant.remaining = 0
            _finish(ctx, notification, "unsubscribed")
            await session.flush()
            return Outcome("done", "43101: user not subscribed")
        if (error.retryable or error.errcode in TRANSIENT) and not ctx.final_attempt:
            raise RetryLater(f"wechat errcode {error.errcode}") from error
        _finish(ctx, notification, "failed")
        await session.flush()
        return Outcome("dead", f"wechat errcode {error.errcode}: {error.errmsg}"[:300])
    except WeChatUnavailable as error:
        if not ctx.final_attempt:
            raise RetryLater(str(error)) from error
        _finish(ctx, notification, "failed")
        await session.flush()
        return Outcome("dead", str(error)[:300])
    grant.remaining -= 1
    _finish(ctx, notification, "sent")
    await session.flush()
    log.info("subscribe message sent", notification_id=notification.id, template=template.name)
    return Outcome("done", "sent")
