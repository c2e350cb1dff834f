"""Server-Sent Events for the dashboard: one snapshot a second per window, however many pages.

Every open page of the same window shares one feed: one task reads a snapshot every
`interval_s` while anyone listens, and a page gets a frame only when the snapshot changed
(a wall screen on a quiet evening receives heartbeats, not the same 30 KB every second). The
frames are built once and handed to every page as they are.

uvicorn waits for open responses before it shuts down, and an event stream never ends by
itself: `close()` ends them all; `leadrouter api` calls it when a stop signal arrives.
"""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from api.models.dashboard import DashboardSnapshot
from db.types import utcnow

log = structlog.get_logger(__name__)

Build = Callable[[int], Awaitable[DashboardSnapshot]]
RECONNECT_MS = 2000  # the `retry:` hint; the page's own reader backs off from there


def frame(event: str, data: str, event_id: int | None = None) -> bytes:
    """One SSE message; `data` is one line of JSON."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


@dataclass
class _Feed:
    window_s: int
    build: Build
    subscribers: int = 0
    version: int = 0
    frame: bytes = b""
    key: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def publish(self, key: str, message: bytes) -> None:
        if key == self.key:
            return
        self.key, self.frame, self.version = key, message, self.version + 1
        self.wake()

    def wake(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()


class DashboardHub:
    def __init__(self, interval_s: float = 1.0, heartbeat_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s
        self.closed = False
        self._feeds: dict[int, _Feed] = {}

    async def stream(self, window_s: int, build: Build) -> AsyncIterator[bytes]:
        """The frames for one page, until it disconnects or the hub closes."""
        feed = self._feeds.get(window_s)
        if feed is None:
            feed = self._feeds[window_s] = _Feed(window_s, build)
        feed.subscribers += 1
        if feed.task is None:
            feed.task = asyncio.create_task(self._run(feed), name=f"dashboard-feed-{window_s}")
        try:
            yield f"retry: {RECONNECT_MS}\n\n".encode()
            seen = 0
            while not self.closed:
                changed = feed.changed
                if feed.version != seen:
                    seen = feed.version
                    yield feed.frame
                    continue
                try:
                    await asyncio.wait_for(changed.wait(), self.heartbeat_s)
                except TimeoutError:
                    yield frame("heartbeat", json.dumps({"at": utcnow().isoformat()}))
        finally:
            feed.subscribers -= 1
            if feed.subscribers == 0:
                self._feeds.pop(window_s, None)
                if feed.task is not None:
                    feed.task.cancel()

    async def _run(self, feed: _Feed) -> None:
        """Read, publish if changed, sleep; a failed read is said once and retried."""
        failing = False
        while not self.closed:
            try:
                snapshot = await feed.build(feed.window_s)
            except Exception as exc:
                if not failing:
                    log.warning("dashboard snapshot failed", error=repr(exc)[:300])
                failing = True
                detail = json.dumps({"detail": "database unavailable, retrying"})
                feed.publish("problem", frame("problem", detail))
            else:
                failing = False
                # Compared without its time: an unchanged snapshot is not sent again.
                key = snapshot.model_dump_json(exclude={"generated_at"})
                feed.publish(key, frame("snapshot", snapshot.model_dump_json(), feed.version + 1))
            await asyncio.sleep(self.interval_s)

    async def close(self) -> None:
        """End every stream now (shutdown), and stop their feeds."""
        self.closed = True
        feeds = list(self._feeds.values())
        for feed in feeds:
            feed.wake()
        for feed in feeds:
            if feed.task is not None:
                feed.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await feed.task
