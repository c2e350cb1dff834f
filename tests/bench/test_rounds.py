"""The bench's medians over rounds: pure functions over what each round measured."""

from bench.rounds import median_latency, median_throughput


def test_a_ratio_is_the_median_of_each_rounds_own_ratio() -> None:
    """Not median rate over median ceiling: a round's pipeline is compared with the ceiling
    measured beside it, under the same conditions."""
    rounds = [
        {"ceiling_per_s": 3000.0, "ceiling_cpu_us_per_msg": 300.0,
         "sqlite": {"per_s": 2900.0, "ratio": 0.97, "history": 0, "cpu_us_per_msg": 320.0}},
        {"ceiling_per_s": 5300.0, "ceiling_cpu_us_per_msg": 170.0,
         "sqlite": {"per_s": 2950.0, "ratio": 0.56, "history": 0, "cpu_us_per_msg": 310.0}},
        {"ceiling_per_s": 3900.0, "ceiling_cpu_us_per_msg": None,
         "sqlite": {"per_s": 3200.0, "ratio": 0.82, "history": 0, "cpu_us_per_msg": 280.0}},
    ]  # fmt: skip
    result = median_throughput(rounds, ["sqlite"])
    assert result["ceiling_per_s"] == 3900.0
    assert result["ceiling_cpu_us_per_msg"] == 235.0  # the rounds that could read /proc
    assert result["sqlite"] == {
        "per_s": 2950.0,
        "ratio": 0.82,
        "history": 0,
        "cpu_us_per_msg": 310.0,
    }


def test_latency_medians_keep_every_round() -> None:
    rounds = [
        {"rate_per_s": 1500.0, "count": 15000, "warmup_s": 2.0, "p50_ms": p50, "p99_ms": p99,
         "max_ms": p99 + 10, "warmup_p99_ms": 40.0, "worker_cpu_share": 0.7}
        for p50, p99 in ((16.0, 109.0), (11.0, 34.0), (11.0, 305.0))
    ]  # fmt: skip
    result = median_latency(rounds)
    assert (result["p50_ms"], result["p99_ms"], result["max_ms"]) == (11.0, 109.0, 119.0)
    assert (result["rate_per_s"], result["count"]) == (1500.0, 15000)
    assert result["rounds"] == rounds
    assert "bench_cpu_share" not in result
