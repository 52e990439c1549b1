"""Request and response models of the notify domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.core.pagination import Page
from app.notify.templates import TemplateName


class SubscriptionIn(BaseModel):
    """One template's answer from ``wx.requestSubscribeMessage`` (accept / reject)."""

    model_config = ConfigDict(extra="forbid")

    template: TemplateName = Field(description="我们的模板名，如 order_status")
    accepted: bool = Field(description="用户在订阅弹窗中是否同意（accept 为 true）")


class SubscriptionOut(BaseModel):
    template: TemplateName
    accepted: bool | None = Field(description="最近一次的选择；从未询问过为 null", default=None)
    remaining: int = Field(description="尚可发送的一次性订阅消息条数")
    updated_at: datetime | None = None


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None = None


class TemplateOut(BaseModel):
    name: str = Field(description="我们的模板名，POST /me/subscriptions 的 template")
    template_id: str = Field(description="微信订阅消息模板 id，传给 wx.requestSubscribeMessage")
    purpose: str = Field(description="何时发送（可用于订阅弹窗前的说明）")
    audience: str = Field(description="接收者：member（党员/群众）或 admin（管理员）")
    page: str = Field(description="点击消息打开的小程序页面")


class TemplateList(BaseModel):
    items: list[TemplateOut]
    next_cursor: str | None = None


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    template: TemplateName
    title: str
    body: str
    data: dict[str, str | int] = Field(
        description="模板的数据：键随 template 而定；*_id 为整数，其余为字符串"
    )
    page: str | None
    read: bool
    read_at: datetime | None
    created_at: datetime


class NotificationPage(Page[NotificationOut]):
    unread_count: int = Field(description="未读消息总数（不受分页影响）")


class ReadAllOut(BaseModel):
    updated: int
    unread_count: int
