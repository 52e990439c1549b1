"""Reference codes of the census: the unified social credit code, GB/T 4754 industries,
entity kinds and new-economy tags.

The credit code check (GB 32100-2015) is a weighted sum modulo 31 over the 17 leading
characters; the alphabet leaves out I, O, Z, S and V. ``python-stdnum`` has the same
check, but a dozen lines do not justify a dependency.
"""

from __future__ import annotations

from typing import Final

CREDIT_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_VALUE: Final = {ch: i for i, ch in enumerate(CREDIT_ALPHABET)}


class CreditCodeError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def credit_check_char(first17: str) -> str:
    total = sum(_VALUE[ch] * weight for ch, weight in zip(first17, _WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31]


def normalize_credit_code(value: str) -> str:
    """The code in upper case without spaces; raises :class:`CreditCodeError` if invalid."""
    code = "".join(value.split()).upper()
    if len(code) != 18:
        raise CreditCodeError("统一社会信用代码应为18位")
    if any(ch not in _VALUE for ch in code):
        raise CreditCodeError("统一社会信用代码含有不允许的字符（不使用 I、O、Z、S、V）")
    if not code[2:8].isdigit():
        raise CreditCodeError("统一社会信用代码第3至8位应为登记管理机关行政区划码")
    if credit_check_char(code[:17]) != code[17]:
        raise CreditCodeError("统一社会信用代码校验位错误，请核对")
    return code


def is_valid_credit_code(value: str) -> bool:
    try:
        normalize_credit_code(value)
    except CreditCodeError:
        return False
    return True


KINDS: Final[dict[str, str]] = {
    "enterprise": "企业",
    "social_org": "社会组织",
    "individual": "个体工商户",
}

# New-economy and new-employment tags (新业态、新就业群体) the seeds name, and a few more.
TAGS: Final[dict[str, str]] = {
    "express_delivery": "快递物流",
    "ride_hailing": "网约车",
    "food_delivery": "外卖配送",
    "internet_platform": "互联网平台",
    "trucking": "货车司机",
    "construction_site": "建筑工地",
    "business_district": "商圈市场",
    "office_building": "商务楼宇",
    "industrial_park": "产业园区",
    "trade_association": "行业协会商会",
}

# GB/T 4754-2017: sections (门类) A–T and their divisions (大类, two digits).
SECTIONS: Final[dict[str, tuple[str, tuple[int, int]]]] = {
    "A": ("农、林、牧、渔业", (1, 5)),
    "B": ("采矿业", (6, 12)),
    "C": ("制造业", (13, 43)),
    "D": ("电力、热力、燃气及水生产和供应业", (44, 46)),
    "E": ("建筑业", (47, 50)),
    "F": ("批发和零售业", (51, 52)),
    "G": ("交通运输、仓储和邮政业", (53, 60)),
    "H": ("住宿和餐饮业", (61, 62)),
    "I": ("信息传输、软件和信息技术服务业", (63, 65)),
    "J": ("金融业", (66, 69)),
    "K": ("房地产业", (70, 70)),
    "L": ("租赁和商务服务业", (71, 72)),
    "M": ("科学研究和技术服务业", (73, 75)),
    "N": ("水利、环境和公共设施管理业", (76, 79)),
    "O": ("居民服务、修理和其他服务业", (80, 82)),
    "P": ("教育", (83, 83)),
    "Q": ("卫生和社会工作", (84, 85)),
    "R": ("文化、体育和娱乐业", (86, 90)),
    "S": ("公共管理、社会保障和社会组织", (91, 96)),
    "T": ("国际组织", (97, 97)),
}
DIVISIONS: Final[dict[str, str]] = {
    "01": "农业", "02": "林业", "03": "畜牧业", "04": "渔业",
    "05": "农、林、牧、渔专业及辅助性活动",
    "06": "煤炭开采和洗选业", "07": "石油和天然气开采业", "08": "黑色金属矿采选业",
    "09": "有色金属矿采选业", "10": "非金属矿采选业", "11": "开采专业及辅助性活动",
    "12": "其他采矿业",
    "13": "农副食品加工业", "14": "食品制造业", "15": "酒、饮料和精制茶制造业",
    "16": "烟草制品业", "17": "纺织业", "18": "纺织服装、服饰业",
    "19": "皮革、毛皮、羽毛及其制品和制鞋业",
    "20": "木材加工和木、竹、藤、棕、草制品业", "21": "家具制造业",
    "22": "造纸和纸制品业", "23": "印刷和记录媒介复制业",
    "24": "文教、工美、体育和娱乐用品制造业", "25": "石油、煤炭及其他燃料加工业",
    "26": "化学原料和化学制品制造业", "27": "医药制造业", "28": "化学纤维制造业",
    "29": "橡胶和塑料制品业", "30": "非金属矿物制品业", "31": "黑色金属冶炼和压延加工业",
    "32": "有色金属冶炼和压延加工业", "33": "金属制品业", "34": "通用设备制造业",
    "35": "专用设备制造业", "36": "汽车制造业",
    "37": "铁路、船舶、航空航天和其他运输设备制造业", "38": "电气机械和器材制造业",
    "39": "计算机、通信和其他电子设备制造业", "40": "仪器仪表制造业", "41": "其他制造业",
    "42": "废弃资源综合利用业", "43": "金属制品、机械和设备修理业",
    "44": "电力、热力生产和供应业", "45": "燃气生产和供应业", "46": "水的生产和供应业",
    "47": "房屋建筑业", "48": "土木工程建筑业", "49": "建筑安装业",
    "50": "建筑装饰、装修和其他建筑业",
    "51": "批发业", "52": "零售业",
    "53": "铁路运输业", "54": "道路运输业", "55": "水上运输业", "56": "航空运输业",
    "57": "管道运输业", "58": "多式联运和运输代理业", "59": "装卸搬运和仓储业",
    "60": "邮政业",
    "61": "住宿业", "62": "餐饮业",
    "63": "电信、广播电视和卫星传输服务", "64": "互联网和相关服务",
    "65": "软件和信息技术服务业",
    "66": "货币金融服务", "67": "资本市场服务", "68": "保险业", "69": "其他金融业",
    "70": "房地产业",
    "71": "租赁业", "72": "商务服务业",
    "73": "研究和试验发展", "74": "专业技术服务业", "75": "科技推广和应用服务业",
    "76": "水利管理业", "77": "生态保护和环境治理业", "78": "公共设施管理业",
    "79": "土地管理业",
    "80": "居民服务业", "81": "机动车、电子产品和日用产品修理业", "82": "其他服务业",
    "83": "教育",
    "84": "卫生", "85": "社会工作",
    "86": "新闻和出版业", "87": "广播、电视、电影和录音制作业", "88": "文化艺术业",
    "89": "体育", "90": "娱乐业",
    "91": "中国共产党机关", "92": "国家机构", "93": "人民政协、民主党派",
    "94": "社会保障", "95": "群众团体、社会团体和其他成员组织",
    "96": "基层群众自治组织及其他组织",
    "97": "国际组织",
}  # fmt: skip


def section_of_division(division: str) -> str:
    number = int(division)
    for section, (_, (low, high)) in SECTIONS.items():
        if low <= number <= high:
            return section
    raise ValueError(division)


def parse_industry(value: str) -> tuple[str, str | None]:
    """``"I"`` or ``"I64"``/``"64"`` (also ``"6420"``: a finer code keeps its division) ->
    ``(section, division or None)``; raises ValueError for an unknown code."""
    code = "".join(value.split()).upper()
    if code in SECTIONS:
        return code, None
    letter = code[0] if code[:1].isalpha() else None
    digits = code[1:] if letter else code
    if len(digits) < 2 or not digits.isdigit() or digits[:2] not in DIVISIONS:
        raise ValueError(value)
    division = digits[:2]
    section = section_of_division(division)
    if letter is not None and letter != section:
        raise ValueError(value)
    return section, division


def industry_name(section: str, division: str | None) -> str:
    if division is not None:
        return DIVISIONS[division]
    return SECTIONS[section][0]
