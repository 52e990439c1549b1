"""Response models of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor_account_id: int | None
    actor_name: str | None
    action: str
    org_id: int | None
    subject_type: str | None
    subject_id: int | None
    reason: str | None
    detail: dict[str, Any]
    request_id: str | None
