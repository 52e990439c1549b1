"""The OpenAPI document the front end generates its client from.

FastAPI writes what the routes declare; this module makes the document say what the
server does, so that a generated client (openapi-typescript + openapi-fetch, checked in
CI with ``tsc --strict``) needs no casts:

- operationIds are camelCase identifiers named for what the operation does
  (``listMyConsents``), schema names carry no module paths, tags are declared;
- security per operation: exactly the operations that read the bearer token
  (``get_principal`` among their dependencies) require it, the others are public;
- every error response is RFC 9457 ``application/problem+json`` with the ``Problem``
  schema; response headers are documented (``X-Request-ID`` everywhere, ``Retry-After``,
  ``RateLimit``/``RateLimit-Policy``, ``Content-Disposition``, ``Idempotent-Replayed``);
- xlsx downloads and the roster upload are typed as binary with their media types;
- a response model sends every field (no ``exclude_none`` anywhere), so every property
  of a schema used only in responses is required.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import AfterValidator, Field

T = TypeVar("T")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details with a stable machine code",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "给用户看的中文说明"},
        "code": {"type": "string", "examples": ["outflow.already_active"]},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field"],
                "properties": {
                    "field": {"type": "string", "description": "出错的字段，如 lat"},
                    "row": {"type": "integer", "description": "名册导入：出错的行号"},
                    "location": {"type": "string", "examples": ["body", "query", "path"]},
                    "type": {"type": "string", "description": "机器可读的错误类型"},
                    "message": {"type": "string", "description": "中文说明"},
                },
            },
        },
    },
    "additionalProperties": True,
}

_PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
}

SERVERS = [{"url": "http://127.0.0.1:8000", "description": "make run 启动的本地开发服务"}]
LICENSE = {"name": "Proprietary", "identifier": "LicenseRef-branchlink-proprietary"}

TAGS: dict[str, str] = {
    "service": "存活与就绪检查（无需登录）",
    "identity": "微信登录、令牌刷新、当前用户与名册绑定",
    "organization": "党组织树、管理员角色",
    "members": "党员名册（个人信息脱敏，查看明文需说明理由并留痕）",
    "audit": "审计日志",
    "mobility": "流动党员外出登记、报到、定期报告、返回",
    "study": "在线学习、打卡积分、排行榜",
    "activity": "组织生活与活动报名、签到",
    "orders": "订单式服务：群众诉求的受理、转办、办结、评价",
    "time-bank": "志愿服务时间银行",
    "notify": "订阅消息与站内消息",
    "transfers": "组织关系转接：转出审批（介绍信）、接收、办理过程",
}

# Dependencies whose presence tells what an operation needs or offers (by name, so the
# document follows a function that moves between modules).
_BEARER_DEPENDENCIES = frozenset({"get_principal"})
_IDEMPOTENT_DEPENDENCIES = frozenset({"get_idempotency"})

# Route functions whose names do not say what the operation does.
_OPERATION_IDS: dict[str, str] = {
    "wechat_login": "loginWithWechat",
    "refresh_tokens": "refreshTokens",
    "me": "getMe",
    "bind": "bindMe",
    "bind_phone": "bindMyPhone",
    "list_consents": "listMyConsents",
    "give_consent": "giveMyConsent",
    "my_outflow": "getMyOutflow",
    "my_credits": "getMyCredits",
    "my_time_bank": "getMyTimeBank",
    "list_notifications": "listMyNotifications",
    "read_notification": "readMyNotification",
    "read_all_notifications": "readAllMyNotifications",
    "list_subscriptions": "listMySubscriptions",
    "record_subscription": "recordMySubscription",
    "import_template": "downloadImportTemplate",
    "checkin": "checkInStudy",
    "checkin_batch": "checkInStudyBatch",
    "request_checkin": "requestDestinationCheckin",
    "accept_checkin": "acceptDestinationCheckin",
    "refuse_checkin": "refuseDestinationCheckin",
    "relocate": "relocateOutflow",
    "add_report": "addOutflowReport",
    "list_reports": "listOutflowReports",
    "attend": "attendActivity",
    "sign_up": "signUpForActivity",
    "cancel_signup": "cancelMyActivitySignup",
    "roll_call": "getActivityRollCall",
    "current_qr": "getActivityQr",
    "reveal": "revealMember",
    "redeem": "redeemHours",
    "healthz": "checkLiveness",
    "readyz": "checkReadiness",
    "my_outflows": "listMyOutflows",
    "list_templates": "listNotificationTemplates",
    "list_items": "listStudyItems",
    "create_item": "createStudyItem",
    "start_session": "startStudySession",
    "list_children": "listOrgChildren",
    "list_subtree": "listOrgSubtree",
    "list_roles": "listOrgRoles",
    "grant_role": "grantOrgRole",
    "revoke_role": "revokeOrgRole",
    "list_audit": "listAuditEntries",
}
_GET_VERBS = ("list", "get", "export", "download", "check")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def operation_id(route: APIRoute) -> str:
    """The operationId of a route (FastAPI's ``generate_unique_id_function``)."""
    if route.name in _OPERATION_IDS:
        return _OPERATION_IDS[route.name]
    name = _camel(route.name)
    if "GET" in (route.methods or ()) and not name.startswith(_GET_VERBS):
        name = "get" + name[:1].upper() + name[1:]
    return name


def _refuse_null(value: T) -> T:
    if value is None:
        raise ValueError("不能为 null；不修改请不传该字段")
    return value


# A PATCH field that may be left out but, when sent, may not be null:
# ``name: Annotated[Name | None, NotNull] = omittable()``. ``None`` in Python only means
# "not sent"; a null in the body is a 422 naming the field, and the document does not
# call the field nullable.
NotNull = AfterValidator(_refuse_null)


def _not_nullable(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    variants = [v for v in schema.pop("anyOf", []) if v.get("type") != "null"]
    if len(variants) == 1:
        schema.update(variants[0])
    elif variants:
        schema["anyOf"] = variants


def omittable(**kwargs: Any) -> Any:
    """The ``Field`` of a :data:`NotNull` PATCH field."""
    return Field(default=None, json_schema_extra=_not_nullable, **kwargs)


# ---------------------------------------------------------------------------------------


def _dependency_names(dependant: Dependant) -> Iterator[str]:
    for dep in dependant.dependencies:
        name = getattr(dep.call, "__name__", None)
        if name:
            yield name
        yield from _dependency_names(dep)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref.rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _closure(schemas: dict[str, Any], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def _clean_schema_name(name: str) -> str:
    # app__members__schemas__RevealOut -> MembersRevealOut (two models share a name)
    if "__" in name:
        parts = name.split("__")
        domain = parts[1] if len(parts) > 2 else parts[0]
        return "".join(p[:1].upper() + p[1:] for p in domain.split("_")) + parts[-1]
    # Body_importMembers -> ImportMembersBody (FastAPI's form bodies)
    if name.startswith("Body_"):
        rest = name.removeprefix("Body_")
        return rest[:1].upper() + rest[1:] + "Body"
    # Page_MemberOut_ -> MemberOutPage (pydantic's generic models)
    match = re.fullmatch(r"([A-Za-z0-9]+)_([A-Za-z0-9]+)_", name)
    if match:
        return match.group(2) + match.group(1)
    return name


def _rename_schemas(document: dict[str, Any]) -> None:
    schemas: dict[str, Any] = document["components"]["schemas"]
    renames = {old: _clean_schema_name(old) for old in schemas}
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return
    clash = set(renames.values()) & (set(schemas) - set(renames))
    if clash:
        raise RuntimeError(f"OpenAPI schema names clash after renaming: {sorted(clash)}")
    for old, new in renames.items():
        schema = schemas.pop(old)
        schema["title"] = new
        schemas[new] = schema

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[-1]
                if name in renames:
                    node["$ref"] = f"#/components/schemas/{renames[name]}"
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(document)
    document["components"]["schemas"] = dict(sorted(schemas.items()))


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "schema": schema or {"type": "string"}}


HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": _header("请求编号：客户端传入的 X-Request-ID，或服务端生成；报障时请提供"),
    "Retry-After": _header("多少秒后可以重试", {"type": "integer", "minimum": 0}),
    "RateLimit": _header('剩余次数与重置秒数，如 "login-ip";r=9;t=42（IETF RateLimit 头）'),
    "RateLimit-Policy": _header('限流策略，如 "login-ip";q=10;w=60'),
    "Content-Disposition": _header("下载文件名（attachment; filename*=UTF-8''…）"),
    "Idempotent-Replayed": _header(
        "true：这是同一 Idempotency-Key 首次请求的结果重放", {"type": "string", "enum": ["true"]}
    ),
}


def _ref_header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _document_operation(
    operation: dict[str, Any], *, bearer: bool, idempotent: bool, request_schemas: set[str]
) -> None:
    operation["security"] = [{"bearer": []}] if bearer else []
    responses: dict[str, Any] = operation.setdefault("responses", {})
    rate_limited = "429" in responses
    if bearer:
        responses.setdefault("401", {"description": "未登录或令牌已失效"})
    responses.setdefault("422", {"description": "请求数据校验失败"})
    responses.setdefault("4XX", {"description": "其他客户端错误（problem+json）"})
    responses.setdefault("5XX", {"description": "服务暂不可用（problem+json）"})
    for status, response in responses.items():
        headers: dict[str, Any] = response.setdefault("headers", {})
        headers["X-Request-ID"] = _ref_header("X-Request-ID")
        if status[0] in "45":
            response["content"] = _PROBLEM_CONTENT
            if status in ("429", "503", "5XX"):
                headers["Retry-After"] = _ref_header("Retry-After")
        if rate_limited and status in ("200", "201", "429"):
            headers["RateLimit"] = _ref_header("RateLimit")
            headers["RateLimit-Policy"] = _ref_header("RateLimit-Policy")
        if idempotent and status[0] == "2":
            headers["Idempotent-Replayed"] = _ref_header("Idempotent-Replayed")
        content: dict[str, Any] = response.get("content") or {}
        if XLSX in content:
            content[XLSX] = {"schema": {"type": "string", "format": "binary"}}
            headers["Content-Disposition"] = _ref_header("Content-Disposition")
    operation["responses"] = dict(sorted(responses.items()))
    body = operation.get("requestBody", {}).get("content", {})
    form = body.get("multipart/form-data")
    if form:
        request_schemas.update(_refs(form))


def _unique_operation_ids(document: dict[str, Any]) -> None:
    """Two route functions of the same name in two domains: suffix their tag (a name in
    ``_OPERATION_IDS`` is the better fix; tests/api/test_openapi_document.py lists them)."""
    operations = [op for item in document.get("paths", {}).values() for op in item.values()]
    seen: dict[str, int] = {}
    for operation in operations:
        seen[operation["operationId"]] = seen.get(operation["operationId"], 0) + 1
    for operation in operations:
        if seen[operation["operationId"]] > 1:
            tag = (operation.get("tags") or ["default"])[0]
            operation["operationId"] += _pascal(tag.replace("-", "_"))


def _binary_uploads(schemas: dict[str, Any], names: Iterable[str]) -> None:
    for name in names:
        for prop in schemas.get(name, {}).get("properties", {}).values():
            if prop.get("contentMediaType") == "application/octet-stream":
                prop["format"] = "binary"


def _require_response_fields(document: dict[str, Any]) -> None:
    """Schemas reached only from responses: every property is sent, so required."""
    schemas: dict[str, Any] = document["components"]["schemas"]
    outputs: set[str] = set()
    inputs: set[str] = set()
    for path_item in document["paths"].values():
        for operation in path_item.values():
            outputs.update(_refs(operation.get("responses", {})))
            inputs.update(_refs(operation.get("requestBody", {})))
            inputs.update(_refs(operation.get("parameters", [])))
    for name in _closure(schemas, outputs) - _closure(schemas, inputs) - {"Problem"}:
        schema = schemas[name]
        properties = schema.get("properties")
        if properties:
            schema["required"] = sorted(properties)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _notification_variants(schemas: dict[str, Any]) -> None:
    """``NotificationOut`` as a union over ``template``, each with its own ``data``.

    The keys a template reads (app/notify/templates.py) are its documented ``data``
    properties; producers may add more (ids are integers, the rest strings).
    """
    from app.notify.templates import TEMPLATE_NAMES, TEMPLATES

    base = schemas.get("NotificationOut")
    if base is None or "properties" not in base:
        return
    schemas["NotificationBase"] = {**base, "title": "NotificationBase"}
    value = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    variants: dict[str, str] = {}
    for name in TEMPLATE_NAMES:
        template = TEMPLATES.get(name)
        keys = sorted(
            {
                source
                for field in (template.fields if template else ())
                for source in field.sources
                if not source.startswith("@")
            }
        )
        data = f"{_pascal(name)}NotificationData"
        schemas[data] = {
            "title": data,
            "type": "object",
            "description": f"{template.label if template else name}：模板读取的数据",
            "properties": {
                key: {"type": "integer"} if key.endswith("_id") else {"type": "string"}
                for key in keys
            },
            "additionalProperties": value,
        }
        variant = f"{_pascal(name)}Notification"
        schemas[variant] = {
            "title": variant,
            "allOf": [{"$ref": "#/components/schemas/NotificationBase"}],
            "type": "object",
            "required": ["template", "data"],
            "properties": {
                "template": {"type": "string", "const": name},
                "data": {"$ref": f"#/components/schemas/{data}"},
            },
        }
        variants[name] = f"#/components/schemas/{variant}"
    schemas["NotificationOut"] = {
        "title": "NotificationOut",
        "description": "站内消息；data 的内容随 template 而定",
        "oneOf": [{"$ref": ref} for ref in variants.values()],
        "discriminator": {"propertyName": "template", "mapping": variants},
    }


def build_document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
        servers=SERVERS,
        license_info=LICENSE,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "POST /api/v1/auth/wechat/login 返回的 access_token",
        }
    }
    components["headers"] = HEADERS
    document.pop("security", None)

    routes: dict[tuple[str, str], Any] = {
        (method.lower(), str(context.path_format)): context
        for context in routing.iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods or ()
    }
    upload_schemas: set[str] = set()
    used_tags: set[str] = set()
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            route = routes.get((method, path))
            names = set(_dependency_names(route.dependant)) if route else set()
            _document_operation(
                operation,
                bearer=bool(names & _BEARER_DEPENDENCIES),
                idempotent=bool(names & _IDEMPOTENT_DEPENDENCIES),
                request_schemas=upload_schemas,
            )
            used_tags.update(operation.get("tags", []))
    _unique_operation_ids(document)
    _binary_uploads(schemas, upload_schemas)
    _rename_schemas(document)
    _require_response_fields(document)
    _notification_variants(document["components"]["schemas"])
    document["components"]["schemas"] = dict(sorted(document["components"]["schemas"].items()))
    document["tags"] = [
        {"name": tag, "description": TAGS.get(tag, tag)} for tag in sorted(used_tags)
    ]
    return document


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
