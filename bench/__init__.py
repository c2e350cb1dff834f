"""Throughput and latency benchmarks: `python -m bench` (see bench/README.md)."""
