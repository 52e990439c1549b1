"""``python -m bench.seed``: build the data set in a scratch database (or ``--url``).

``--scale N`` multiplies every volume by N (scale 1: 100,000 members, 20,000 outflows,
1,000,000 credit ledger rows, 50,000 orders) and, without ``--url``, seeds the kept
database of that scale that ``python -m bench.scale`` measures (once: a later call
finds it seeded and only upgrades it; ``--reseed`` starts afresh).
"""

from __future__ import annotations

import argparse
import asyncio

from bench.seed import seed


async def _main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--outflows", type=int, default=None)
    parser.add_argument("--credits", type=int, default=None, help="credit ledger rows")
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--scale", type=int, default=None, help="every volume times N")
    parser.add_argument("--reseed", action="store_true", help="with --scale: seed again")
    parser.add_argument("--url", default=None, help="migrated database (default: a scratch one)")
    args = parser.parse_args()
    from bench.scale import VOLUMES, kept_database

    if args.scale is not None and args.url is None:
        _, info = await kept_database(args.scale, reseed=args.reseed)
        print(f"bench_scale{args.scale}: {info}")
        return
    given = {k: getattr(args, k) for k in VOLUMES}
    volumes = {k: v if v is not None else VOLUMES[k] * (args.scale or 1) for k, v in given.items()}
    members = volumes.pop("members")
    if args.url:
        seeded = await seed(args.url, members, **volumes)
    else:
        from bench.env import bench_database

        async with bench_database("bench_seed") as url:
            seeded = await seed(url, members, **volumes)
    for what, seconds in seeded.timings.items():
        print(f"{what:<48} {seconds:6.1f} s")


if __name__ == "__main__":
    asyncio.run(_main())
