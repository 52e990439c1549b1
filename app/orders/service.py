"""Service orders: submission, the state machine, rating, configuration of categories.

The whole life cycle is the one table :data:`TRANSITIONS` ``{(state, action): Rule}``;
each rule names the next state and the only role that may take the action, and the
guards that check an action's inputs sit beside it in :data:`GUARDS`. Every move locks
the order row, checks ``version``, appends to the timeline and tells the submitter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record as audit
from app.core import clock, pii
from app.core.config import Settings
from app.core.crypto import mask_phone
from app.core.db import Row
from app.core.errors import stale_version
from app.identity.principal import Principal
from app.members import repository as members_repo
from app.orders import errors, time_bank
from app.orders import repository as repo
from app.orders.models import OrderCategory, ServiceOrder
from app.orders.notices import tell_admins, tell_submitter, tell_volunteer
from app.orders.schemas import OrderCreate, RatingIn, TransitionIn
from app.organization.scope import Scope, get_visible_org
from app.wechat.client import WeChatClient
from app.wechat.errors import WeChatError, WeChatUnavailable

log = structlog.stdlib.get_logger("app.orders")

CONTACT_PHONE = "order.contact_phone"  # PII keyring context of the encrypted column
REOPEN_WINDOW = timedelta(days=7)
AUTO_CLOSE_AFTER = timedelta(days=7)

ADMIN = "admin"  # an admin whose subtree holds the order's current organisation
SUBMITTER = "submitter"  # the account that filed the order
SYSTEM = "system"  # scheduled jobs and automatic follow-ups; never a caller


@dataclass(frozen=True)
class Rule:
    to: str
    role: str


TRANSITIONS: dict[tuple[str, str], Rule] = {
    ("submitted", "accept"): Rule("accepted", ADMIN),
    ("submitted", "reject"): Rule("rejected", ADMIN),
    ("submitted", "transfer"): Rule("transferred", ADMIN),
    ("submitted", "cancel"): Rule("cancelled", SUBMITTER),
    ("accepted", "start"): Rule("in_progress", ADMIN),
    ("accepted", "reject"): Rule("rejected", ADMIN),
    ("accepted", "transfer"): Rule("transferred", ADMIN),
    ("in_progress", "transfer"): Rule("transferred", ADMIN),
    ("in_progress", "resolve"): Rule("resolved", ADMIN),
    ("resolved", "reopen"): Rule("in_progress", SUBMITTER),
    ("resolved", "rate"): Rule("closed", SUBMITTER),
    ("resolved", "close"): Rule("closed", SYSTEM),
    # A transfer passes through "transferred" and arrives at once as "submitted" there.
    ("transferred", "arrive"): Rule("submitted", SYSTEM),
}

# Each action belongs to exactly one role, whatever the state: a wrong role is 403
# before the state is looked at, an illegal move for the right role is 409.
ACTION_ROLE: dict[str, str] = {action: rule.role for (_, action), rule in TRANSITIONS.items()}
assert all(ACTION_ROLE[a] == r.role for (_, a), r in TRANSITIONS.items())

STATUS_LABEL = errors.STATE_LABELS


@dataclass
class Move:
    """One requested action with its inputs and who asks for it."""

    order: ServiceOrder
    action: str
    role: str
    actor_account_id: int | None
    now: datetime
    scope: Scope | None = None
    note: str | None = None
    to_org_id: int | None = None
    volunteer_member_id: int | None = None
    hours: Decimal | None = None
    score: int | None = None


# ------------------------------------------------------------------ guards


async def _guard_transfer(session: AsyncSession, move: Move) -> None:
    if not move.note:
        raise errors.field_required("note", "转办须说明原因")
    if move.to_org_id is None or move.to_org_id == move.order.org_id:
        raise errors.transfer_target_invalid()
    if await repo.get_org(session, move.to_org_id) is None:
        raise errors.transfer_target_invalid()


async def _guard_volunteer(session: AsyncSession, move: Move) -> None:
    """A volunteer (assigned on accept, start or resolve) is never the submitter and is a
    member the handling organisation may serve (separation of duties in the time bank)."""
    order = move.order
    if move.volunteer_member_id is None:
        return
    if move.volunteer_member_id == order.submitter_member_id:
        raise errors.volunteer_is_submitter()
    # Callers acting for a person pass his scope; internal callers (demo data) pass none.
    if move.scope is not None and not await repo.member_served_by(
        session, move.scope.principal, order.org_id, move.volunteer_member_id
    ):
        raise errors.volunteer_invalid()


async def _guard_resolve(session: AsyncSession, move: Move) -> None:
    """Resolving needs a reply; hours need a volunteer (see _guard_volunteer) and are
    capped by the category and by the time the order was actually in progress."""
    if not move.note:
        raise errors.field_required("note", "办结须填写给群众的答复")
    if move.hours is not None and move.volunteer_member_id is None:
        raise errors.hours_need_volunteer()
    await _guard_volunteer(session, move)
    order = move.order
    if move.hours is not None:
        cap = await repo.max_hours_per_resolve(session, order.category_id)
        if move.hours > cap:
            raise errors.hours_over_cap(cap)
        since = await repo.in_progress_since(session, order.id)
        elapsed = (move.now - since).total_seconds() / 3600 if since is not None else 0.0
        if move.hours > Decimal(str(max(elapsed, 0.0))):
            raise errors.hours_over_elapsed(max(elapsed, 0.0))


async def _guard_reject(session: AsyncSession, move: Move) -> None:
    if not move.note:
        raise errors.field_required("note", "不予受理须说明原因")


async def _guard_reopen(session: AsyncSession, move: Move) -> None:
    resolved_at = move.order.resolved_at
    if resolved_at is None or move.now - resolved_at > REOPEN_WINDOW:
        raise errors.reopen_window_closed()


async def _guard_rate(session: AsyncSession, move: Move) -> None:
    if move.order.rating_score is not None:
        raise errors.already_rated()


GUARDS: dict[str, Callable[[AsyncSession, Move], Awaitable[None]]] = {
    "accept": _guard_volunteer,
    "start": _guard_volunteer,
    "transfer": _guard_transfer,
    "resolve": _guard_resolve,
    "reject": _guard_reject,
    "reopen": _guard_reopen,
    "rate": _guard_rate,
}


# ------------------------------------------------------------------ the machine


async def apply(session: AsyncSession, move: Move) -> ServiceOrder:
    """Take one action on a locked order: table, guard, effects, timeline, notification."""
    order = move.order
    rule = TRANSITIONS.get((order.status, move.action))
    if rule is None:
        if move.action == "rate" and order.rating_score is not None:
            raise errors.already_rated()
        raise errors.invalid_transition(order.status, move.action)
    assert rule.role == move.role
    guard = GUARDS.get(move.action)
    if guard is not None:
        await guard(session, move)

    before = order.status
    from_org = order.org_id
    order.status = rule.to
    await _effects(session, move)
    await repo.add_event(
        session,
        order,
        action=move.action,
        from_status=before,
        to_status=rule.to,
        actor_account_id=move.actor_account_id,
        actor_role=move.role,
        at=move.now,
        note=move.note,
        from_org_id=from_org,
        to_org_id=move.to_org_id if move.action == "transfer" else from_org,
    )
    if move.action == "transfer":
        await _arrive(session, move, from_org)
    order.version += 1
    order.updated_at = move.now
    await session.flush()
    if move.role != SUBMITTER:
        await tell_submitter(session, order, action=move.action, note=move.note, now=move.now)
    if move.action in ("accept", "start") and move.volunteer_member_id is not None:
        await tell_volunteer(session, order, move.volunteer_member_id)
    return order


async def _effects(session: AsyncSession, move: Move) -> None:
    order, now = move.order, move.now
    if move.action in ("accept", "start") and move.volunteer_member_id is not None:
        order.volunteer_member_id = move.volunteer_member_id
    match move.action:
        case "accept":
            order.accepted_at = now
        case "resolve":
            order.resolved_at = now
            order.reply = move.note
            if move.volunteer_member_id is not None:
                order.volunteer_member_id = move.volunteer_member_id
            if move.hours is not None:  # a reopened order's hours add up
                order.hours = (order.hours or Decimal(0)) + move.hours
            if move.volunteer_member_id is not None and move.hours is not None:
                await time_bank.credit(
                    session,
                    member_id=move.volunteer_member_id,
                    hours=move.hours,
                    order_id=order.id,
                    org_id=order.org_id,
                    actor_account_id=move.actor_account_id,
                )
        case "reject":
            order.reject_reason = move.note
        case "reopen":
            order.resolved_at = None
        case "rate":
            order.rating_score = move.score
            order.rating_comment = move.note
            order.rated_at = now
            order.closed_at = now
        case "close":
            order.closed_at = now


async def _arrive(session: AsyncSession, move: Move, from_org: int) -> None:
    """Second half of a transfer: the order is submitted afresh at the target organisation,
    with the SLA clock restarted under that organisation's category settings."""
    order, now = move.order, move.now
    assert move.to_org_id is not None
    target = await repo.get_org(session, move.to_org_id)
    assert target is not None
    category = _pick(await repo.categories_for_path(session, target.path), order.category_code)
    accept_hours: float
    resolve_hours: float
    if category is not None:
        order.category_id = category.id
        accept_hours, resolve_hours = category.accept_hours, category.resolve_hours
    else:  # the category was switched off there: keep the hours the order came with
        accept_hours = _hours_between(order.received_at, order.accept_due_at)
        resolve_hours = _hours_between(order.received_at, order.due_at)
    rule = TRANSITIONS[(order.status, "arrive")]
    order.status = rule.to
    order.org_id = target.id
    order.received_at = now  # submitted_at stays the resident's first submission
    order.accept_due_at = now + timedelta(hours=accept_hours)
    order.due_at = now + timedelta(hours=resolve_hours)
    order.accepted_at = None
    order.escalated_at = None
    await repo.add_to_trail(session, order.id, target.id)
    await repo.add_event(
        session,
        order,
        action="arrive",
        from_status="transferred",
        to_status=rule.to,
        actor_account_id=move.actor_account_id,
        actor_role=SYSTEM,
        at=now,
        note=f"已转至{target.name}",
        from_org_id=from_org,
        to_org_id=target.id,
    )
    await tell_admins(
        session,
        target.id,
        order,
        title="收到转办诉求",
        body=f"诉求「{order.title}」已转至{target.name}，请及时受理",
        dedupe=f"order:{order.id}:arrive:{order.version}",
    )


def _hours_between(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() / 3600.0, 1.0)


# ------------------------------------------------------------------ categories


def _pick(categories: list[OrderCategory], wanted: str) -> OrderCategory | None:
    for category in categories:
        if wanted in (category.code, category.name):
            return category
    return None


# ------------------------------------------------------------------ submission


async def _content_check(
    session: AsyncSession, wechat: WeChatClient, account_id: int, text: str
) -> str | None:
    """WeChat msg_sec_check v2. Returns a review reason (or None when it passed).

    Risky text is refused (422 ``content.risky``). If WeChat cannot be asked (network,
    5xx, errcode), the order is accepted and marked for review instead: a citizen's
    request must not be lost because a third-party service is down, and admins see
    ``needs_review`` before they act on it.
    """
    openid = await repo.openid_of(session, account_id)
    if openid is None:
        return "content_check_unavailable"
    try:
        verdict = await wechat.msg_sec_check(openid, text)
    except (WeChatError, WeChatUnavailable) as error:
        log.warning("msg_sec_check failed, order marked for review", error=str(error))
        return "content_check_unavailable"
    if verdict.suggest == "risky":
        raise errors.content_risky()
    if verdict.suggest == "review":
        return "content_review"
    return None


async def submit(
    session: AsyncSession,
    settings: Settings,
    wechat: WeChatClient,
    principal: Principal,
    data: OrderCreate,
    *,
    now: datetime | None = None,
) -> ServiceOrder:
    review = await _content_check(
        session, wechat, principal.account_id, f"{data.title}\n{data.description}"
    )
    return await create_order(
        session,
        settings,
        account_id=principal.account_id,
        member_id=principal.member_id,
        data=data,
        review=review,
        now=now,
    )


async def create_order(
    session: AsyncSession,
    settings: Settings,
    *,
    account_id: int,
    member_id: int | None,
    data: OrderCreate,
    review: str | None,
    now: datetime | None = None,
) -> ServiceOrder:
    """Store an order whose text has been checked (``review``: why it needs a look)."""
    now = now or clock.now()
    org = await repo.get_org(session, data.org_id)
    if org is None:
        raise errors.org_not_found()
    category = _pick(await repo.categories_for_path(session, org.path), data.category)
    if category is None:
        raise errors.category_not_found()
    ring = pii.keyring(settings)
    order = ServiceOrder(
        org_id=org.id,
        category_id=category.id,
        category_code=category.code,
        category_name=category.name,
        submitter_account_id=account_id,
        submitter_member_id=member_id,
        title=data.title,
        description=data.description,
        address=data.address,
        lat=data.lat,
        lon=data.lon,
        contact_phone_enc=ring.encrypt(data.contact_phone, context=CONTACT_PHONE),
        contact_phone_masked=mask_phone(data.contact_phone),
        status="submitted",
        version=1,
        needs_review=review is not None,
        review_reason=review,
        submitted_at=now,
        received_at=now,
        accept_due_at=now + timedelta(hours=category.accept_hours),
        due_at=now + timedelta(hours=category.resolve_hours),
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    await repo.add_to_trail(session, order.id, org.id)
    await repo.add_event(
        session,
        order,
        action="submit",
        from_status=None,
        to_status="submitted",
        actor_account_id=account_id,
        actor_role=SUBMITTER,
        at=now,
        to_org_id=org.id,
    )
    await tell_admins(
        session,
        org.id,
        order,
        title="收到新诉求",
        body=f"{category.name}：{order.title}",
        dedupe=f"order:{order.id}:new",
    )
    await session.flush()
    return order


# ------------------------------------------------------------------ transitions


async def _load_for_action(
    session: AsyncSession, scope: Scope, order_id: int, action: str
) -> tuple[ServiceOrder, str]:
    """Lock the order (404 if the caller may not even read it) and decide his role."""
    order = await repo.get_readable(session, scope, order_id, lock=True)
    if order is None:
        raise errors.order_not_found()
    needed = ACTION_ROLE[action]
    mine = order.submitter_account_id == scope.principal.account_id or (
        order.submitter_member_id is not None
        and order.submitter_member_id == scope.principal.member_id
    )
    if needed == SUBMITTER and order.submitter_account_id == scope.principal.account_id:
        return order, SUBMITTER
    if needed == ADMIN and await get_visible_org(session, scope, order.org_id) is not None:
        if mine:  # separation of duties: nobody handles (and credits) his own request
            raise errors.own_order()
        return order, ADMIN
    raise errors.action_forbidden(action)


async def transition(
    session: AsyncSession,
    scope: Scope,
    order_id: int,
    data: TransitionIn,
    *,
    now: datetime | None = None,
) -> ServiceOrder:
    order, role = await _load_for_action(session, scope, order_id, data.action)
    if data.version != order.version:
        raise stale_version()
    return await apply(
        session,
        Move(
            order=order,
            action=data.action,
            role=role,
            actor_account_id=scope.principal.account_id,
            now=now or clock.now(),
            scope=scope,
            note=data.note or None,
            to_org_id=data.to_org_id,
            volunteer_member_id=data.volunteer_member_id,
            hours=data.hours,
        ),
    )


async def rate(
    session: AsyncSession,
    scope: Scope,
    order_id: int,
    data: RatingIn,
    *,
    now: datetime | None = None,
) -> ServiceOrder:
    order, role = await _load_for_action(session, scope, order_id, "rate")
    if data.version != order.version:
        raise stale_version()
    return await apply(
        session,
        Move(
            order=order,
            action="rate",
            role=role,
            actor_account_id=scope.principal.account_id,
            now=now or clock.now(),
            scope=scope,
            note=data.comment or None,
            score=data.score,
        ),
    )


async def reveal_contact_phone(
    session: AsyncSession, settings: Settings, scope: Scope, order_id: int, reason: str
) -> str:
    """Full contact phone for an admin who handles the order; every reveal is audited."""
    order = await repo.get_readable(session, scope, order_id)
    if order is None:
        raise errors.order_not_found()
    if await get_visible_org(session, scope, order.org_id) is None:
        raise errors.action_forbidden("reveal")
    value = pii.keyring(settings).decrypt(order.contact_phone_enc, context=CONTACT_PHONE)
    await audit(
        session,
        actor_account_id=scope.principal.account_id,
        action="order.reveal_contact_phone",
        org_id=order.org_id,
        # A member's request handled elsewhere (a co-managing destination): his own
        # organisation sees who read his phone.
        member_home_org_id=(
            await members_repo.home_org_id_of(session, order.submitter_member_id)
            if order.submitter_member_id is not None
            else None
        ),
        subject_type="service_order",
        subject_id=order.id,
        reason=reason,
    )
    return value


def is_overdue(order: ServiceOrder | Row, now: datetime) -> bool:
    return overdue(order.status, order.due_at, order.accept_due_at, now)


def overdue(status: str, due_at: datetime, accept_due_at: datetime, now: datetime) -> bool:
    """An open order past its due time, or a submitted one past its time to accept."""
    if status not in repo.OPEN_STATUSES:
        return False
    return due_at < now or (status == "submitted" and accept_due_at < now)
