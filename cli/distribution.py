"""Observed versus configured shares: the numbers the demo prints. Pure: no I/O.

Configured share of an operator within a source = its weight / the sum of the source's weights
(active operators). Its configured share overall = those shares averaged over the sources,
weighted by how many interactions each source received.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from cli.demo_setup import DemoConfig, SourceConfig

WAITING = "(waiting)"


@dataclass(frozen=True)
class Outcome:
    source_id: int
    operator_id: int | None  # None: waiting, no operator had capacity


def source_rows(config: DemoConfig, outcomes: Sequence[Outcome]) -> list[list[object]]:
    """source, operator, weight, configured %, observed %, count; per source, then waiting."""
    rows: list[list[object]] = []
    for source in config.sources:
        mine = [o.operator_id for o in outcomes if o.source_id == source.id]
        counts = Counter(mine)
        for operator_id, weight in source.weights.items():
            name = _name(config, operator_id)
            share = 100 * weight / sum(source.weights.values())
            seen = counts[operator_id]
            rows.append([source.identifier, name, weight, share, _pct(seen, len(mine)), seen])
        if counts[None]:
            rows.append(
                [source.identifier, WAITING, "-", "-", _pct(counts[None], len(mine)), counts[None]]
            )
    return rows


def operator_rows(config: DemoConfig, outcomes: Sequence[Outcome]) -> list[list[object]]:
    """operator, configured %, observed %, count; over all sources."""
    per_source = Counter(o.source_id for o in outcomes)
    counts = Counter(o.operator_id for o in outcomes)
    expected = _expected_overall(config.sources, per_source, len(outcomes))
    rows: list[list[object]] = [
        [_name(config, op), share, _pct(counts[op], len(outcomes)), counts[op]]
        for op, share in sorted(expected.items())
    ]
    if counts[None]:
        rows.append([WAITING, "-", _pct(counts[None], len(outcomes)), counts[None]])
    return rows


def _expected_overall(
    sources: Sequence[SourceConfig], per_source: Counter[int], total: int
) -> dict[int, float]:
    expected: dict[int, float] = {}
    for source in sources:
        portion = per_source[source.id] / total if total else 1 / len(sources)
        weight_sum = sum(source.weights.values())
        for operator_id, weight in source.weights.items():
            share = 100 * portion * weight / weight_sum
            expected[operator_id] = expected.get(operator_id, 0.0) + share
    return expected


def _name(config: DemoConfig, operator_id: int) -> str:
    return f"{config.operators.get(operator_id, '?')} (#{operator_id})"


def _pct(part: int, whole: int) -> float:
    return 100 * part / whole if whole else 0.0
