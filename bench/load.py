"""A bounded asyncio load generator: N concurrent keep-alive connections, fixed duration.

Used by every HTTP benchmark so that the figures are comparable: same client, same
concurrency model, same percentile arithmetic. Request loops stop by themselves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

RequestFn = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass
class LoadResult:
    label: str
    concurrency: int
    duration_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    def ok_ratio(self) -> float:
        ok = sum(n for s, n in self.statuses.items() if 200 <= s < 300)
        return ok / self.requests if self.requests else 0.0

    def line(self) -> str:
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.label:<28} c={self.concurrency:<4} {self.rps:8.0f} req/s  "
            f"p50 {self.percentile(50):7.1f} ms  p99 {self.percentile(99):7.1f} ms  "
            f"[{statuses}{', timeouts×' + str(self.timeouts) if self.timeouts else ''}]"
        )


async def drive(
    base_url: str,
    request: RequestFn,
    *,
    label: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    timeout_s: float = 10.0,
) -> LoadResult:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:
        counter = 0

        async def worker(result: LoadResult | None, stop_at: float) -> None:
            nonlocal counter
            while time.perf_counter() < stop_at:
                counter += 1
                n = counter
                started = time.perf_counter()
                try:
                    response = await request(client, n)
                except httpx.TimeoutException:
                    if result is not None:
                        result.timeouts += 1
                    continue
                if result is not None:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    result.statuses[response.status_code] += 1

        if warmup_s:
            stop = time.perf_counter() + warmup_s
            await asyncio.gather(*(worker(None, stop) for _ in range(concurrency)))
        result = LoadResult(label, concurrency, duration_s)
        started = time.perf_counter()
        stop = started + duration_s
        await asyncio.gather(*(worker(result, stop) for _ in range(concurrency)))
        result.duration_s = time.perf_counter() - started
        return result


def report(name: str, metric: str, value: float, unit: str, target: str, command: str) -> None:
    """One machine-readable line per figure; ``python -m bench`` collects them into a table."""
    print(
        "BENCH "
        + json.dumps(
            {
                "name": name,
                "metric": metric,
                "value": round(value, 2),
                "unit": unit,
                "target": target,
                "command": command,
            },
            ensure_ascii=False,
        ),
        flush=True,
    )


async def drive_raw(
    base_url: str,
    requests: list[bytes],
    *,
    label: str,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 1.0,
    timeout_s: float = 15.0,
) -> LoadResult:
    """Like :func:`drive`, with a minimal keep-alive HTTP/1.1 client (the default).

    The httpx client costs more CPU per request than a bare server does; on a small
    machine it then measures itself. This one writes prepared request bytes and reads
    status line, headers and ``Content-Length`` bytes: nothing else.
    """
    host, port = base_url.removeprefix("http://").split(":")
    counter = 0

    async def worker(result: LoadResult | None, stop_at: float) -> None:
        nonlocal counter
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < stop_at:
                counter += 1
                started = time.perf_counter()
                writer.write(requests[counter % len(requests)])
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
                except TimeoutError:
                    if result is not None:
                        result.timeouts += 1
                    return
                length = -1
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length < 0:
                    raise RuntimeError("drive_raw needs responses with Content-Length")
                await reader.readexactly(length)
                if result is not None:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)
                    result.statuses[int(head[9:12])] += 1
        finally:
            writer.close()

    if warmup_s:
        stop = time.perf_counter() + warmup_s
        await asyncio.gather(*(worker(None, stop) for _ in range(concurrency)))
    result = LoadResult(label, concurrency, duration_s)
    started = time.perf_counter()
    await asyncio.gather(*(worker(result, started + duration_s) for _ in range(concurrency)))
    result.duration_s = time.perf_counter() - started
    return result


def raw_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    return raw_request("POST", path, body, headers)


def raw_request(method: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """Prepared bytes of one HTTP/1.1 keep-alive request for :func:`drive_raw`."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
