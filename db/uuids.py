"""Random (version 4) UUIDs, many from one read of the operating system's randomness.

`uuid.uuid4()` reads 16 bytes per id. On the worker's SQLite lane each read gives up the GIL
and can wait a switch interval to get it back behind the busy event loop thread; a batch of
256 events was 256 such waits. These are the same ids, drawn from one read per call or chunk.
"""

import os
import uuid

CHUNK = 64


def new_uuids(count: int) -> list[str]:
    raw = os.urandom(16 * count)
    return [str(uuid.UUID(bytes=raw[i : i + 16], version=4)) for i in range(0, len(raw), 16)]


class UuidSource:
    """One per unit of work (never shared across processes, so a fork cannot repeat ids)."""

    def __init__(self) -> None:
        self._ready: list[str] = []

    def __call__(self) -> str:
        if not self._ready:
            self._ready = new_uuids(CHUNK)
        return self._ready.pop()
