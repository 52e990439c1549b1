"""Write (or ``--check``) ``openapi/openapi.json`` from the app itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.core.config import Settings
from app.main import create_app

TARGET = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def generate() -> str:
    app = create_app(Settings(env="dev", docs_enabled=True, database_url="postgresql://unused/x"))
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> int:
    spec = generate()
    if "--check" in sys.argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != spec:
            print(
                "openapi/openapi.json is stale: run `make openapi` and commit it", file=sys.stderr
            )
            return 1
        print("openapi/openapi.json is up to date")
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(spec, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
