"""`python -m bench`: ceiling, pipeline on SQLite and PostgreSQL, latency; prints and saves JSON."""

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.broker import private_vhost
from bench.ceiling import measure_ceiling
from bench.cpu import StageRate
from bench.database import fresh_database, preload_history, seed
from bench.latency import WARMUP_S, measure_latency
from bench.pipeline import WORKER_MODULE, measure_pipeline
from bench.rounds import median_latency, median_throughput
from cli import event_loop
from schemas.settings import Settings

DEFAULT_RESULTS = Path("bench/results")
POLICIES = "_policies"  # the suffix of a stage run with every routing policy configured
BARE_LOOP_MODULE = ("bench.bare_loop",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--n", type=int, default=20_000, help="pre-published messages per stage")
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=10.0,
        help="duration of the steady-load latency stage",
    )
    parser.add_argument(
        "--latency-warmup-seconds",
        type=float,
        default=WARMUP_S,
        help="load before the latency stage starts counting (reported apart)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="also run the SQLite and PostgreSQL pipelines over this many stored "
        "interactions (e.g. 1000000) to show routing cost does not grow",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="times each stage runs; medians are reported (this host's rates swing by half)",
    )
    parser.add_argument(
        "--policies",
        action="store_true",
        help="also run each pipeline with every routing policy configured (sticky sources, "
        "priorities, a waiting SLA, offers), as `<kind>_policies`",
    )
    parser.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", Settings().amqp_url))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_POSTGRES_URL"),
        help="admin URL of a PostgreSQL server; omit to skip PostgreSQL stages",
    )
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


async def run(args: argparse.Namespace, amqp_url: str) -> dict[str, Any]:
    settings = Settings()
    kinds = ["sqlite"] + (["postgresql"] if args.postgres_url else [])
    if args.policies:
        kinds += [f"{kind}{POLICIES}" for kind in kinds]
    results: dict[str, Any] = {
        "n": args.n,
        "rounds": args.rounds,
        "batch_size": settings.batch_size,
        "prefetch": settings.prefetch_count,
        "machine": _machine(),
    }
    throughput = []
    for number in range(1, args.rounds + 1):
        _say(f"-- throughput, round {number} of {args.rounds}")
        throughput.append(await _throughput_round(args, amqp_url, settings, kinds))
    results.update(median_throughput(throughput, kinds), throughput_rounds=throughput)
    if args.history:
        ceiling = StageRate(results["ceiling_per_s"], results["ceiling_cpu_us_per_msg"])
        for kind in kinds:
            results[f"{kind}_history"] = await _pipeline_stage(
                args, amqp_url, kind, args.history, ceiling
            )
    results.update(await _latency_rounds(args, amqp_url, results["sqlite"]["per_s"] / 2))
    _summarise(results, kinds)
    return results


async def _throughput_round(
    args: argparse.Namespace, amqp_url: str, settings: Settings, kinds: Sequence[str]
) -> dict[str, Any]:
    """The ceiling, then each pipeline, close together in time: a round's ratios compare
    rates measured under the same conditions."""
    ceiling = await measure_ceiling(amqp_url, args.n, settings.batch_size, settings.prefetch_count)
    _say(
        f"ceiling (bare aio-pika loop, quorum queue): {ceiling.per_s:,.0f} msg/s"
        f"{_cpu_note(ceiling, 'message')}"
    )
    stages = {kind: await _pipeline_stage(args, amqp_url, kind, 0, ceiling) for kind in kinds}
    return {
        "ceiling_per_s": round(ceiling.per_s, 1),
        "ceiling_cpu_us_per_msg": ceiling.cpu_us_per_msg,
        **stages,
    }


async def _latency_rounds(args: argparse.Namespace, amqp_url: str, rate: float) -> dict[str, Any]:
    """The worker and the floor in turns, every round at the same rate."""
    worker, floor = [], []
    for number in range(1, args.rounds + 1):
        _say(f"-- latency, round {number} of {args.rounds}")
        worker.append(await _latency_stage(args, amqp_url, rate))
        floor.append(await _latency_stage(args, amqp_url, rate, module=BARE_LOOP_MODULE))
    return {"latency_sqlite": median_latency(worker), "latency_floor": median_latency(floor)}


def _summarise(results: dict[str, Any], kinds: Sequence[str]) -> None:
    _say(f"== median of {results['rounds']} rounds")
    _say(f"ceiling {results['ceiling_per_s']:,.0f} msg/s")
    for kind in kinds:
        stage = results[kind]
        _say(f"pipeline {kind}: {stage['per_s']:,.0f} interactions/s, ratio {stage['ratio']:.2f}")
    for key, what in (("latency_sqlite", "worker"), ("latency_floor", "floor (bare loop)")):
        latency = results[key]
        each = ", ".join(f"{r['p99_ms']:.0f}" for r in latency["rounds"])
        _say(
            f"latency {what} at {latency['rate_per_s']:,.0f}/s: p50 {latency['p50_ms']} ms, "
            f"p99 {latency['p99_ms']} ms (rounds' p99: {each} ms)"
        )


async def _pipeline_stage(
    args: argparse.Namespace, amqp_url: str, kind: str, history: int, ceiling: StageRate
) -> dict[str, Any]:
    """One pipeline stage; a kind ending in `_policies` runs with every policy configured."""
    database, policies = kind.removesuffix(POLICIES), kind.endswith(POLICIES)
    async with fresh_database(database, args.postgres_url) as url:
        source_ids = await seed(url, policies)
        if history:
            _say(f"{kind}: storing {history:,} past interactions ...")
            await preload_history(url, history)
        rate = await measure_pipeline(amqp_url, url, source_ids, args.n, priorities=policies)
    ratio = rate.per_s / ceiling.per_s
    _say(
        f"pipeline {kind:<10} history={history:>9,}: {rate.per_s:,.0f} interactions/s, "
        f"ratio to ceiling {ratio:.2f}{_cpu_note(rate, 'interaction')}"
    )
    return {
        "per_s": round(rate.per_s, 1),
        "ratio": round(ratio, 3),
        "history": history,
        "cpu_us_per_msg": rate.cpu_us_per_msg,
    }


def _cpu_note(rate: StageRate, unit: str) -> str:
    if rate.cpu_us_per_msg is None:
        return ""
    return f" (CPU {rate.cpu_us_per_msg:,.0f} µs per {unit})"


async def _latency_stage(
    args: argparse.Namespace, amqp_url: str, rate: float, module: Sequence[str] = WORKER_MODULE
) -> dict[str, float]:
    async with fresh_database("sqlite", None) as url:
        source_ids = await seed(url)
        latency = await measure_latency(
            amqp_url,
            url,
            source_ids,
            rate,
            args.latency_seconds,
            warmup_s=args.latency_warmup_seconds,
            module=module,
        )
    what = (
        "on SQLite (half the measured rate)"
        if module == WORKER_MODULE
        else "floor: the bare client loop in the worker's place"
    )
    _say(
        f"latency at {rate:,.0f}/s {what}, "
        f"{args.latency_seconds:g} s after a {latency['warmup_s']:g} s warm-up: "
        f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms"
        f" (warm-up p99 {latency['warmup_p99_ms']} ms){_shares_note(latency)}"
    )
    return latency


def _shares_note(latency: dict[str, float]) -> str:
    shares = [f"{k.removesuffix('_cpu_share')} {v:.0%}" for k, v in latency.items() if "cpu" in k]
    return f"; busy: {', '.join(shares)} of a core" if shares else ""


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with private_vhost(args.amqp_url) as amqp_url:
        results = event_loop.run(run(args, amqp_url))  # the worker's loop, for a fair ceiling
    target = args.json or DEFAULT_RESULTS / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2))
    _say(f"results written to {target}")
    return results
