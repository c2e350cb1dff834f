"""Ids drawn many per read of the OS's randomness are still distinct version-4 UUIDs."""

import uuid

from db.uuids import UuidSource, new_uuids


def test_new_uuids_are_distinct_random_version_4() -> None:
    source = UuidSource()
    ids = new_uuids(300) + [source() for _ in range(300)]
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == 600
    assert {(u.version, u.variant) for u in parsed} == {(4, uuid.RFC_4122)}
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))
