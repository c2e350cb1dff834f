"""The router's cases on the in-memory store: no database, the whole file in a fraction of a
second. `tests/integration/test_router.py` runs the same cases on SQLite and PostgreSQL."""

import pytest

from tests.support.router_cases import CASES, Case, MemoryWorld, case_id


@pytest.mark.parametrize("case", CASES, ids=case_id)
async def test_router(case: Case) -> None:
    await case(MemoryWorld())
