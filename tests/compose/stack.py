"""One docker-compose project of the repository's docker-compose.yml, driven as ops would drive it.

Every command is `docker-compose -p <project> ...` with a project name of this test run's own,
so `down -v` removes exactly what this run started. Worker logs are followed from the moment a
container exists (`podman logs -f`), so the lines of a container that compose later removes
(scale down) are kept; container exits are recorded from `podman events` with their exit codes.
"""

import contextlib
import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.compose.runtime import ROOT

LogLine = dict[str, Any]
TRANSIENT = "/cgroup: no such process"


def parse_time(value: str) -> datetime:
    """Podman's times ("2026-12-07 14:30:02.453946698 +0000 UTC" or RFC 3339 with nanoseconds)."""
    found = _TIME.match(value)
    assert found, value
    date, clock, fraction, zone = found.groups()
    zone = "+00:00" if zone in (None, "Z") else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    return datetime.fromisoformat(f"{date}T{clock}.{(fraction or '0')[:6]:0<6}{zone}")


_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?\s*(Z|[+-]\d\d:?\d\d)?")


@dataclass
class Followed:
    """Everything one container logged, parsed where it is a JSON line."""

    name: str
    lines: list[LogLine] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)

    def events(self, event: str) -> list[LogLine]:
        return [line for line in self.lines if line.get("event") == event]

    def message_ids(self, prefix: str) -> list[str]:
        """message_ids of the commands this container routed, those starting with `prefix`."""
        return [
            str(line["message_id"])
            for line in self.lines
            if str(line.get("message_id") or "").startswith(prefix) and "interaction_id" in line
        ]


@dataclass
class ComposeStack:
    project: str
    env: dict[str, str]
    folder: Path
    image: str = ""  # the project image's id, once built
    transient_retries: int = 0
    followed: dict[str, Followed] = field(default_factory=dict)
    exits: list[dict[str, Any]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _processes: list[subprocess.Popen[str]] = field(default_factory=list)
    _followers: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- docker-compose ---------------------------------------------------------------------
    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [
            "docker-compose",
            "--project-name",
            self.project,
            "--project-directory",
            str(ROOT),
            "--file",
            str(ROOT / "docker-compose.yml"),
            *args,
        ]
        for _attempt in range(3):
            done = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
            )
            # Podman 4.3 now and then loses a race with a process that just exited ("read
            # /proc/N/cgroup: no such process"); `up` is idempotent, so it is simply run again.
            if not ("up" in args and TRANSIENT in done.stderr and done.returncode != 0):
                break
            self.transient_retries += 1
        with (self.folder / "compose.log").open("a") as log:
            log.write(
                f"$ {' '.join(command[7:])}  -> {done.returncode}\n{done.stdout}{done.stderr}\n"
            )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker-compose {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stderr[-4000:]}"
            )
        return done

    def psql(self, sql: str) -> list[list[str]]:
        """Rows of a query run by psql inside the `postgres` service (not published)."""
        done = self.compose(
            "exec", "-T", "postgres", "psql", "-U", self.env["POSTGRES_USER"],
            "-d", self.env["POSTGRES_DB"], "-At", "-F", "\t", "-c", sql,
        )  # fmt: skip
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    # --- podman: what compose made ---------------------------------------------------------
    def containers(self, service: str | None = None, *, running: bool = True) -> list[str]:
        """Container names of this project (of one service), oldest first."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        listed = podman("ps", *([] if running else ["-a"]), *filters, "--format", "json")
        rows = sorted(json.loads(listed or "[]"), key=lambda row: row["Created"])
        return [row["Names"][0] for row in rows]

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(json.loads(podman("inspect", name))[0])

    def health(self, name: str) -> str | None:
        """healthy / starting / unhealthy, or None for a container without a healthcheck."""
        state = self.inspect(name)["State"]
        health = state.get("Health") or state.get("Healthcheck") or {}
        return health.get("Status") or None

    def wait_healthy(self, within: float) -> float:
        """Until every running container with a healthcheck is healthy; the seconds it took."""
        started = time.monotonic()
        while True:
            states = {name: self.health(name) for name in self.containers()}
            waiting = {n: s for n, s in states.items() if s not in (None, "healthy")}
            if not waiting:
                return time.monotonic() - started
            if time.monotonic() - started > within:
                raise AssertionError(f"not healthy within {within:.0f}s: {waiting}")
            time.sleep(0.5)

    # --- following logs and exits ----------------------------------------------------------
    def follow(self, service: str) -> list[Followed]:
        """Follow every running container of `service` not followed now (new, or restarted:
        a restart ends `podman logs -f`, and a new one reads the whole log again); all of the
        service's containers followed so far."""
        for name in self.containers(service):
            with self._lock:
                follower = self._followers.get(name)
                if follower is not None and follower.poll() is None:
                    continue
                self.followed[name] = Followed(name)
            process = subprocess.Popen(
                ["podman", "logs", "--follow", name],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            thread = threading.Thread(target=self._read, args=(process, self.followed[name]))
            thread.start()
            self._followers[name] = process
            self._processes.append(process)
            self._threads.append(thread)
        return [f for n, f in self.followed.items() if self.service_of(n) == service]

    def logged(self, service: str) -> list[Followed]:
        """Each container of `service` ever followed, with all it logged: a running one read
        whole now (its log spans restarts, which end a follower), a removed one as followed."""
        running = set(self.containers(service))
        found = []
        for followed in self.follow(service):
            if followed.name not in running:
                found.append(followed)
                continue
            whole = Followed(followed.name)
            for line in podman("logs", followed.name, merge_stderr=True).splitlines():
                whole.raw.append(line + "\n")
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        whole.lines.append(json.loads(line))
            found.append(whole)
        return found

    def service_of(self, name: str) -> str:
        # compose 1.29 names containers <project>_<service>_<n>
        return name.removeprefix(f"{self.project}_").rsplit("_", 1)[0]

    def watch_exits(self) -> None:
        """Record every container of this project that dies, with its exit code."""
        process = subprocess.Popen(
            [
                "podman", "events", "--format", "json",
                "--filter", "event=died",
                "--filter", f"label=com.docker.compose.project={self.project}",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        thread = threading.Thread(target=self._read_exits, args=(process,))
        thread.start()
        self._processes.append(process)
        self._threads.append(thread)

    def exit_codes(self, name: str) -> list[int]:
        with self._lock:
            # (podman leaves ContainerExitCode out of the JSON when it is 0)
            return [int(e.get("ContainerExitCode", 0)) for e in self.exits if e["Name"] == name]

    def _read(self, process: subprocess.Popen[str], into: Followed) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                into.raw.append(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        into.lines.append(json.loads(line))

    def _read_exits(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with contextlib.suppress(ValueError), self._lock:
                self.exits.append(json.loads(line))

    def stop_following(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)
        with (self.folder / "container-logs.txt").open("w") as out:
            for name, followed in self.followed.items():
                out.write(f"===== {name}\n{''.join(followed.raw)}")


def podman(*args: str, timeout: float = 120, merge_stderr: bool = False) -> str:
    done = subprocess.run(
        ["podman", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed: {(done.stderr or '')[-2000:]}")
    return done.stdout


@contextlib.contextmanager
def torn_down(stack: ComposeStack) -> Iterator[ComposeStack]:
    """The stack, and `down -v` (every profile) afterwards whatever happened."""
    try:
        yield stack
    finally:
        with contextlib.suppress(Exception):
            stack.compose("--profile", "cluster", "down", "-v", "--timeout", "30", check=False)
        stack.stop_following()
        remove_leftovers(stack.project)


def remove_leftovers(project: str) -> None:
    """What `down -v` could not remove (the API service gone, say), by this project's label."""
    label = f"label=com.docker.compose.project={project}"
    for kind, listing in (
        ("container", ["ps", "-aq", "--filter", label]),
        ("volume", ["volume", "ls", "-q", "--filter", label]),
        ("network", ["network", "ls", "-q", "--filter", label]),
    ):
        found = subprocess.run(["podman", *listing], capture_output=True, text=True).stdout.split()
        if found:
            force = ["-f", "-t", "5"] if kind == "container" else ["-f"]
            subprocess.run(["podman", kind, "rm", *force, *found], capture_output=True)
