"""Medians over rounds. On a shared two-core host one stage's rate swung from 2,958 to 5,280
msg/s between consecutive runs; a figure measured once says as much about the neighbours as
about the code, so every stage runs several rounds and the median is the result."""

import statistics
from collections.abc import Sequence
from typing import Any

LATENCY_MEDIANS = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "warmup_p99_ms",
    "worker_cpu_share",
    "bench_cpu_share",
)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def median_throughput(rounds: Sequence[dict[str, Any]], kinds: Sequence[str]) -> dict[str, Any]:
    """The ceiling's and each pipeline's median rate and CPU; a pipeline's ratio is the median
    of its rounds' ratios, each taken against the ceiling measured in the same round."""
    result: dict[str, Any] = {
        "ceiling_per_s": _median([r["ceiling_per_s"] for r in rounds]),
        "ceiling_cpu_us_per_msg": _median([r["ceiling_cpu_us_per_msg"] for r in rounds]),
    }
    for kind in kinds:
        stages = [r[kind] for r in rounds]
        result[kind] = {
            "per_s": _median([s["per_s"] for s in stages]),
            "ratio": _median([s["ratio"] for s in stages]),
            "history": 0,
            "cpu_us_per_msg": _median([s["cpu_us_per_msg"] for s in stages]),
        }
    return result


def median_latency(rounds: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Each figure's median over the rounds (all at the same rate), and every round as run."""
    first = rounds[0]
    medians = {key: _median([r[key] for r in rounds]) for key in LATENCY_MEDIANS if key in first}
    fixed = {key: first[key] for key in ("rate_per_s", "count", "warmup_s")}
    return {**fixed, **medians, "rounds": list(rounds)}
