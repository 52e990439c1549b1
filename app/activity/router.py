"""HTTP endpoints of the activity domain: the menu, sign-ups, attendance, QR, roll call."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime
from starlette.responses import Response

from app.activity import service
from app.activity.repository import Viewer
from app.activity.schemas import (
    ActivityCreate,
    ActivityKind,
    ActivityOut,
    AttendanceIn,
    AttendanceOut,
    QrOut,
    RollOut,
    SignupOut,
)
from app.core import clock
from app.core.config import Settings
from app.core.db import ReaderDep, SessionDep
from app.core.idempotency import IdempotencyDep
from app.core.pagination import DEFAULT_LIMIT, CursorParam, IdPath, LimitParam, Page
from app.core.responses import json_response
from app.core.routing import DomainRouter, PlainRoute
from app.core.types import ParamId
from app.identity.principal import MemberDep, PrincipalDep
from app.organization.scope import AdminScopeDep

router = DomainRouter(prefix="/activities", tags=["activity"])

ActivityId = IdPath


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _viewer(principal: PrincipalDep, session: SessionDep) -> Viewer:
    return await service.viewer_for(session, principal)


async def _member_viewer(principal: MemberDep, session: SessionDep) -> Viewer:
    return await service.viewer_for(session, principal)


ViewerDep = Annotated[Viewer, Depends(_viewer)]
MemberViewerDep = Annotated[Viewer, Depends(_member_viewer)]


async def list_activities(
    reader: ReaderDep,
    principal: PrincipalDep,
    org_id: Annotated[ParamId | None, Query()] = None,
    kind: ActivityKind | None = None,
    starts_from: Annotated[AwareDatetime | None, Query(description="开始时间不早于（含）")] = None,
    starts_to: Annotated[AwareDatetime | None, Query(description="开始时间早于")] = None,
    limit: LimitParam = DEFAULT_LIMIT,
    cursor: CursorParam = None,
) -> Response:
    """Members: their organisations' menu; admins: activities in their scope.

    Newest start first; use ``starts_from`` for upcoming ones."""
    page = await service.list_activities_page(
        reader,
        principal,
        service.ActivityFilters(
            org_id=org_id, kind=kind, starts_from=starts_from, starts_to=starts_to
        ),
        limit=limit,
        cursor=cursor,
    )
    return json_response(page)


# Plain requests (no Origin) take the plain route (app/core/routing.py); same endpoint.
router.add_api_route("", list_activities, methods=["GET"], route_class_override=PlainRoute)
router.add_api_route("", list_activities, methods=["GET"], response_model=Page[ActivityOut])


@router.post("", status_code=201, response_model=ActivityOut)
async def create_activity(
    body: ActivityCreate, session: SessionDep, scope: AdminScopeDep, idem: IdempotencyDep
) -> Response:
    """Admins create activities for organisations in their scope."""
    return await idem.run(lambda: service.create_activity(session, scope, body), status_code=201)


@router.get("/{activity_id}", response_model=ActivityOut)
async def get_activity(
    activity_id: ActivityId, session: SessionDep, viewer: ViewerDep
) -> ActivityOut:
    return await service.get_activity(session, viewer, activity_id)


@router.post("/{activity_id}/signups", status_code=201, response_model=SignupOut)
async def sign_up(
    activity_id: ActivityId, session: SessionDep, viewer: MemberViewerDep, idem: IdempotencyDep
) -> Response:
    """Sign up (before the start). 409 ``activity.full`` when the capacity is reached;
    signing up again returns the existing sign-up."""
    return await idem.run(
        lambda: service.sign_up(session, viewer, activity_id, clock.now()), status_code=201
    )


@router.delete("/{activity_id}/signups/me", response_model=SignupOut)
async def cancel_signup(
    activity_id: ActivityId, session: SessionDep, viewer: MemberViewerDep
) -> SignupOut:
    """Withdraw one's own sign-up before the start (extension of the contract)."""
    return await service.cancel_signup(session, viewer, activity_id, clock.now())


@router.post("/{activity_id}/attendance", status_code=201, response_model=AttendanceOut)
async def attend(
    activity_id: ActivityId,
    body: AttendanceIn,
    session: SessionDep,
    settings: SettingsDep,
    viewer: MemberViewerDep,
    idem: IdempotencyDep,
) -> Response:
    """Sign in: ``{lat, lon}`` within ``radius_m`` or ``{qr_token}`` from the admin's
    screen, inside the sign-in window. 422 ``activity.window_closed``, ``activity.too_far``
    (with ``distance_m``), ``activity.invalid_qr``. Once per member: a repeat returns the
    first record."""
    return await idem.run(
        lambda: service.attend(session, settings, viewer, activity_id, body, clock.now()),
        status_code=201,
    )


@router.get("/{activity_id}/qr", response_model=QrOut)
async def current_qr(
    activity_id: ActivityId, session: SessionDep, settings: SettingsDep, scope: AdminScopeDep
) -> QrOut:
    """The rotating sign-in QR token (30-second steps) for the admin's screen."""
    return await service.current_qr(session, settings, scope, activity_id, clock.now())


@router.get("/{activity_id}/attendance", response_model=RollOut)
async def roll_call(activity_id: ActivityId, session: SessionDep, scope: AdminScopeDep) -> RollOut:
    """Roll call: signed up, attended and absent (expected = home members of the activity
    organisation's subtree plus everyone signed up)."""
    return await service.roll_call(session, scope, activity_id)
