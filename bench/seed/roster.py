"""The organisation tree and the members (encrypted personal data), by COPY."""

from __future__ import annotations

import random
from datetime import date, timedelta

import asyncpg

from app.core import pii
from app.core.config import Settings
from app.core.crypto import mask_id_number, mask_phone
from app.identity.validators import id_check_digit
from bench.seed.base import (
    DESTINATIONS,
    REGION,
    Seeded,
    next_ids,
)


async def seed_orgs(
    conn: asyncpg.Connection, towns: int = 20, generals: int = 5, branches: int = 20
) -> Seeded:
    total = 1 + towns + towns * generals + towns * generals * branches + 15
    ids = iter(await next_ids(conn, "organizations", total))
    records: list[tuple[object, ...]] = []
    county = next(ids)
    seeded = Seeded(county_id=county)
    records.append((county, "基准测试市委", "committee", None, None, f"/{county}/", 0, REGION))
    for t in range(towns):
        town = next(ids)
        town_path = f"/{county}/{town}/"
        records.append((town, f"第{t + 1}镇党委", "committee", None, county, town_path, 1, REGION))
        for g in range(generals):
            general = next(ids)
            general_path = f"{town_path}{general}/"
            records.append(
                (
                    general,
                    f"第{t + 1}镇第{g + 1}党总支",
                    "general_branch",
                    None,
                    town,
                    general_path,
                    2,
                    REGION,
                )
            )
            for b in range(branches):
                branch = next(ids)
                records.append(
                    (
                        branch,
                        f"第{t + 1}镇{g + 1}-{b + 1}村党支部",
                        "branch",
                        None,
                        general,
                        f"{general_path}{branch}/",
                        3,
                        REGION,
                    )
                )
                seeded.branch_ids.append(branch)
    for i in range(10):
        mobile = next(ids)
        records.append(
            (
                mobile,
                f"驻外流动党员第{i + 1}支部",
                "branch",
                "mobile",
                county,
                f"/{county}/{mobile}/",
                1,
                DESTINATIONS[i % len(DESTINATIONS)],
            )
        )
        seeded.branch_ids.append(mobile)
    for i in range(5):
        district = next(ids)
        records.append(
            (
                district,
                f"商圈党委{i + 1}",
                "committee",
                "business_district",
                None,
                f"/{district}/",
                0,
                DESTINATIONS[i],
            )
        )
    await conn.copy_records_to_table(
        "organizations",
        records=records,
        columns=["id", "name", "kind", "host", "parent_id", "path", "depth", "region_code"],
    )
    seeded.org_ids = [r[0] for r in records]  # type: ignore[misc]
    return seeded


def _id_numbers(n: int) -> list[str]:
    out = []
    day = date(1950, 1, 1)
    order = 0
    for _ in range(n):
        first17 = f"{REGION}{day:%Y%m%d}{order:03d}"
        out.append(first17 + id_check_digit(first17))
        order += 1
        if order == 1000:
            order = 0
            day += timedelta(days=1)
    return out


SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英建华国庆志红海燕玉梅"


async def seed_members(
    conn: asyncpg.Connection, settings: Settings, seeded: Seeded, count: int
) -> None:
    ring = pii.keyring(settings)
    rng = random.Random(7)
    ids = await next_ids(conn, "members", count)
    numbers = _id_numbers(count)
    records = []
    for member_id, number in zip(ids, numbers, strict=True):
        phone = f"13{rng.randint(0, 9)}{rng.randint(10_000_000, 99_999_999)}"
        gender = "male" if int(number[16]) % 2 else "female"
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        name = (
            rng.choice(SURNAMES)
            + rng.choice(GIVEN)
            + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        )
        records.append(
            (
                member_id,
                name,
                gender,
                birth,
                ring.encrypt(number, context=pii.ID_NUMBER),
                ring.blind_index(number, context=pii.ID_NUMBER),
                mask_id_number(number),
                ring.encrypt(phone, context=pii.PHONE),
                ring.blind_index(phone, context=pii.PHONE),
                mask_phone(phone),
                rng.choice(seeded.branch_ids),
                "full" if rng.random() < 0.95 else "probationary",
            )
        )
    await conn.copy_records_to_table(
        "members",
        records=records,
        columns=[
            "id",
            "name",
            "gender",
            "birth_date",
            "id_number_enc",
            "id_number_idx",
            "id_number_masked",
            "phone_enc",
            "phone_idx",
            "phone_masked",
            "home_org_id",
            "status",
        ],
    )
    seeded.member_ids = ids
