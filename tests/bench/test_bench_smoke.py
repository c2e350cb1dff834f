"""The benchmark runs end to end with a small N (a smoke test: no timing is asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# `bench` is not installed (pyproject.toml): `python -m bench` runs from the repository root.
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_runs_every_stage_and_writes_json(tmp_path: Path, amqp_session_url: str) -> None:
    if not os.environ.get("AMQP_URL"):
        pytest.skip("the bench creates its own vhost next to a local broker (AMQP_URL)")
    target = tmp_path / "bench.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--n",
            "300",
            "--latency-seconds",
            "1",
            "--history",
            "2000",
            "--rounds",
            "2",
            "--json",
            str(target),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(target.read_text())
    assert results["n"] == 300 and results["ceiling_per_s"] > 0
    stages = ["sqlite", "sqlite_history"]
    if os.environ.get("TEST_POSTGRES_URL"):
        stages += ["postgresql", "postgresql_history"]
    for stage in stages:
        assert results[stage]["per_s"] > 0 and results[stage]["ratio"] > 0, stage
    assert results["sqlite_history"]["history"] == 2000
    latency = results["latency_sqlite"]
    assert latency["count"] > 0 and 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert latency["warmup_s"] > 0 and latency["warmup_p99_ms"] > 0
    floor = results["latency_floor"]  # the bare loop in the worker's place, same rate
    assert floor["count"] == latency["count"] and floor["rate_per_s"] == latency["rate_per_s"]
    assert len(results["throughput_rounds"]) == 2
    assert len(latency["rounds"]) == 2 and len(floor["rounds"]) == 2
    assert "== median of 2 rounds" in completed.stdout
    if sys.platform == "linux":  # CPU accounting reads /proc
        assert results["ceiling_cpu_us_per_msg"] > 0
        assert all(results[stage]["cpu_us_per_msg"] > 0 for stage in stages)
        assert latency["worker_cpu_share"] > 0 and latency["bench_cpu_share"] > 0
    assert "ratio to ceiling" in completed.stdout
