"""DashboardHub: one feed per window for every open page, frames only on change, heartbeats in
between, a problem frame while the database fails, and `close()` ends every stream."""

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from api.dashboard.hub import DashboardHub
from api.models.dashboard import DashboardFlow, DashboardSnapshot


def snapshot(waiting: int) -> DashboardSnapshot:
    return DashboardSnapshot(
        generated_at=datetime.now(UTC),  # differs every time: not a change by itself
        window_s=300,
        broker="ok",
        dead_letters=0,
        waiting_count=waiting,
        operators=[],
        sources=[],
        flow=DashboardFlow(seconds=300, points=[]),
    )


class Database:
    """The snapshot builder's stand-in: answers the current `waiting`, or fails."""

    def __init__(self) -> None:
        self.waiting = 0
        self.failing = False
        self.builds = 0

    async def build(self, window_s: int) -> DashboardSnapshot:
        self.builds += 1
        if self.failing:
            raise ConnectionError("database is down")
        return snapshot(self.waiting)


def parse(frame: bytes) -> tuple[str, dict[str, object]]:
    fields = dict(line.split(": ", 1) for line in frame.decode().strip().split("\n"))
    return fields["event"], json.loads(fields["data"])


async def next_frame(stream: AsyncIterator[bytes]) -> tuple[str, dict[str, object]]:
    return parse(await asyncio.wait_for(anext(stream), 5))


async def test_frames_on_change_heartbeats_between_and_close_ends_the_stream() -> None:
    database = Database()
    hub = DashboardHub(interval_s=0.01, heartbeat_s=0.2)
    stream = hub.stream(300, database.build)

    assert await anext(stream) == b"retry: 2000\n\n"
    kind, data = await next_frame(stream)
    assert (kind, data["waiting_count"]) == ("snapshot", 0)
    kind, data = await next_frame(stream)
    assert kind == "heartbeat" and "at" in data  # nothing changed for heartbeat_s
    database.waiting = 3
    kind, data = await next_frame(stream)
    assert (kind, data["waiting_count"]) == ("snapshot", 3)

    await hub.close()
    assert [frame async for frame in stream] == []


async def test_pages_of_one_window_share_one_feed() -> None:
    database = Database()
    hub = DashboardHub(interval_s=0.05, heartbeat_s=5)
    first, second = hub.stream(300, database.build), hub.stream(300, database.build)
    await anext(first), await anext(second)

    one, two = await next_frame(first), await next_frame(second)

    assert one == two and one[0] == "snapshot"
    assert len(hub._feeds) == 1
    await first.aclose()
    assert hub._feeds[300].subscribers == 1
    await second.aclose()
    assert hub._feeds == {}  # the last page gone, the feed stops reading
    await hub.close()


async def test_a_failing_database_is_a_problem_frame_then_data_again() -> None:
    database = Database()
    database.failing = True
    hub = DashboardHub(interval_s=0.01, heartbeat_s=5)
    stream = hub.stream(900, database.build)
    await anext(stream)

    kind, data = await next_frame(stream)
    assert (kind, data) == ("problem", {"detail": "database unavailable, retrying"})
    database.failing = False
    kind, data = await next_frame(stream)
    assert (kind, data["window_s"]) == ("snapshot", 300)
    await hub.close()
