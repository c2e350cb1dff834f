"""WAL checkpoints for the SQLite transaction runner, on a thread and connection of their own.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold: every few
seconds at half load one batch copied thousands of pages into the database file and synced
it, and every message behind it waited (the measurements are in bench/README.md). A PASSIVE
checkpoint needs no lock that the runner's writes take, so here it runs every
CHECKPOINT_INTERVAL_S beside them; the sqlite3 module lets go of the GIL while it runs. The
runner keeps an automatic checkpoint only as a far-off safety net (LANE_AUTOCHECKPOINT_PAGES),
should these fall behind or fail.
"""

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import structlog

from db.session import SQLITE_BUSY_TIMEOUT_MS

CHECKPOINT_INTERVAL_S = 1.0
LANE_AUTOCHECKPOINT_PAGES = 100_000  # about 400 MB of WAL at 4 KiB pages
log = structlog.get_logger(__name__)


class WalCheckpointer:
    def __init__(
        self,
        executor: ThreadPoolExecutor,
        connection: sqlite3.Connection,
        interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self._executor = executor
        self._connection = connection
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.checkpointed = asyncio.Event()  # set after each checkpoint (tests await it)

    @classmethod
    async def start(cls, path: str, interval_s: float = CHECKPOINT_INTERVAL_S) -> "WalCheckpointer":
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
        loop = asyncio.get_running_loop()
        connection = await loop.run_in_executor(executor, _connect, path)
        checkpointer = cls(executor, connection, interval_s)
        checkpointer._task = asyncio.create_task(checkpointer._run_forever())
        return checkpointer

    async def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, frames in the WAL, frames checkpointed)."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self._checkpoint)
        self.checkpointed.set()
        return result

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._connection.close)
        self._executor.shutdown(wait=True)

    async def _run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.checkpoint()
            except Exception as exc:  # the next tick tries again; the runner's net remains
                log.warning("WAL checkpoint failed", error=repr(exc)[:300])

    def _checkpoint(self) -> tuple[int, int, int]:
        busy, frames, done = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(done)


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    return connection
