"""The console in headless Chromium against the live app with the demo data.

Scan-to-login through the WeChat simulator, the dashboard's numbers against the API,
approving the pending registration in place, a roster import with bad rows, the ledger's
export opened as a workbook, the projected QR code used to attend through the API, and a
branch secretary meeting the 404 page outside his subtree. Every page is photographed at
1366x768 under the module's temporary directory (the path is printed)."""

from __future__ import annotations

import io
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from tests import factories as f
from tests.browser.conftest import chromium_path
from tests.support.roster import csv_bytes

pytestmark = pytest.mark.browser

VIEWPORT = {"width": 1366, "height": 768}
CODES = itertools.count(1)


async def api(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.request(method, url, **kwargs)


async def get_json(url: str, **kwargs: Any) -> Any:
    response = await api("GET", url, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def api_token(base: str, openid: str) -> dict[str, str]:
    """Log in through the API as a demo account (a fresh simulator code each time)."""
    response = await api(
        "POST",
        f"{base}/api/v1/auth/wechat/login",
        json={"code": f"{openid}.browser-{next(CODES)}"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-screenshots")
    print(f"\nconsole screenshots: {path}")
    return path


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def logged_in(browser: Any, base: str, shots: Path, who: str) -> Any:
    """A new browser context logged in by "scanning" with the simulator as ``who``."""
    context = await browser.new_context(viewport=VIEWPORT, base_url=base, accept_downloads=True)
    page = await context.new_page()
    await page.goto("/console/login")
    assert await page.locator(".qr svg").is_visible()
    await page.screenshot(path=shots / "login.png")
    await page.click(f"button[data-openid='{who}']")
    await page.wait_for_url(f"{base}/console/", timeout=15_000)
    return page


async def test_scan_login_and_the_dashboard_shows_the_api_numbers(
    browser: Any, demo_server: str, shots: Path
) -> None:
    page = await logged_in(browser, demo_server, shots, "demo-admin")
    stats = await get_json(
        f"{demo_server}/api/v1/outflows/stats",
        headers=await api_token(demo_server, "demo-admin"),
    )
    assert await page.inner_text("#n-active") == str(stats["by_status"].get("active", 0))
    assert await page.inner_text("#n-pending") == str(stats["by_status"].get("pending", 0))
    assert int(await page.inner_text("#n-active")) >= 6  # the demo's mobile members
    for flag, count in stats["by_flag"].items():
        assert await page.inner_text(f"#flag-{flag} b") == str(count)
    await page.wait_for_selector("body[data-charts-ready='true']", timeout=15_000)
    assert await page.locator("#chart-provinces canvas").count() == 1
    await page.screenshot(path=shots / "dashboard.png", full_page=True)
    await page.context.close()


async def test_approve_the_pending_registration_in_place(
    browser: Any, demo_server: str, shots: Path
) -> None:
    page = await logged_in(browser, demo_server, shots, "demo-secretary")
    await page.goto("/console/approvals")
    row = page.locator("#registrations tr", has_text="刘芳")
    assert await row.count() == 1
    outflow_id = int(str(await row.get_attribute("id")).removeprefix("outflow-"))
    await page.screenshot(path=shots / "approvals.png", full_page=True)
    await row.locator("button.approve").click()
    await page.wait_for_selector(f"#outflow-{outflow_id} .flash.ok", timeout=10_000)
    certificate = await page.inner_text(f"#outflow-{outflow_id} .cert")
    # Clicking again: the API's stale-version answer, in place.
    await row.locator("button.approve").click()
    await page.wait_for_selector(f"#outflow-{outflow_id} .flash.error", timeout=10_000)
    assert "conflict.stale_version" in await page.inner_text(f"#outflow-{outflow_id} .flash.error")
    await page.screenshot(path=shots / "approvals-decided.png", full_page=True)

    seen = await get_json(
        f"{demo_server}/api/v1/outflows/{outflow_id}",
        headers=await api_token(demo_server, "demo-secretary"),
    )
    assert seen["status"] == "active" and seen["certificate_no"] == certificate
    await page.goto(f"/console/outflows/{outflow_id}")
    assert "批准" in await page.inner_text("#events")
    await page.screenshot(path=shots / "outflow.png", full_page=True)
    await page.context.close()


async def test_roster_import_lists_the_bad_rows(
    browser: Any, demo_server: str, shots: Path, tmp_path: Path
) -> None:
    page = await logged_in(browser, demo_server, shots, "demo-secretary")
    await page.goto("/console/members")
    roster = tmp_path / "名册.csv"
    roster.write_bytes(
        csv_bytes(
            [
                ["浏览器新党员", f.unique_id_number(), "吴阳镇蛤岭村党支部"],
                ["身份证错", "440883199001011234", "吴阳镇蛤岭村党支部"],
                ["", f.unique_id_number(), "吴阳镇蛤岭村党支部"],
            ],
            headers=["姓名", "身份证号", "所在支部"],
        )
    )
    await page.set_input_files("#import-form input[type=file]", str(roster))
    await page.click("#import-form button[type=submit]")
    await page.wait_for_selector("#import-result table.row-errors", timeout=10_000)
    rows = await page.locator("#import-result td.row").all_inner_texts()
    assert sorted(set(rows)) == ["3", "4"]
    assert "import.invalid_rows" in await page.inner_text("#import-result")
    await page.screenshot(path=shots / "roster-import-errors.png", full_page=True)
    await page.goto("/console/members?q=浏览器新党员")
    assert "浏览器新党员" not in await page.inner_text("#member-table")  # all or nothing
    await page.screenshot(path=shots / "members.png", full_page=True)
    await page.context.close()


async def test_export_the_ledger_and_open_the_file(
    browser: Any, demo_server: str, shots: Path, tmp_path: Path
) -> None:
    page = await logged_in(browser, demo_server, shots, "demo-admin")
    await page.goto("/console/outflows?status=active")
    await page.screenshot(path=shots / "outflows.png", full_page=True)
    async with page.expect_download() as download_info:
        await page.click("#export-link")
    download = await download_info.value
    saved = tmp_path / "ledger.xlsx"
    await download.save_as(saved)
    exported = await api(
        "GET",
        f"{demo_server}/api/v1/outflows/export",
        params={"status": "active"},
        headers=await api_token(demo_server, "demo-admin"),
    )
    sheet = load_workbook(saved).active
    assert sheet is not None
    names = {str(c.value) for row in sheet.iter_rows() for c in row if c.value}
    assert "何文斌" in names and "陈国栋" in names
    data_rows = [r for r in sheet.iter_rows(values_only=True) if any(r)]
    api_sheet = load_workbook(io.BytesIO(exported.content)).active
    assert api_sheet is not None
    assert len(data_rows) == len([r for r in api_sheet.iter_rows(values_only=True) if any(r)])
    await page.context.close()


async def test_project_the_qr_page_and_attend_with_its_token(
    browser: Any, demo_server: str, shots: Path
) -> None:
    page = await logged_in(browser, demo_server, shots, "demo-secretary")
    await page.goto("/console/activities")
    await page.screenshot(path=shots / "activities.png", full_page=True)
    link = page.locator("#activity-table tr", has_text="村道环境整治").locator("a").first
    activity_id = int(str(await link.get_attribute("href")).rsplit("/", 1)[1])
    await page.goto(f"/console/activities/{activity_id}/qr")
    token = await page.get_attribute("#qr-code", "data-token")
    assert token and await page.locator("#qr-code svg").is_visible()
    await page.screenshot(path=shots / "activity-qr.png")

    attended = await api(
        "POST",
        f"{demo_server}/api/v1/activities/{activity_id}/attendance",
        json={"qr_token": token},
        headers=await api_token(demo_server, "demo-member"),
    )
    assert attended.status_code == 201, attended.text
    await page.goto(f"/console/activities/{activity_id}")
    assert "王建国" in await page.inner_text("#roll-attended")
    await page.screenshot(path=shots / "activity-roll.png", full_page=True)
    await page.context.close()


async def test_other_pages_render(browser: Any, demo_server: str, shots: Path) -> None:
    page = await logged_in(browser, demo_server, shots, "demo-admin")
    for path, name in (
        ("/console/orders", "orders"),
        ("/console/census", "census"),
        ("/console/audit", "audit"),
    ):
        response = await page.goto(path)
        assert response is not None and response.status == 200, path
        await page.screenshot(path=shots / f"{name}.png", full_page=True)
        if name == "orders":
            assert await page.locator(".order").count() >= 1  # the demo's orders
    # A tablet held upright: the navigation wraps, the charts stack, nothing scrolls sideways.
    await page.set_viewport_size({"width": 768, "height": 1024})
    for path, name in (
        ("/console/", "tablet-dashboard"),
        ("/console/approvals", "tablet-approvals"),
    ):
        await page.goto(path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 768, (path, width)
        await page.screenshot(path=shots / f"{name}.png", full_page=True)
    await page.context.close()


async def test_a_secretary_gets_the_404_page_outside_his_subtree(
    browser: Any, demo_server: str, shots: Path
) -> None:
    admin = await api_token(demo_server, "demo-admin")
    members = f"{demo_server}/api/v1/members"
    found = (await get_json(members, params={"q": "李明华"}, headers=admin))["items"]
    assert len(found) == 1  # the county admin: his home is the county, above the branch
    page = await logged_in(browser, demo_server, shots, "demo-secretary")
    response = await page.goto(f"/console/members/{found[0]['id']}")
    assert response is not None and response.status == 404
    assert "404 · 未找到" in await page.inner_text("main")
    assert "李明华" not in await page.inner_text("body")
    await page.screenshot(path=shots / "not-found.png")
    own = (await get_json(members, params={"q": "王建国"}, headers=admin))["items"][0]
    await page.goto(f"/console/members/{own['id']}")
    assert await page.inner_text("#member-name") == "王建国"
    # His current outflow's reports (the demo's last one ten days ago), as a list.
    assert "暂无报告" not in await page.inner_text("#reports")
    assert "广州" in await page.inner_text("#reports")
    await page.screenshot(path=shots / "member.png", full_page=True)
    await page.context.close()
