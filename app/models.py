"""Every table, imported once so that ``Base.metadata`` is complete (alembic, tests)."""

from app.audit import models as audit_models
from app.core import idempotency, ratelimit
from app.identity import models as identity_models
from app.members import models as member_models
from app.notify import models as notify_models
from app.organization import models as organization_models
from app.wechat import models as wechat_models

__all__ = [
    "audit_models",
    "idempotency",
    "identity_models",
    "member_models",
    "notify_models",
    "organization_models",
    "ratelimit",
    "wechat_models",
]
