"""Ids drawn many per read of the OS's randomness: distinct, version 7, ordered by time."""

import os
import time
import uuid

import pytest

from routing.uuids import FIRST_CHUNK, UuidSource, new_uuids


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


def test_a_source_draws_small_chunks_first_then_larger_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch that needs a few ids must not pay for sixty-four (the runner's CPU at half load)."""
    reads: list[int] = []
    real_urandom = os.urandom

    def counting_urandom(size: int) -> bytes:
        reads.append(size // 10)  # ten random bytes per id
        return real_urandom(size)

    monkeypatch.setattr(os, "urandom", counting_urandom)
    source = UuidSource()
    ids = [source() for _ in range(6)]
    assert reads == [FIRST_CHUNK]
    ids += [source() for _ in range(200)]
    assert reads == [8, 16, 32, 64, 64, 64][: len(reads)] and sum(reads) >= 206
    assert len(set(ids)) == 206
