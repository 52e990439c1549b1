"""Concurrent study check-ins share one statement.

Phones check in in bursts (the end of a themed party day, an evening's study). Alone, a
check-in is a short statement whose fixed costs (a round trip, starting the executor, a
transaction and its commit) are most of its price. So a check-in waits for the next
*flush*: a flush first takes a driver-pool connection and only then every check-in
waiting at that moment, and awards them in one statement
(:func:`app.study.repository.award_studies`). A lone check-in on a quiet server goes
out at once, alone; when the database is the bottleneck, the check-ins that arrive
while the connections are busy form the next batch. Batches grow with the load and no
timer delays anything.

What holds for every check-in, batched or not:

* at most one check-in per member goes into a statement (a statement may change his
  day row once); his next one goes into the next batch, in the order his row lock
  would have put them anyway;
* a check-in is answered only after the statement that awarded it committed (driver
  pool connections run each statement in its own transaction);
* one check-in's failure is not another's: when the batch statement fails (one of them
  raced a duplicate on another connection, a value the database refuses), nothing was
  written, and each check-in of that batch is awarded on its own;
* when the database is unavailable, every check-in of the batch gets that error (503
  with Retry-After); one that waited longer than the pool timeout for a connection gets
  the pool's ``TimeoutError`` (503) as before.
"""

from __future__ import annotations

import asyncio
from collections import deque

import asyncpg

from app.core.db import ConnectionSource, is_database_unavailable
from app.study import repository as repo
from app.study.repository import AwardRow, StudyClaim

# Enough for every connection of a busy worker; a larger statement only waits longer.
MAX_BATCH = 64

_Waiter = tuple[StudyClaim, "asyncio.Future[AwardRow]"]


class AwardBatcher:
    """Awards study check-ins on ``source``, concurrent ones together."""

    def __init__(self, source: ConnectionSource, *, max_batch: int = MAX_BATCH) -> None:
        self.source = source
        self._max_batch = max_batch
        self._waiting: deque[_Waiter] = deque()
        # Flushes started that have not taken their check-ins yet: while there is one,
        # a new check-in will be in it.
        self._idle_flushes = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def drain(self) -> None:
        """Until every check-in handed in so far is answered: at shutdown, before the
        connections go away (the lifespan in ``app/main.py`` calls it)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def award(self, claim: StudyClaim) -> AwardRow:
        future: asyncio.Future[AwardRow] = asyncio.get_running_loop().create_future()
        self._waiting.append((claim, future))
        if self._idle_flushes == 0:
            self._start_flush()
        # A request cancelled while waiting cancels its future: a flush skips it.
        return await future

    def _start_flush(self) -> None:
        self._idle_flushes += 1
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take(self, limit: int) -> list[_Waiter]:
        """Up to ``limit`` waiting check-ins, one per member, oldest first; this flush
        is no longer idle, and one more starts for any left waiting."""
        self._idle_flushes -= 1
        batch: list[_Waiter] = []
        members: set[int] = set()
        later: list[_Waiter] = []
        while self._waiting and len(batch) < limit:
            waiter = self._waiting.popleft()
            claim, future = waiter
            if future.done():  # its request was cancelled before it was sent
                continue
            if claim.member_id in members:
                later.append(waiter)
            else:
                members.add(claim.member_id)
                batch.append(waiter)
        self._waiting.extendleft(reversed(later))
        if self._waiting and self._idle_flushes == 0:
            self._start_flush()
        return batch

    async def _flush(self) -> None:
        batch: list[_Waiter] | None = None
        try:
            async with self.source.connection() as conn:
                batch = self._take(self._max_batch)
                if not batch:
                    return
                rows = await _award_together(conn, [claim for claim, _ in batch])
            if rows is None:
                async with self.source.connection() as conn:
                    await _award_one_by_one(conn, batch)
                return
            for (_, future), row in zip(batch, rows, strict=True):
                if not future.done():
                    future.set_result(row)
        except BaseException as error:
            if batch is None:  # no connection came: fail those that waited for it
                batch = self._take(len(self._waiting))
            _fail(batch, error)
            if not isinstance(error, Exception):
                raise


async def _award_together(
    conn: asyncpg.Connection, claims: list[StudyClaim]
) -> list[AwardRow] | None:
    """One statement for all; None when it failed for one of them (nothing written)."""
    if len(claims) == 1:
        return [await repo.award_study(conn, claims[0])]
    try:
        return await repo.award_studies(conn, claims)
    except asyncpg.PostgresError as error:
        if is_database_unavailable(error):
            raise
        return None


async def _award_one_by_one(conn: asyncpg.Connection, batch: list[_Waiter]) -> None:
    for index, (claim, future) in enumerate(batch):
        try:
            row = await repo.award_study(conn, claim)
        except Exception as error:
            if is_database_unavailable(error):
                _fail(batch[index:], error)
                return
            if not future.done():
                future.set_exception(error)
            continue
        if not future.done():
            future.set_result(row)


def _fail(batch: list[_Waiter], error: BaseException) -> None:
    for _, future in batch:
        if future.done():
            continue
        if isinstance(error, Exception):
            future.set_exception(error)
        else:
            future.cancel()
