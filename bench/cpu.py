"""CPU time a process used. On a shared two-core machine wall-clock rates swing by ±10 % from
run to run; CPU microseconds per message swing far less and say what each stage costs."""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StageRate:
    per_s: float
    cpu_us_per_msg: float | None  # CPU of the process that moved the messages


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` so far (Linux /proc); None where unavailable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def per_message_us(cpu_before: float | None, cpu_after: float | None, count: int) -> float | None:
    if cpu_before is None or cpu_after is None or count <= 0:
        return None
    return round((cpu_after - cpu_before) / count * 1e6, 1)
