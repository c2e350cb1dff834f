"""`python -m bench.compare BASE_TREE`: this tree against another checkout, run by run, in turns.

On a shared host the speed moves by half within minutes, so two `python -m bench` runs an hour
apart compare the hours more than the code. Here the two trees take turns, one round each
(its own ceiling, SQLite and PostgreSQL pipelines, a short latency stage), so every pair of
runs is a minute apart; the medians and the pairs' differences are printed. Each run is the
tree's own `python -m bench`, started with the tree as its working directory, so its worker,
its schema and its harness are that tree's.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

KINDS = ("sqlite", "postgresql")
FIGURES = ("ratio", "per_s", "cpu_us_per_msg")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("base", type=Path, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--pairs", type=int, default=6, help="runs of each tree (6)")
    parser.add_argument("--n", type=int, default=20_000, help="messages per stage (20000)")
    parser.add_argument("--json", type=Path, help="where to write every run's results")
    args = parser.parse_args()
    here = Path.cwd()
    runs: dict[str, list[dict[str, Any]]] = {"this": [], "base": []}
    for number in range(1, args.pairs + 1):
        # Alternate which goes first, so neither always runs on a warmer (or busier) host.
        order = [("this", here), ("base", args.base)]
        for name, tree in order if number % 2 else reversed(order):
            print(f"-- pair {number} of {args.pairs}: {name} ({tree})", flush=True)
            runs[name].append(_one_run(tree, args.n))
            _print_run(name, runs[name][-1])
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    _summarise(runs)


def _one_run(tree: Path, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.json"
        command = [sys.executable, "-m", "bench", "--rounds", "1", "--n", str(n)]
        command += ["--latency-seconds", "2", "--latency-warmup-seconds", "1", "--json", str(out)]
        subprocess.run(command, cwd=tree, env=os.environ, check=True, stdout=subprocess.DEVNULL)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _print_run(name: str, run: dict[str, Any]) -> None:
    stages = "; ".join(
        f"{kind} {run[kind]['per_s']:,.0f}/s ratio {run[kind]['ratio']:.2f} "
        f"CPU {run[kind]['cpu_us_per_msg']:.0f} µs"
        for kind in KINDS
        if kind in run
    )
    print(f"   {name}: ceiling {run['ceiling_per_s']:,.0f}/s; {stages}", flush=True)


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> None:
    print("== medians over the runs, and the median of the pairs' differences (this - base)")
    for kind in KINDS:
        if not all(kind in run for run in runs["this"] + runs["base"]):
            continue
        for figure in FIGURES:
            this = [run[kind][figure] for run in runs["this"]]
            base = [run[kind][figure] for run in runs["base"]]
            differences = [a - b for a, b in zip(this, base, strict=True)]
            higher = sum(d > 0 for d in differences)
            print(
                f"{kind} {figure}: this {statistics.median(this):.3g} "
                f"({', '.join(f'{v:.3g}' for v in this)}); base {statistics.median(base):.3g} "
                f"({', '.join(f'{v:.3g}' for v in base)}); difference "
                f"{statistics.median(differences):+.3g}, this higher in {higher} of "
                f"{len(differences)} pairs"
            )


if __name__ == "__main__":
    main()
