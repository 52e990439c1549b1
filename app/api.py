"""All domain routers under ``/api/v1``, in the order requests are matched.

They are included into the application directly (not through an intermediate router):
FastAPI matches included routers lazily, and every extra level costs each request
another pass over the routes. Each is a ``DomainRouter`` (app/core/routing.py), which
declines at a glance a path none of its routes can match.
"""

from fastapi import APIRouter

from app.activity.router import router as activity_router
from app.audit.router import router as audit_router
from app.care.router import router as care_router
from app.census.router import router as census_router
from app.identity.console_router import router as console_login_router
from app.identity.router import router as identity_router
from app.inflows.router import router as inflows_router
from app.me.router import router as me_router
from app.members.roles_router import router as roles_router
from app.members.router import router as members_router
from app.mobility.router import router as mobility_router
from app.notify.router import router as notify_router
from app.orders.router import router as orders_router
from app.orders.time_bank_router import router as time_bank_router
from app.organization.router import router as organization_router
from app.study.router import router as study_router
from app.transfers.router import router as transfers_router

API_PREFIX = "/api/v1"

DOMAIN_ROUTERS: tuple[APIRouter, ...] = (
    # What the mini-program calls each time it opens, then logins, then the ledgers:
    # no two domains serve the same path (tests/unit/test_request_path.py), so the
    # order only decides how many domains a request is offered to first.
    study_router,
    me_router,
    activity_router,
    notify_router,
    orders_router,
    time_bank_router,
    mobility_router,
    identity_router,
    console_login_router,
    organization_router,
    roles_router,
    members_router,
    audit_router,
    census_router,
    inflows_router,
    transfers_router,
    care_router,
)
