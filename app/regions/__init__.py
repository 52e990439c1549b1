"""Chinese administrative region codes (GB/T 2260) and offline reverse geocoding."""

from app.regions.service import (
    CoordSystem,
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
