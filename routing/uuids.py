"""Time-ordered UUIDs (version 7, RFC 9562), many from one read of the OS's randomness.

Version 7: 48 bits of Unix time in milliseconds, then 74 random bits. Ids made close in time
sort close together, so a batch's new keys land on the last pages of the `event_id` and lead
indexes instead of one random page each (random version-4 ids made every batch rewrite a page
per event in SQLite's WAL). And `uuid.uuid4()` reads the OS's randomness once per id: on the
worker's sqlite3 runner thread each read gives up the GIL and can wait a switch interval
to get it back.
"""

import os
import time

FIRST_CHUNK = 8
CHUNK = 64
_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62


def new_uuids(count: int) -> list[str]:
    """`count` distinct version-7 UUID strings for the current millisecond."""
    stamp = (time.time_ns() // 1_000_000) << 80
    raw = os.urandom(10 * count)
    return [_uuid7(stamp, int.from_bytes(raw[i : i + 10])) for i in range(0, len(raw), 10)]


def _uuid7(stamp: int, random_80: int) -> str:
    """The canonical 8-4-4-4-12 text, formatted directly (what `str(uuid.UUID(int=...))` gives,
    for less: no object, no range checks on bits that are right by construction)."""
    rand_a, rand_b = (random_80 >> 68) & 0xFFF, random_80 & ((1 << 62) - 1)
    h = f"{stamp | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class UuidSource:
    """One per unit of work (never shared across processes, so a fork cannot repeat ids).

    Drawn in chunks that double, from FIRST_CHUNK up to CHUNK: a unit of work that needs six
    ids makes eight, not sixty-four (at half load a batch has a handful of messages, and
    formatting unused ids showed up in the runner's profile: bench/README.md).
    """

    def __init__(self) -> None:
        self._ready: list[str] = []
        self._next_chunk = FIRST_CHUNK

    def __call__(self) -> str:
        if not self._ready:
            self._ready = new_uuids(self._next_chunk)
            self._next_chunk = min(CHUNK, self._next_chunk * 2)
        return self._ready.pop()
