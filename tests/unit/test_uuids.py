"""Ids drawn many per read of the OS's randomness: distinct, version 7, ordered by time."""

import time
import uuid

from db.uuids import UuidSource, new_uuids


def test_new_uuids_are_distinct_version_7_with_the_current_time() -> None:
    before = time.time_ns() // 1_000_000
    source = UuidSource()
    ids = new_uuids(300) + [source() for _ in range(300)]
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == 600
    assert {(u.version, u.variant) for u in parsed} == {(7, uuid.RFC_4122)}
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))
    assert all(before <= u.int >> 80 <= after for u in parsed)


def test_ids_of_later_milliseconds_sort_after_earlier_ones() -> None:
    first = new_uuids(50)
    time.sleep(0.002)  # the next millisecond: nothing to await, the ids carry the clock
    second = new_uuids(50)
    assert max(first) < min(second)
