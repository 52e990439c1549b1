"""Our notification templates and how they map onto WeChat subscribe-message templates.

Domains call ``notify(..., template="order_status", data={...})`` with *our* template
name and plain string data. This module turns that into WeChat's ``template_id`` and
``{"thing2": {"value": ...}}`` body, applying WeChat's per-type limits (``thing`` 20
characters, ``phrase`` 5, ``character_string`` 32, ``time`` as ``YYYY-MM-DD HH:mm``).

The WeChat template ids differ per mini-program: they come from the environment
(``APP_WECHAT_TEMPLATE_ORDER_STATUS=...``); the field keys below are the ones chosen
when the templates were picked in the WeChat console (keep them in sync).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Final, Literal, get_args

from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core import clock

TemplateName = Literal[
    "outflow_approved",
    "outflow_rejected",
    "outflow_registered",
    "outflow_overdue_digest",
    "checkin_requested",
    "checkin_accepted",
    "checkin_refused",
    "report_due",
    "outflow_lost_contact",
    "order_status",
    "order_assigned",
    "order_overdue",
    "activity_starting",
    "inflow_declared",
    "inflow_decided",
    "inflow_prompt",
    "transfer_requested",
    "transfer_status",
    "care_greeting",
    "care_case_requested",
    "care_help_given",
]
TEMPLATE_NAMES: Final[tuple[str, ...]] = get_args(TemplateName)


class TemplateIds(BaseSettings):
    """WeChat template ids per template, e.g. ``APP_WECHAT_TEMPLATE_ORDER_STATUS``."""

    model_config = SettingsConfigDict(
        env_prefix="APP_WECHAT_TEMPLATE_", env_file=".env", extra="ignore"
    )

    outflow_approved: str = "dev-tmpl-outflow-approved"
    outflow_rejected: str = "dev-tmpl-outflow-rejected"
    outflow_registered: str = "dev-tmpl-outflow-registered"
    outflow_overdue_digest: str = "dev-tmpl-outflow-overdue-digest"
    checkin_requested: str = "dev-tmpl-checkin-requested"
    checkin_accepted: str = "dev-tmpl-checkin-accepted"
    checkin_refused: str = "dev-tmpl-checkin-refused"
    report_due: str = "dev-tmpl-report-due"
    outflow_lost_contact: str = "dev-tmpl-outflow-lost-contact"
    order_status: str = "dev-tmpl-order-status"
    order_assigned: str = "dev-tmpl-order-assigned"
    order_overdue: str = "dev-tmpl-order-overdue"
    activity_starting: str = "dev-tmpl-activity-starting"
    inflow_declared: str = "dev-tmpl-inflow-declared"
    inflow_decided: str = "dev-tmpl-inflow-decided"
    inflow_prompt: str = "dev-tmpl-inflow-prompt"
    transfer_requested: str = "dev-tmpl-transfer-requested"
    transfer_status: str = "dev-tmpl-transfer-status"
    care_greeting: str = "dev-tmpl-care-greeting"
    care_case_requested: str = "dev-tmpl-care-case-requested"
    care_help_given: str = "dev-tmpl-care-help-given"

    def for_template(self, name: str) -> str:
        return str(getattr(self, name))


@lru_cache
def template_ids() -> TemplateIds:
    return TemplateIds()


@dataclass(frozen=True)
class Field:
    """One WeChat data field: its key and where its value comes from.

    ``sources`` are tried in order: keys of the notification's ``data``, or ``@title``,
    ``@body`` and ``@created_at`` for the notification's own columns. ``default`` is
    used when none of them has a value.
    """

    key: str
    sources: tuple[str, ...]
    default: str = "-"


@dataclass(frozen=True)
class Template:
    name: str
    label: str
    fields: tuple[Field, ...]
    page: str
    # What the message is about, for the mini-program's subscribe prompt (GET
    # /notify/templates), and who receives it: "member" or "admin".
    purpose: str = ""
    audience: str = "member"


# A field's sources may name its own WeChat key ("thing1"): callers that shape values
# for the card themselves pass them that way; the mapping below stays the one truth.
TEMPLATES: Final[dict[str, Template]] = {
    t.name: t
    for t in (
        Template(
            "outflow_approved",
            "外出登记审核通过",
            (
                Field("thing1", ("thing1", "destination", "@title")),
                Field("phrase2", ("phrase2", "result"), "已通过"),
                Field("character_string3", ("character_string3", "certificate_no")),
                Field("time4", ("time4", "approved_at", "@created_at")),
                Field("thing5", ("thing5", "note", "@body")),
            ),
            "pages/outflow/index",
            purpose="外出登记审批通过，附流动党员活动证编号",
        ),
        Template(
            "outflow_rejected",
            "外出登记未通过",
            (
                Field("thing1", ("thing1", "destination", "@title")),
                Field("phrase2", ("phrase2", "result"), "未通过"),
                Field("thing3", ("thing3", "reason", "@body")),
                Field("time4", ("time4", "rejected_at", "@created_at")),
            ),
            "pages/outflow/index",
            purpose="外出登记未通过或被党组织撤销，附原因",
        ),
        Template(
            "checkin_requested",
            "流动党员报到申请",
            (
                Field("thing1", ("thing1", "member_name", "@title")),
                Field("thing2", ("thing2", "note", "@body")),
                Field("time3", ("time3", "requested_at", "@created_at")),
            ),
            "pages/admin/outflows",
            purpose="流动党员申请到本组织报到，待确认（流入地管理员）",
            audience="admin",
        ),
        Template(
            "checkin_accepted",
            "流入地报到结果",
            (
                Field("thing1", ("thing1", "org_name", "@title")),
                Field("phrase2", ("phrase2", "result"), "已接收"),
                Field("time3", ("time3", "accepted_at", "@created_at")),
                Field("thing4", ("thing4", "note", "@body")),
            ),
            "pages/outflow/index",
            purpose="流入地党组织已接收报到",
        ),
        Template(
            "checkin_refused",
            "流入地报到结果",
            (
                Field("thing1", ("thing1", "org_name", "@title")),
                Field("phrase2", ("phrase2", "result"), "未接收"),
                Field("thing3", ("thing3", "reason", "@body")),
                Field("time4", ("time4", "refused_at", "@created_at")),
            ),
            "pages/outflow/index",
            purpose="流入地党组织未接收报到，附原因",
        ),
        Template(
            "report_due",
            "定期报告提醒",
            (
                Field("thing1", ("thing1", "title", "@title")),
                Field("date2", ("date2", "due_on", "@created_at")),
                Field("thing3", ("thing3", "note", "@body")),
            ),
            "pages/outflow/index",
            purpose="定期报告即将到期提醒",
        ),
        Template(
            "outflow_lost_contact",
            "流动党员失联预警",
            (
                Field("thing1", ("thing1", "member_name", "@title")),
                Field("thing2", ("thing2", "note", "@body")),
                Field("time3", ("time3", "lost_on", "@created_at")),
            ),
            "pages/admin/outflows",
            purpose="流动党员失联预警（上级党委管理员）",
            audience="admin",
        ),
        Template(
            "order_status",
            "服务诉求进度",
            (
                Field("thing1", ("thing1", "order_title", "@title")),
                Field("phrase2", ("phrase2", "status"), "已更新"),
                Field("thing3", ("thing3", "note", "@body")),
                Field("time4", ("time4", "updated_at", "@created_at")),
            ),
            "pages/orders/detail",
            purpose="本人提交的服务诉求进度更新",
        ),
        Template(
            "order_assigned",
            "新的服务诉求",
            (
                Field("thing1", ("thing1", "order_title", "@title")),
                Field("thing2", ("thing2", "note", "@body")),
                Field("time3", ("time3", "assigned_at", "@created_at")),
            ),
            "pages/admin/orders",
            purpose="新的或转来的服务诉求待受理（受理组织管理员）",
            audience="admin",
        ),
        Template(
            "outflow_registered",
            "外出登记待审批",
            (
                Field("thing1", ("thing1", "member_name", "@title")),
                Field("thing2", ("thing2", "destination", "@body")),
                Field("time3", ("time3", "registered_at", "@created_at")),
            ),
            "pages/admin/outflows",
            purpose="本支部党员提交了外出登记，待审批（所在支部管理员）",
            audience="admin",
        ),
        Template(
            "outflow_overdue_digest",
            "流动党员逾期汇总",
            (
                Field("thing1", ("thing1", "summary", "@title")),
                Field("number2", ("number2", "count")),
                Field("date3", ("date3", "day", "@created_at")),
                Field("thing4", ("thing4", "note", "@body")),
            ),
            "pages/admin/outflows",
            purpose="每日汇总：本支部新增逾期未报到、逾期未报告、失联的流动党员（支部管理员）",
            audience="admin",
        ),
        Template(
            "order_overdue",
            "服务诉求超时",
            (
                Field("thing1", ("thing1", "order_title", "@title")),
                Field("thing2", ("thing2", "note", "@body")),
                Field("time3", ("time3", "due_at", "@created_at")),
            ),
            "pages/orders/detail",
            purpose="本组织受理的服务诉求已超过办理时限（受理组织管理员）",
            audience="admin",
        ),
        Template(
            "activity_starting",
            "活动即将开始",
            (
                Field("thing1", ("thing1", "activity_title", "@title")),
                Field("time2", ("time2", "starts_at", "@created_at")),
                Field("thing3", ("thing3", "address", "@body")),
            ),
            "pages/activity/detail",
            purpose="已报名的活动即将开始",
        ),
        Template(
            "inflow_declared",
            "流入党员登记待核实",
            (
                Field("thing1", ("thing1", "member_name", "@title")),
                Field("thing2", ("thing2", "note", "@body")),
                Field("time3", ("time3", "declared_at", "@created_at")),
            ),
            "pages/admin/inflows",
            purpose="有人在本组织进行流入登记（亮身份）或摸排发现名册外党员，待核实（组织管理员）",
            audience="admin",
        ),
        Template(
            "inflow_decided",
            "流入登记审核结果",
            (
                Field("thing1", ("thing1", "org_name", "@title")),
                Field("phrase2", ("phrase2", "result"), "已处理"),
                Field("thing3", ("thing3", "note", "@body")),
                Field("time4", ("time4", "decided_at", "@created_at")),
            ),
            "pages/inflow/index",
            purpose="流入登记已核实或未通过，附原因与下一步提示",
        ),
        Template(
            "inflow_prompt",
            "亮明党员身份提醒",
            (
                Field("thing1", ("thing1", "entity_name", "@title")),
                Field("thing2", ("thing2", "note", "@body")),
                Field("time3", ("time3", "found_at", "@created_at")),
            ),
            "pages/inflow/declare",
            purpose="摸排发现您在组织关系所在地以外的单位工作：亮身份、报到或转接组织关系",
        ),
        Template(
            "transfer_requested",
            "组织关系转接待办理",
            (
                Field("thing1", ("thing1", "member_name", "@title")),
                Field("thing2", ("thing2", "to_org_name", "@body")),
                Field("phrase3", ("phrase3", "step"), "待办理"),
                Field("time4", ("time4", "requested_at", "@created_at")),
            ),
            "pages/admin/transfers",
            purpose="组织关系转接待本组织审批转出或接收（转出、接收党组织管理员）",
            audience="admin",
        ),
        Template(
            "transfer_status",
            "组织关系转接进度",
            (
                Field("thing1", ("thing1", "to_org_name", "@title")),
                Field("phrase2", ("phrase2", "result"), "已更新"),
                Field("thing3", ("thing3", "note", "@body")),
                Field("time4", ("time4", "updated_at", "@created_at")),
            ),
            "pages/transfer/detail",
            purpose="本人的组织关系转接进度：同意转出、完成接收、未同意或未接收",
        ),
        Template(
            "care_greeting",
            "节日问候",
            (
                Field("thing1", ("thing1", "campaign_title", "@title")),
                Field("thing2", ("thing2", "org_name")),
                Field("thing3", ("thing3", "message", "@body")),
                Field("date4", ("date4", "send_on", "@created_at")),
            ),
            "pages/care/greeting",
            purpose="党组织的节日问候、关怀慰问",
        ),
        Template(
            "care_case_requested",
            "困难帮扶申请",
            (
                Field("thing1", ("thing1", "member_name", "@title")),
                Field("phrase2", ("phrase2", "kind_name"), "困难帮扶"),
                Field("time3", ("time3", "requested_at", "@created_at")),
                Field("thing4", ("thing4", "note", "@body")),
            ),
            "pages/admin/care",
            purpose="党员提出困难帮扶申请，待走访（组织关系所在党组织管理员）",
            audience="admin",
        ),
        Template(
            "care_help_given",
            "关怀帮扶记录",
            (
                Field("phrase1", ("phrase1", "form_name"), "关怀帮扶"),
                Field("date2", ("date2", "given_on", "@created_at")),
                Field("thing3", ("thing3", "note", "@body")),
            ),
            "pages/care/case",
            purpose="党组织为您登记了走访、慰问或帮扶",
        ),
    )
}

# WeChat's documented limits per data type (characters).
LIMITS: Final[dict[str, int]] = {
    "thing": 20,
    "phrase": 5,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "name": 10,
    "car_number": 8,
}
_KEY = re.compile(r"^([a-z_]+?)(\d+)$")
_ASCII_SYMBOLS = re.compile(r"[^\x21-\x7e]")
_NUMBER = re.compile(r"[^0-9.]")
_LETTERS = re.compile(r"[^A-Za-z]")


def field_type(key: str) -> str:
    match = _KEY.match(key)
    return match.group(1) if match else key


def _parse_moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=clock.SHANGHAI)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=clock.SHANGHAI)
    return moment.astimezone(clock.SHANGHAI)


def format_value(key: str, value: str) -> str:
    """A value shaped to WeChat's rules for the type named by ``key``'s prefix."""
    kind = field_type(key)
    value = " ".join(value.split())  # no newlines or runs of spaces in a card
    if kind in ("time", "date"):
        moment = _parse_moment(value)
        if moment is None:
            return value[:16]
        return moment.strftime("%Y-%m-%d %H:%M" if kind == "time" else "%Y-%m-%d")
    if kind == "character_string":
        value = _ASCII_SYMBOLS.sub("", value)
    elif kind == "number":
        value = _NUMBER.sub("", value)
    elif kind == "letter":
        value = _LETTERS.sub("", value)
    limit = LIMITS.get(kind)
    if limit is None or len(value) <= limit:
        return value or "-"
    if kind == "thing":
        return value[: limit - 1] + "…"
    return value[:limit]


def _lookup(source: str, data: dict[str, str], columns: dict[str, str]) -> str:
    if source.startswith("@"):
        return columns.get(source[1:], "")
    return str(data.get(source, "") or "")


def build_data(
    template: Template,
    *,
    data: dict[str, str],
    title: str,
    body: str,
    created_at: datetime,
) -> dict[str, str]:
    """WeChat ``data`` values (before wrapping in ``{"value": ...}``) for one message."""
    columns = {"title": title, "body": body, "created_at": created_at.isoformat()}
    values: dict[str, str] = {}
    for field in template.fields:
        raw = next(
            (v for v in (_lookup(s, data, columns) for s in field.sources) if v.strip()),
            field.default,
        )
        values[field.key] = format_value(field.key, raw)
    return values
