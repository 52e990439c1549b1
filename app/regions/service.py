"""Chinese administrative region codes (GB/T 2260, 6 digits) and offline reverse geocoding.

Backed by the ``geotool-cn`` package (import name ``GeoToolCN``): 34 provinces, 363
prefecture-level units and 2874 county-level units with codes, names, centroids and
county polygons, in WGS-84. It has no runtime dependencies and needs no network.

Conventions used throughout this module:

* Coordinates passed in and returned default to GCJ-02, the datum ``wx.getLocation``
  (type ``gcj02``) and Tencent/Amap maps use. Pass ``coord_system="wgs84"`` (raw GPS)
  or ``"bd09"`` (Baidu) where that applies. The dataset itself is WGS-84; conversion is
  done here with the standard GCJ-02 formulae and an iterative inverse.
* Municipalities (北京 110000, 天津 120000, 上海 310000, 重庆 500000) have no separate
  city-level code: their districts' city is the municipality itself (``city_of("110101")
  == "110000"``). The GB/T 2260 grouping codes ``XX0100`` (市辖区) and ``XX0200`` (县) of
  a municipality are not regions; :func:`province_of` and :func:`city_of` accept them and
  map them to the municipality, :func:`is_valid_region_code` rejects them.
* County-level units directly under a province (省直辖县级行政区, e.g. 仙桃 429004,
  济源 419001, 五指山 469001, 石河子 659001) are their own city: ``city_of("429004") ==
  "429004"``. Their GB/T 2260 grouping code (``429000``) is not a region.
* Prefecture-level cities without counties (东莞 441900, 中山 442000, 儋州 460400,
  嘉峪关 620200) are also their own county-level unit.
* 台湾省 (710000), 香港 (810000) and 澳门 (820000) are one region each, as GB/T 2260 codes
  them. The dataset's district codes ``8100NN``/``8200NN`` are the map vendor's (Amap),
  not GB/T 2260: they are not accepted, and a point there resolves to 810000/820000.

Data is loaded lazily on first use, once per process, under a lock; afterwards every
lookup is lock-free. Importing this module does not load the dataset.
"""

from __future__ import annotations

import importlib
import math
import re
import threading
from typing import Final, Literal, Protocol

__all__ = [
    "CoordSystem",
    "bd09_to_gcj02",
    "city_of",
    "distance_m",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "is_valid_region_code",
    "province_of",
    "region_centroid",
    "region_name",
    "resolve_point",
    "wgs84_to_gcj02",
]

CoordSystem = Literal["gcj02", "wgs84", "bd09"]

_CODE_RE: Final = re.compile(r"[1-9][0-9]{5}")
_MUNICIPALITIES: Final = frozenset({"11", "12", "31", "50"})
# Hong Kong and Macao: only the province-level code is GB/T 2260.
_SARS: Final = frozenset({"81", "82"})
_EARTH_RADIUS_M: Final = 6_371_008.8
_GCJ_A: Final = 6_378_245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_GCJ_EE: Final = 0.00669342162296594323  # its first eccentricity squared
_BD_X_PI: Final = math.pi * 3000.0 / 180.0

# ---------------------------------------------------------------------------
# Dataset access (lazy, typed view of the parts of GeoToolCN used here)
# ---------------------------------------------------------------------------


class _Region(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def latitude(self) -> float | None: ...
    @property
    def longitude(self) -> float | None: ...


class _Chain(Protocol):
    @property
    def province(self) -> _Region | None: ...
    @property
    def city(self) -> _Region | None: ...
    @property
    def district(self) -> _Region | None: ...


class _GeoTool(Protocol):
    def reverse(self, lat: float, lng: float) -> _Chain: ...
    def lookup_adcode(self, adcode: str) -> _Chain | None: ...
    def get_region(self, code: str) -> _Region | None: ...


_lock = threading.Lock()
_geo: _GeoTool | None = None
# code -> chain of a known region; filled on demand, read without the lock.
_chains: dict[str, _Chain] = {}


def _tool() -> _GeoTool:
    global _geo
    geo = _geo
    if geo is None:
        with _lock:
            geo = _geo
            if geo is None:
                # Imported here so that importing this module stays cheap; the package
                # ships no type information, hence the Protocols above.
                module = importlib.import_module("GeoToolCN")
                geo = module.GeoTool()
                _geo = geo
    return geo


def _chain(code: str) -> _Chain | None:
    try:
        return _chains[code]
    except KeyError:
        pass
    if not _CODE_RE.fullmatch(code) or (code[:2] in _SARS and code[2:] != "0000"):
        return None
    chain = _tool().lookup_adcode(code)
    if chain is not None:
        # Only known codes are cached (bounded by the dataset); a benign race, every
        # thread computes the same value.
        _chains[code] = chain
    return chain


def _leaf(chain: _Chain) -> _Region:
    leaf = chain.district or chain.city or chain.province
    if leaf is None:  # pragma: no cover - the package never returns an empty chain
        raise LookupError("empty region chain")
    return leaf


def _normalize(code: str) -> str:
    """Map GB/T 2260 grouping codes of municipalities (XX0100 / XX0200) to XX0000."""
    if code[:2] in _MUNICIPALITIES and code[2:] in ("0100", "0200"):
        return code[:2] + "0000"
    return code


# ---------------------------------------------------------------------------
# Codes and names
# ---------------------------------------------------------------------------


def is_valid_region_code(code: str) -> bool:
    """True if ``code`` is a 6-digit province, city or county code present in the dataset."""
    return isinstance(code, str) and _chain(code) is not None


def region_name(code: str) -> str | None:
    """Full name from the province down, e.g. ``"广东省深圳市南山区"``; None if unknown.

    Repeated levels are collapsed: ``"北京市东城区"``, ``"湖北省仙桃市"``.
    """
    if not isinstance(code, str):
        return None
    name = _names.get(code)
    if name is not None:
        return name
    chain = _chain(code)
    if chain is None:
        return None
    parts: list[str] = []
    for region in (chain.province, chain.city, chain.district):
        if region is not None and (not parts or parts[-1] != region.name):
            parts.append(region.name)
    # Known codes only (bounded by the dataset): a ledger page names twenty
    # destinations, and the package's chain attributes are looked up anew on each read.
    name = _names[code] = "".join(parts)
    return name


_names: dict[str, str] = {}


def province_of(code: str) -> str:
    """Province-level code (``XX0000``) of a region code.

    Raises ValueError if ``code`` is not a known region (or a municipality grouping code).
    """
    chain = _chain(_normalize(code)) if isinstance(code, str) else None
    if chain is None or chain.province is None:
        raise ValueError(f"unknown region code: {code!r}")
    return chain.province.code


def city_of(code: str) -> str:
    """Prefecture-level code of a region code.

    Usually ``XXXX00``; for municipalities and 香港/澳门 it is the province code
    (``XX0000``), for county-level units directly under a province it is the code itself
    (e.g. ``429004`` 仙桃). For 台湾省, which has no sub-divisions in the dataset, it is
    ``710000``. Raises ValueError if ``code`` is unknown.
    """
    chain = _chain(_normalize(code)) if isinstance(code, str) else None
    if chain is None:
        raise ValueError(f"unknown region code: {code!r}")
    if chain.city is not None:
        return chain.city.code
    province = chain.province
    if province is not None and (
        province.code[:2] in _MUNICIPALITIES or province.code in ("710000", "810000", "820000")
    ):
        return province.code
    # A province code: it has no single city.
    raise ValueError(f"{code!r} is a province; it has no city")


def region_centroid(
    code: str, *, coord_system: CoordSystem = "gcj02"
) -> tuple[float, float] | None:
    """Geometric centroid ``(lat, lon)`` of a region's area, or None if the code is unknown.

    Centroid of the polygon, not the seat of government: for large counties it can be tens
    of kilometres from the county town.
    """
    if not isinstance(code, str):
        return None
    chain = _chain(code)
    if chain is None:
        return None
    leaf = _leaf(chain)
    if leaf.latitude is None or leaf.longitude is None:  # pragma: no cover - all have one
        return None
    return _from_wgs84(leaf.latitude, leaf.longitude, coord_system)


# ---------------------------------------------------------------------------
# Reverse geocoding
# ---------------------------------------------------------------------------


def resolve_point(lat: float, lon: float, *, coord_system: CoordSystem = "gcj02") -> str | None:
    """Most specific region code containing the point, or None outside China.

    Normally a county-level code; 台湾省, 香港 and 澳门 give ``710000``, ``810000``,
    ``820000``. ``coord_system`` is the datum of
    the input: ``"gcj02"`` (wx.getLocation, default), ``"wgs84"`` or ``"bd09"``. Raises
    ValueError for non-finite or out-of-range coordinates.
    """
    _check_point(lat, lon)
    wlat, wlon = _to_wgs84(lat, lon, coord_system)
    chain = _tool().reverse(wlat, wlon)
    leaf = chain.district or chain.city or chain.province
    if leaf is None:
        return None
    if leaf.code[:2] in _SARS:
        return leaf.code[:2] + "0000"
    return leaf.code


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres on a sphere of radius 6,371,008.8 m."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    h = math.sin(dp / 2.0) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2.0) ** 2
    return 2.0 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# ---------------------------------------------------------------------------
# Datum conversion (GCJ-02 "Mars coordinates", BD-09)
# ---------------------------------------------------------------------------


def _outside_gcj_area(lat: float, lon: float) -> bool:
    """GCJ-02 applies no offset outside this rough box (the usual convention)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _gcj_offset(lat: float, lon: float) -> tuple[float, float]:
    x = lon - 105.0
    y = lat - 35.0
    sx = math.sqrt(abs(x))
    common = (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    d_lat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    d_lat += (
        (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    d_lon += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    d_lon += (
        (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad = math.radians(lat)
    magic = 1.0 - _GCJ_EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_GCJ_A / sqrt_magic * math.cos(rad) * math.pi)
    return d_lat, d_lon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02 (the published forward transform). Identity outside China's box."""
    if _outside_gcj_area(lat, lon):
        return lat, lon
    d_lat, d_lon = _gcj_offset(lat, lon)
    return lat + d_lat, lon + d_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84 by fixed-point iteration on the forward transform.

    Converges to well under a millimetre in a few steps (the single-step approximation
    commonly used is off by up to a few metres).
    """
    if _outside_gcj_area(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(30):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        e_lat = glat - lat
        e_lon = glon - lon
        wlat -= e_lat
        wlon -= e_lon
        if abs(e_lat) < 1e-10 and abs(e_lon) < 1e-10:
            break
    return wlat, wlon


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """BD-09 (Baidu) -> GCJ-02."""
    x = lon - 0.0065
    y = lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _BD_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 -> BD-09 (Baidu)."""
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def _check_point(lat: float, lon: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("coordinates must be finite numbers")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"coordinates out of range: ({lat}, {lon})")


def _to_wgs84(lat: float, lon: float, coord_system: str) -> tuple[float, float]:
    if coord_system == "gcj02":
        return gcj02_to_wgs84(lat, lon)
    if coord_system == "wgs84":
        return lat, lon
    if coord_system == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))
    raise ValueError(f"unknown coord_system: {coord_system!r}")


def _from_wgs84(lat: float, lon: float, coord_system: str) -> tuple[float, float]:
    if coord_system == "gcj02":
        return wgs84_to_gcj02(lat, lon)
    if coord_system == "wgs84":
        return lat, lon
    if coord_system == "bd09":
        return gcj02_to_bd09(*wgs84_to_gcj02(lat, lon))
    raise ValueError(f"unknown coord_system: {coord_system!r}")
