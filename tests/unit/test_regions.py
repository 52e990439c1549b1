"""Unit tests for app.regions: region codes, names, reverse geocoding, datum conversion."""

import math
import random

import pytest

from app.regions import (
    bd09_to_gcj02,
    city_of,
    distance_m,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    is_valid_region_code,
    province_of,
    region_centroid,
    region_name,
    resolve_point,
    wgs84_to_gcj02,
)

# --- codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "110000",  # 北京市
        "110101",  # 北京市东城区
        "440000",  # 广东省
        "440300",  # 深圳市
        "440305",  # 南山区
        "500229",  # 重庆市城口县
        "429004",  # 仙桃市 (省直辖县级市)
        "441900",  # 东莞市 (no counties)
        "650102",  # 乌鲁木齐市天山区
        "540600",  # 那曲市 (created 2017)
        "710000",  # 台湾省
        "810000",  # 香港特别行政区
        "820000",  # 澳门特别行政区
    ],
)
def test_valid_codes(code: str) -> None:
    assert is_valid_region_code(code)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "44030",
        "4403050",
        "44030a",
        " 440305",
        "000000",
        "999999",
        "440399",  # well-formed, not a district
        "110100",  # GB/T 2260 "市辖区" grouping of a municipality, not a region
        "429000",  # "省直辖县级行政区划" grouping, not a region
        "810001",  # the map vendor's Hong Kong district code, not GB/T 2260
        "820005",  # the same for Macao
        "１１００００",  # full-width digits
    ],
)
def test_invalid_codes(code: str) -> None:
    assert not is_valid_region_code(code)
    assert region_name(code) is None
    assert region_centroid(code) is None


def test_non_string_code_is_invalid() -> None:
    assert not is_valid_region_code(440305)  # type: ignore[arg-type]
    assert region_name(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("440305", "广东省深圳市南山区"),
        ("440300", "广东省深圳市"),
        ("440000", "广东省"),
        ("110101", "北京市东城区"),
        ("110000", "北京市"),
        ("310115", "上海市浦东新区"),
        ("500229", "重庆市城口县"),
        ("429004", "湖北省仙桃市"),
        ("441900", "广东省东莞市"),
        ("650102", "新疆维吾尔自治区乌鲁木齐市天山区"),
    ],
)
def test_region_name(code: str, name: str) -> None:
    assert region_name(code) == name


@pytest.mark.parametrize(
    ("code", "province", "city"),
    [
        ("440305", "440000", "440300"),
        ("440300", "440000", "440300"),
        ("510104", "510000", "510100"),
        # municipalities: the city is the municipality itself
        ("110101", "110000", "110000"),
        ("110000", "110000", "110000"),
        ("120101", "120000", "120000"),
        ("310115", "310000", "310000"),
        ("500103", "500000", "500000"),
        ("500229", "500000", "500000"),  # a 县 of 重庆 (GB/T 2260 group 500200)
        # GB/T 2260 grouping codes of municipalities are accepted here
        ("110100", "110000", "110000"),
        ("500200", "500000", "500000"),
        # county-level units directly under a province are their own city
        ("429004", "420000", "429004"),
        ("419001", "410000", "419001"),
        ("469001", "460000", "469001"),
        ("659001", "650000", "659001"),
        # prefecture-level cities without counties
        ("441900", "440000", "441900"),
        ("620200", "620000", "620200"),
        # special administrative regions and Taiwan
        ("810000", "810000", "810000"),
        ("820000", "820000", "820000"),
        ("710000", "710000", "710000"),
    ],
)
def test_province_and_city(code: str, province: str, city: str) -> None:
    assert province_of(code) == province
    assert city_of(code) == city
    assert is_valid_region_code(province)
    assert is_valid_region_code(city)


def test_province_has_no_city() -> None:
    with pytest.raises(ValueError):
        city_of("440000")


# The map vendor's Hong Kong and Macao district codes are not GB/T 2260.
@pytest.mark.parametrize("code", ["999999", "abc", "440399", "429000", "810001", "820005"])
def test_province_and_city_of_unknown_code(code: str) -> None:
    with pytest.raises(ValueError):
        province_of(code)
    with pytest.raises(ValueError):
        city_of(code)


# --- reverse geocoding ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "code"),
    [
        (22.53, 113.93, "440305"),  # 深圳南山
        (39.908, 116.397, "110101"),  # 北京天安门, 东城区
        (31.2397, 121.4998, "310115"),  # 上海陆家嘴, 浦东新区
        (29.5578, 106.5772, "500103"),  # 重庆解放碑, 渝中区
        (30.36, 113.42, "429004"),  # 仙桃
        (23.02, 113.75, "441900"),  # 东莞
        (22.28, 114.16, "810000"),  # 香港中西区: GB/T 2260 codes the SAR only
        (22.19, 113.54, "820000"),  # 澳门
        (25.04, 121.51, "710000"),  # 台北: province only
    ],
)
def test_resolve_point(lat: float, lon: float, code: str) -> None:
    assert resolve_point(lat, lon) == code


@pytest.mark.parametrize(
    ("lat", "lon", "city"),
    [
        (30.657, 104.066, "510100"),  # 成都天府广场
        (43.8256, 87.6168, "650100"),  # 乌鲁木齐
    ],
)
def test_resolve_point_city(lat: float, lon: float, city: str) -> None:
    code = resolve_point(lat, lon)
    assert code is not None
    assert city_of(code) == city


def test_resolve_point_coord_systems() -> None:
    # 天安门 given in each datum resolves to the same district
    wgs = gcj02_to_wgs84(39.908, 116.397)
    bd = gcj02_to_bd09(39.908, 116.397)
    assert resolve_point(*wgs, coord_system="wgs84") == "110101"
    assert resolve_point(*bd, coord_system="bd09") == "110101"
    with pytest.raises(ValueError):
        resolve_point(39.908, 116.397, coord_system="utm")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (35.68, 139.69),  # Tokyo
        (30.0, 125.0),  # East China Sea
        (21.03, 105.85),  # Hanoi
        (37.56, 126.97),  # Seoul
        (0.0, -150.0),  # Pacific
        (51.5, -0.12),  # London
    ],
)
def test_resolve_point_outside_china(lat: float, lon: float) -> None:
    assert resolve_point(lat, lon) is None


@pytest.mark.parametrize(
    ("lat", "lon"), [(91.0, 0.0), (0.0, 181.0), (math.nan, 116.0), (39.9, math.inf)]
)
def test_resolve_point_rejects_bad_coordinates(lat: float, lon: float) -> None:
    with pytest.raises(ValueError):
        resolve_point(lat, lon)


def test_region_centroid() -> None:
    centroid = region_centroid("440305")
    assert centroid is not None
    # the centroid of 南山区 lies in 南山区 and close to the district's middle
    assert resolve_point(*centroid) == "440305"
    assert distance_m(*centroid, 22.53, 113.93) < 10_000
    wgs = region_centroid("440305", coord_system="wgs84")
    assert wgs is not None
    # GCJ-02 offset in Shenzhen is roughly 500-600 m
    assert 300 < distance_m(*centroid, *wgs) < 900
    beijing = region_centroid("110000")
    assert beijing is not None
    assert city_of(resolve_point(*beijing) or "") == "110000"


# --- distance and datums -------------------------------------------------------------


def test_distance_m() -> None:
    assert distance_m(39.9, 116.4, 39.9, 116.4) == 0.0
    # one degree of latitude on the mean sphere: 6371008.8 * pi / 180
    assert distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195.08, abs=0.01)
    # quarter of the equator
    assert distance_m(0.0, 0.0, 0.0, 90.0) == pytest.approx(10_007_557.2, abs=1.0)
    # 北京天安门 -> 上海人民广场, about 1067 km
    d = distance_m(39.9087, 116.3975, 31.2304, 121.4737)
    assert 1_060_000 < d < 1_075_000
    assert d == pytest.approx(distance_m(31.2304, 121.4737, 39.9087, 116.3975))
    # antipodes
    assert distance_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6_371_008.8)


def test_wgs84_to_gcj02_reference_vector() -> None:
    # reference value of the published algorithm (eviltransform test vectors)
    lat, lon = wgs84_to_gcj02(31.1774276, 121.5272106)
    assert lat == pytest.approx(31.17530398364597, abs=1e-9)
    assert lon == pytest.approx(121.531541859215, abs=1e-9)


def test_gcj02_round_trip() -> None:
    rng = random.Random(2260)
    for _ in range(2000):
        lat = rng.uniform(18.0, 53.0)
        lon = rng.uniform(74.0, 134.0)
        glat, glon = wgs84_to_gcj02(lat, lon)
        # the offset itself is hundreds of metres ...
        assert distance_m(lat, lon, glat, glon) > 1.0
        # ... and the iterative inverse undoes it to well under a metre
        back = gcj02_to_wgs84(glat, glon)
        assert distance_m(lat, lon, *back) < 0.01


def test_gcj02_is_identity_outside_china() -> None:
    assert wgs84_to_gcj02(35.68, 139.8) == (35.68, 139.8)
    assert gcj02_to_wgs84(51.5, -0.12) == (51.5, -0.12)


def test_bd09_round_trip() -> None:
    lat, lon = 39.908, 116.397
    blat, blon = gcj02_to_bd09(lat, lon)
    assert distance_m(lat, lon, blat, blon) > 100
    back = bd09_to_gcj02(blat, blon)
    assert distance_m(lat, lon, *back) < 1.0
