"""The rotating sign-in QR code shown on the admin's screen.

A token is ``HMAC-SHA256(qr_secret, "activity:<id>:<step>")`` truncated to 16 bytes and
base64url-encoded without padding (22 characters), where ``step`` is the Unix time
divided by 30 s. A scan is accepted for the current step and the previous one only, so
a photographed code stops working within 30–60 seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

STEP_SECONDS = 30
TOKEN_BYTES = 16
# Steps accepted besides the current one (a code shown just before the rotation).
ACCEPTED_PREVIOUS_STEPS = 1


def step_of(now: datetime) -> int:
    return int(now.timestamp()) // STEP_SECONDS


def step_expires_at(step: int) -> datetime:
    return datetime.fromtimestamp((step + 1) * STEP_SECONDS, tz=UTC)


def token_for(secret: str, activity_id: int, step: int) -> str:
    digest = hmac.new(
        secret.encode(), f"activity:{activity_id}:{step}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode().rstrip("=")


def verify(secret: str, activity_id: int, token: str, now: datetime) -> bool:
    """True if ``token`` is the activity's token of the current or the previous step."""
    current = step_of(now)
    matches = [
        hmac.compare_digest(token_for(secret, activity_id, step).encode(), token.encode())
        for step in range(current - ACCEPTED_PREVIOUS_STEPS, current + 1)
    ]
    return any(matches)
