"""Every table, imported once so that ``Base.metadata`` is complete (alembic, tests)."""

from app.activity import models as activity_models
from app.audit import models as audit_models
from app.care import models as care_models
from app.census import models as census_models
from app.core import idempotency, ratelimit
from app.identity import models as identity_models
from app.inflows import models as inflows_models
from app.members import models as member_models
from app.mobility import models as mobility_models
from app.notify import models as notify_models
from app.orders import models as orders_models
from app.organization import models as organization_models
from app.study import models as study_models
from app.transfers import models as transfer_models
from app.wechat import models as wechat_models

__all__ = [
    "activity_models",
    "audit_models",
    "care_models",
    "census_models",
    "idempotency",
    "identity_models",
    "inflows_models",
    "member_models",
    "mobility_models",
    "notify_models",
    "orders_models",
    "organization_models",
    "ratelimit",
    "study_models",
    "transfer_models",
    "wechat_models",
]
