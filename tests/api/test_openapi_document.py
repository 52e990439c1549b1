"""The OpenAPI document says what the server does (what generated clients rely on)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.openapi import XLSX
from tests import factories as f
from tests.conftest import problem

PUBLIC = {
    "checkLiveness",
    "checkReadiness",
    "loginWithWechat",
    "refreshTokens",
    # The web console asks for a login ticket and polls it before anyone is logged in.
    "createConsoleTicket",
    "getConsoleTicketStatus",
}


@pytest.fixture
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_operation_ids_are_unique_identifiers_and_schema_names_are_clean(
    document: dict[str, Any],
) -> None:
    ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][A-Za-z0-9]+", operation_id), operation_id
    assert {"listMyConsents", "getMe", "loginWithWechat", "exportOutflows"} <= set(ids)
    for name in document["components"]["schemas"]:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name), name
    assert "MembersRevealOut" in document["components"]["schemas"]


def test_info_servers_and_tags_are_declared(document: dict[str, Any]) -> None:
    assert document["info"]["license"]["name"]
    assert document["servers"][0]["url"].startswith("http")
    declared = {tag["name"] for tag in document["tags"]}
    used = {tag for _, _, op in _operations(document) for tag in op.get("tags", [])}
    assert used == declared
    assert all(tag["description"] for tag in document["tags"])


def test_every_error_response_is_a_problem_with_a_request_id(document: dict[str, Any]) -> None:
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert {"4XX", "5XX", "422"} <= set(responses), (method, path)
        for status, response in responses.items():
            assert "X-Request-ID" in response["headers"], (method, path, status)
            if status[0] in "45":
                content = response["content"]
                assert content == {"application/problem+json": {"schema": problem_ref}}
    login = document["paths"]["/api/v1/auth/wechat/login"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"]
    assert {"RateLimit", "RateLimit-Policy"} <= set(login["200"]["headers"])
    reveal = document["paths"]["/api/v1/members/{member_id}/reveal"]["post"]["responses"]
    assert {"RateLimit", "RateLimit-Policy"} <= set(reveal["200"]["headers"])
    submit = document["paths"]["/api/v1/orders"]["post"]["responses"]
    assert "Idempotent-Replayed" in submit["201"]["headers"]


def test_binary_bodies_are_typed(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for path in ("/api/v1/outflows/export", "/api/v1/members/import/template"):
        ok = document["paths"][path]["get"]["responses"]["200"]
        assert ok["content"][XLSX]["schema"] == {"type": "string", "format": "binary"}
        assert "Content-Disposition" in ok["headers"]
    upload = document["paths"]["/api/v1/members/import"]["post"]["requestBody"]
    ref = upload["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[ref]["properties"]["file"]["format"] == "binary"


def test_outputs_are_literal_unions_and_always_sent_fields_required(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]

    def enum(schema: str, field: str) -> list[str]:
        prop = schemas[schema]["properties"][field]
        for variant in prop.get("anyOf", [prop]):
            if "enum" in variant:
                return list(variant["enum"])
        raise AssertionError(f"{schema}.{field} is not an enum: {prop}")

    assert enum("MeRoleOut", "role") == ["branch_admin", "org_admin"]
    assert enum("MemberOut", "gender") == ["male", "female"]
    assert enum("OrgOut", "host")[0] == "chamber_of_commerce"
    assert "active:none" in enum("EventOut", "to_state")
    assert "register" in enum("EventOut", "action")
    assert "submitted" in enum("TimelineItem", "to_status")
    union = schemas["NotificationOut"]
    assert "order_status" in union["discriminator"]["mapping"]
    order_status = schemas["OrderStatusNotification"]["properties"]
    assert order_status["template"]["const"] == "order_status"
    data = order_status["data"]["$ref"].rsplit("/", 1)[-1]
    assert "order_title" in schemas[data]["properties"]
    me = schemas["MeOut"]
    assert "active_outflow" in me["required"]
    summary = me["properties"]["active_outflow"]["anyOf"][0]["$ref"].rsplit("/", 1)[-1]
    assert {"id", "status", "version", "flags"} <= set(schemas[summary]["required"])
    assert "token_type" in schemas["TokenPairOut"]["required"]
    assert "next_cursor" in schemas["MemberOutPage"]["required"]
    # Inputs keep their optional fields optional.
    assert "employer" not in schemas["OutflowCreate"]["required"]


def test_patch_fields_that_refuse_null_are_not_nullable(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for schema, fields in {
        "OrgUpdate": ("name", "kind"),
        "MemberUpdate": ("name", "id_number", "gender", "birth_date", "home_org_id", "status"),
    }.items():
        for field in fields:
            prop = schemas[schema]["properties"][field]
            assert "anyOf" not in prop and prop.get("type") != "null", (schema, field)
            assert field not in schemas[schema].get("required", [])
    # A phone may be cleared with null, and says so.
    phone = schemas["MemberUpdate"]["properties"]["phone"]
    assert {"type": "null"} in phone["anyOf"]


async def test_security_is_what_the_server_enforces(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    """Every operation documented with bearer answers 401 without a token; the public
    ones are exactly health, login, refresh and the console's ticket request and poll."""
    public = set()
    for method, path, operation in _operations(document):
        if operation["security"] == []:
            public.add(operation["operationId"])
            continue
        assert operation["security"] == [{"bearer": []}]
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = await client.request(method.upper(), url, json={})
        problem(response, 401, "auth.missing_token")
    assert public == PUBLIC
    assert "security" not in document
    login = await client.post("/api/v1/auth/wechat/login", json={})
    problem(login, 422, "validation.failed")


async def test_a_null_for_a_required_patch_field_names_it_and_changes_nothing(
    client: httpx.AsyncClient, db: AsyncSession, settings: Settings
) -> None:
    county = await f.org(db, "文档测试县委")
    admin = await f.admin_actor(db, settings, county)
    target = await f.member(db, settings, county, "赵六")
    before = (await client.get(f"/api/v1/members/{target.id}", headers=admin.headers)).json()

    response = await client.patch(
        f"/api/v1/members/{target.id}",
        json={"version": before["version"], "name": None, "status": "probationary"},
        headers=admin.headers,
    )
    body = problem(response, 422, "validation.failed")
    assert [e["field"] for e in body["errors"]] == ["name"]
    assert "null" in body["errors"][0]["message"]
    after = (await client.get(f"/api/v1/members/{target.id}", headers=admin.headers)).json()
    assert after == before

    response = await client.patch(
        f"/api/v1/orgs/{county.id}", json={"kind": None}, headers=admin.headers
    )
    body = problem(response, 422, "validation.failed")
    assert [e["field"] for e in body["errors"]] == ["kind"]
    org = (await client.get(f"/api/v1/orgs/{county.id}", headers=admin.headers)).json()
    assert org["kind"] == county.kind and org["version"] == county.version


def test_same_function_name_in_two_domains_gets_distinct_operation_ids() -> None:
    from app.core.openapi import _unique_operation_ids

    document: dict[str, Any] = {
        "paths": {
            "/a": {"post": {"operationId": "withdraw", "tags": ["mobility"]}},
            "/b": {"post": {"operationId": "withdraw", "tags": ["time-bank"]}},
            "/c": {"get": {"operationId": "listThings", "tags": ["x"]}},
        }
    }
    _unique_operation_ids(document)
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert ids == ["withdrawMobility", "withdrawTimeBank", "listThings"]
