"""The container runtime for the compose tests: Podman's Docker API on a socket of our own, and a
healthcheck loop, because Podman schedules healthchecks with systemd timers and there is none.

Both are started for the test session and stopped at its end (by their own process, never by a
name pattern). How the machine is set up: scripts/container-runtime and
../shared/notes/containers-on-this-machine.md.
"""

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SCRIPT = ROOT / "scripts" / "container-runtime"
STANDINS_SCRIPT = ROOT / "scripts" / "container-standins"


def runtime_problem() -> str | None:
    """Why no container runtime can be had here (one line), or None when it is ready.

    Sets it up first when it is missing and we are root (the script is idempotent)."""
    check = subprocess.run([RUNTIME_SCRIPT, "--check"], capture_output=True, text=True)
    if check.returncode == 0:
        return None
    if os.geteuid() != 0:
        return check.stderr.strip().splitlines()[-1] if check.stderr.strip() else "not set up"
    setup = subprocess.run([RUNTIME_SCRIPT], capture_output=True, text=True, timeout=900)
    if setup.returncode != 0:
        lines = (setup.stderr or setup.stdout).strip().splitlines()
        return f"scripts/container-runtime failed: {lines[-1] if lines else setup.returncode}"
    return None


def build_standins() -> str:
    """Build (or find current) the stand-in base images; their log, for the report."""
    done = subprocess.run([STANDINS_SCRIPT], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/container-standins failed:\n{done.stderr[-3000:]}")
    return done.stderr


@contextlib.contextmanager
def docker_api(folder: Path) -> Iterator[str]:
    """`podman system service` on a socket in `folder`: the DOCKER_HOST for docker-compose."""
    url = f"unix://{folder / 'podman.sock'}"
    log = (folder / "podman-service.log").open("wb")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time", "0", url],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not answer on {url}")
            time.sleep(0.1)
        yield url
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()


def _answers(url: str) -> bool:
    """Whether the Docker API answers its ping on this unix socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(url.removeprefix("unix://"))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            status_line = sock.recv(64).split(b"\r\n", 1)[0]
            return status_line.split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


class HealthcheckLoop:
    """Runs `podman healthcheck run` for one compose project's containers that are starting or
    unhealthy, about once a second each (several at a time), until stopped.

    Healthy containers are not checked again: enough for `depends_on: service_healthy` and for
    the tests, and it keeps the CPU for the work (a RabbitMQ check starts an Erlang VM).
    """

    def __init__(self, project: str) -> None:
        self.project = project
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"healthchecks-{project}")
        self._pool = ThreadPoolExecutor(max_workers=4)
        self._running: dict[str, Future[None]] = {}

    def __enter__(self) -> "HealthcheckLoop":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for container in self._waiting():
                running = self._running.get(container)
                if running is None or running.done():
                    self._running[container] = self._pool.submit(self._check, container)
            self._stop.wait(1.0)

    def _waiting(self) -> list[str]:
        found: list[str] = []
        for health in ("starting", "unhealthy"):
            listed = subprocess.run(
                [
                    "podman", "ps", "-q",
                    "--filter", f"label=com.docker.compose.project={self.project}",
                    "--filter", f"health={health}",
                ],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            found += listed.stdout.split()
        return found

    @staticmethod
    def _check(container: str) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["podman", "healthcheck", "run", container], capture_output=True, timeout=60
            )
