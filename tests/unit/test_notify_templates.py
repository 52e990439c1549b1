"""WeChat data shaping, periods and backoff: pure functions of the notify domain."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from app.notify.scheduler import DAILY, HOURLY, MORNING, every
from app.notify.templates import TEMPLATE_NAMES, TEMPLATES, build_data, format_value
from app.notify.worker import WorkerConfig, backoff_delay


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("thing1", "短文本", "短文本"),
        ("thing1", "一" * 20, "一" * 20),
        ("thing1", "一" * 21, "一" * 19 + "…"),
        ("thing5", "第一行\n第二行   多空格", "第一行 第二行 多空格"),
        ("thing2", "", "-"),
        ("phrase3", "已转交上级党委", "已转交上级"),
        ("character_string1", "订单O-2026-0001", "O-2026-0001"),
        ("character_string1", "A" * 40, "A" * 32),
        ("number4", "共 12.5 小时", "12.5"),
        ("letter2", "ab-CD 12", "abCD"),
        ("name1", "欧阳" * 6, "欧阳" * 5),
        ("time4", "2026-11-23T16:05:09Z", "2026-11-24 00:05"),
        ("time4", "2026-11-23T08:05:09+08:00", "2026-11-23 08:05"),
        ("time4", "2026-11-23 10:00", "2026-11-23 10:00"),
        ("date2", "2026-11-23T17:00:00+00:00", "2026-11-24"),
        ("date2", "2026-12-01", "2026-12-01"),
        ("time4", "下周一", "下周一"),
    ],
)
def test_format_value_applies_wechat_limits(key: str, value: str, expected: str) -> None:
    assert format_value(key, value) == expected


def test_every_template_has_fields_and_a_page() -> None:
    assert set(TEMPLATES) == set(TEMPLATE_NAMES)
    for template in TEMPLATES.values():
        assert template.fields and template.page.startswith("pages/")
        keys = [f.key for f in template.fields]
        assert len(keys) == len(set(keys))


def test_build_data_falls_back_to_title_body_and_time() -> None:
    created = datetime(2026, 11, 23, 1, 2, tzinfo=UTC)
    values = build_data(
        TEMPLATES["order_status"],
        data={},
        title="路灯不亮，老人夜里出门很不方便，请尽快维修",
        body="社区已派人",
        created_at=created,
    )
    assert values == {
        "thing1": "路灯不亮，老人夜里出门很不方便，请尽快…",
        "phrase2": "已更新",
        "thing3": "社区已派人",
        "time4": "2026-11-23 09:02",
    }
    assert len(values["thing1"]) == 20


def test_build_data_accepts_values_keyed_by_wechat_field() -> None:
    values = build_data(
        TEMPLATES["order_status"],
        data={"thing1": "路灯不亮", "phrase2": "已受理", "time4": "2026-11-23 10:00"},
        title="诉求进度更新",
        body="您的诉求「路灯不亮」已受理",
        created_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert values["thing1"] == "路灯不亮"
    assert values["phrase2"] == "已受理"
    assert values["time4"] == "2026-11-23 10:00"


def test_build_data_prefers_explicit_data() -> None:
    values = build_data(
        TEMPLATES["outflow_approved"],
        data={"destination": "广东省深圳市南山区", "certificate_no": "511621-2026-0007"},
        title="外出登记已通过",
        body="请按时报到",
        created_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert values["thing1"] == "广东省深圳市南山区"
    assert values["phrase2"] == "已通过"
    assert values["character_string3"] == "511621-2026-0007"


def test_periods() -> None:
    evening_utc = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # 00:30 on the 24th in Shanghai
    assert DAILY.key(evening_utc) == "2026-11-24"
    assert DAILY.key(datetime(2026, 11, 23, 15, 59, tzinfo=UTC)) == "2026-11-23"
    assert HOURLY.key(evening_utc) == "2026-11-23T16:00Z"
    assert every(15).key(datetime(2026, 11, 23, 16, 44, 59, tzinfo=UTC)) == "2026-11-23T16:30Z"
    assert every(15).key(datetime(2026, 11, 23, 16, 45, tzinfo=UTC)) == "2026-11-23T16:45Z"
    # Reminders people read go out from 09:00 Shanghai time, never in the night.
    assert MORNING.key(datetime(2026, 11, 23, 0, 59, tzinfo=UTC)) is None  # 08:59 local
    assert MORNING.key(datetime(2026, 11, 23, 1, 0, tzinfo=UTC)) == "2026-11-23"
    assert MORNING.key(datetime(2026, 11, 23, 15, 59, tzinfo=UTC)) == "2026-11-23"
    assert MORNING.key(datetime(2026, 11, 23, 16, 0, tzinfo=UTC)) is None  # 00:00 on the 24th


def test_backoff_is_exponential_with_jitter_and_capped() -> None:
    config = WorkerConfig(backoff_base_s=30, backoff_cap_s=3600)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (5, 480), (8, 3600), (20, 3600)]:
        delays = [backoff_delay(attempt, config, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jitter spreads retries out


def test_worker_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.notify.worker import _in_process_config

    assert WorkerConfig().concurrency == 4
    assert _in_process_config().concurrency == 2  # shares the API's pool
    monkeypatch.setenv("APP_WORKER_CONCURRENCY", "6")
    monkeypatch.setenv("APP_WORKER_MAX_ATTEMPTS", "3")
    assert (WorkerConfig().concurrency, WorkerConfig().max_attempts) == (6, 3)
    assert _in_process_config().concurrency == 6


def test_describe_keeps_sql_parameters_out_of_logs() -> None:
    from sqlalchemy.exc import IntegrityError

    from app.notify.jobs import describe

    orig = Exception('duplicate key value violates unique constraint "uq_x"\nDETAIL: (13812345678)')
    error = IntegrityError("INSERT INTO members (phone) VALUES ($1)", ("13812345678",), orig)
    text = describe(error)
    assert text == 'Exception: duplicate key value violates unique constraint "uq_x"'
    assert "138" not in describe(RuntimeError("first line\nsecond 13812345678"))


def test_redact_hides_wechat_credentials() -> None:
    from app.wechat.client import redact

    url = "https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=s3cr3t&js_code=abc&x=1"
    assert redact(url) == (
        "https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=***&js_code=***&x=1"
    )
    assert redact("/cgi-bin/message/subscribe/send?access_token=AT_1") == (
        "/cgi-bin/message/subscribe/send?access_token=***"
    )
