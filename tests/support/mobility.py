"""Builders for the mobility tests."""

from __future__ import annotations

from typing import Any


def outflow_body(**over: Any) -> dict[str, Any]:
    """A valid ``POST /outflows`` body (Shenzhen, for work), with ``over`` replacing fields."""
    body: dict[str, Any] = {
        "destination_region_code": "440305",
        "destination_address": "广东省深圳市南山区科技园",
        "reason": "work",
        "departed_on": "2026-03-01",
        "expected_return_on": "2027-02-01",
        "employer": "深圳某科技公司",
        "contact_phone": "13912345678",
    }
    body.update(over)
    return body
