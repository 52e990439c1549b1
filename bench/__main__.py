"""``make bench``: run every benchmark and print one table of their figures.

Each benchmark is a module runnable on its own (``python -m bench.<name>``) that prints
``BENCH {json}`` lines through :func:`bench.load.report`; this runner collects them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

BENCHMARKS = [
    "endpoints",
    "checkin",
    "ledger",
    "leaderboard",
    "order_stats",
    "import_roster",
    "overload",
    "census",
    "scale",
]


def main() -> int:
    rows: list[dict[str, object]] = []
    only = sys.argv[1:]
    for name in BENCHMARKS:
        if only and name not in only:
            continue
        started = time.monotonic()
        print(f"== bench.{name}", flush=True)
        process = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"], capture_output=True, text=True, check=False
        )
        for line in process.stdout.splitlines():
            if line.startswith("BENCH "):
                rows.append(json.loads(line[6:]))
            else:
                print("   " + line)
        if process.returncode != 0:
            print(process.stderr[-3000:])
            rows.append(
                {
                    "name": name,
                    "metric": "FAILED",
                    "value": process.returncode,
                    "unit": "",
                    "target": "",
                    "command": f"python -m bench.{name}",
                }
            )
        print(f"   ({time.monotonic() - started:.0f} s)", flush=True)
    print()
    print("| benchmark | metric | value | target | command |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['name']} | {row['metric']} | {row['value']} {row['unit']} | "
            f"{row['target']} | `{row['command']}` |"
        )
    return 0 if all(r["metric"] != "FAILED" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
