"""``python -m bench.seed``: build the data set in a scratch database (or ``--url``)."""

from __future__ import annotations

import argparse
import asyncio

from bench.seed import seed


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--outflows", type=int, default=20_000)
    parser.add_argument("--credits", type=int, default=1_000_000, help="credit ledger rows")
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--url", default=None, help="migrated database (default: a scratch one)")
    args = parser.parse_args()
    volumes = {"outflows": args.outflows, "credits": args.credits, "orders": args.orders}
    if args.url:
        seeded = await seed(args.url, args.members, **volumes)
    else:
        from bench.env import bench_database

        async with bench_database("bench_seed") as url:
            seeded = await seed(url, args.members, **volumes)
    for what, seconds in seeded.timings.items():
        print(f"{what:<48} {seconds:6.1f} s")


if __name__ == "__main__":
    asyncio.run(_main())
