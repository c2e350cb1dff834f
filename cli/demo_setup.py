"""The demo's sample configuration (the user guide's operators, sources and weights) and a read
of whatever configuration the database holds, which is what the demo compares against.

Limits are far above the guide's 10/15/8: the demo shows how *weights* split traffic, and an
operator at its limit would take no more, which is a different lesson.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.operators import OperatorCRUD
from db.repositories.sources import SourceCRUD
from db.repositories.weights import SourceOperatorSettingCRUD

SAMPLE_LOAD_LIMIT = 10_000
# Sources of `demo --scenario contact-centre` start with this; the plain demo leaves them, and
# the operators weighted on them, out of what it seeds and what it compares against.
SCENARIO_PREFIX = "contact-centre-"
SAMPLE_OPERATORS = ("Иван Петров", "Мария Сидорова", "Алексей Иванов")
# (identifier, description, {operator index: weight}) as in the user guide.
SAMPLE_SOURCES: tuple[tuple[str, str, dict[int, int]], ...] = (
    ("telegram", "Telegram Bot", {0: 50, 1: 30, 2: 20}),
    ("email", "Email Support", {0: 40, 1: 60}),
    ("phone", "Phone Support", {1: 70, 2: 30}),
)


@dataclass(frozen=True)
class SourceConfig:
    id: int
    identifier: str
    weights: dict[int, int]  # operator_id -> weight, active operators only


@dataclass(frozen=True)
class DemoConfig:
    operators: dict[int, str]  # operator_id -> name
    sources: list[SourceConfig]  # sources with at least one active weighted operator


async def ensure_sample_setup(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Create the sample set-up if there are neither sources nor operators (the scenario's
    aside); True if created."""
    async with sessions() as session, session.begin():
        sources = await SourceCRUD(session).list_all()
        scenario = {s.id for s in sources if is_scenario(s.identifier)}
        weights = await SourceOperatorSettingCRUD(session).weights_for_sources(scenario)
        theirs = {operator_id for _, operator_id, _ in weights}
        operators = await OperatorCRUD(session).list_all()
        if len(sources) > len(scenario) or any(o.id not in theirs for o in operators):
            return False
        created = [
            await OperatorCRUD(session).create(n, SAMPLE_LOAD_LIMIT, True) for n in SAMPLE_OPERATORS
        ]
        for identifier, description, shares in SAMPLE_SOURCES:
            source = await SourceCRUD(session).create(identifier, description)
            by_id = {created[i].id: w for i, w in shares.items()}
            await SourceOperatorSettingCRUD(session).replace_source_weights(source.id, by_id)
    return True


def is_scenario(identifier: str) -> bool:
    return identifier.startswith(SCENARIO_PREFIX)


async def read_config(sessions: async_sessionmaker[AsyncSession]) -> DemoConfig:
    async with sessions() as session:
        operators = await OperatorCRUD(session).list_all()
        sources = [s for s in await SourceCRUD(session).list_all() if not is_scenario(s.identifier)]
        weights = await SourceOperatorSettingCRUD(session).weights_for_sources(
            s.id for s in sources
        )
    active = {o.id for o in operators if o.active}
    configs = [
        SourceConfig(s.id, s.identifier, _weights_of(s.id, weights, active)) for s in sources
    ]
    return DemoConfig({o.id: o.name for o in operators}, [c for c in configs if c.weights])


def _weights_of(
    source_id: int, weights: Sequence[tuple[int, int, int]], active: set[int]
) -> dict[int, int]:
    return {op: w for s, op, w in sorted(weights) if s == source_id and op in active}
