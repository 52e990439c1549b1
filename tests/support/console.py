"""Logging a test client in to the web console the way a browser does."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def console_login(client: httpx.AsyncClient, admin_headers: dict[str, str]) -> str:
    """Ask for a ticket, confirm it as the admin (the mini-program), poll: the client
    holds the session cookie afterwards. Returns the pages' CSRF token."""
    client.cookies.clear()
    ticket = (await client.post("/api/v1/auth/console/tickets")).json()["ticket"]
    confirmed = await client.post(
        f"/api/v1/auth/console/tickets/{ticket}/confirm", headers=admin_headers
    )
    assert confirmed.status_code == 204, confirmed.text
    polled = await client.get(f"/api/v1/auth/console/tickets/{ticket}")
    assert polled.json()["status"] == "confirmed", polled.text
    page = await client.get("/console/")
    assert page.status_code == 200, page.text
    found = CSRF.search(page.text)
    assert found is not None
    return found.group(1)
