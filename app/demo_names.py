"""Names of the demo organisations: a leaf module (it imports nothing), so each domain's
demo seeder can find the tree ``app/demo.py`` builds without importing ``app.demo``."""

from __future__ import annotations

DEMO_COUNTY = "吴川市委（演示）"
DEMO_TOWN = "吴阳镇党委"
DEMO_VILLAGE = "吴阳镇蛤岭村党支部"
DEMO_CHAMBER = "吴川商会（广州）党支部"
DEMO_DISTRICT = "广州天河商圈党委"
