"""A throwaway three-node RabbitMQ cluster on the test machine, beside the RabbitMQ already there.

Everything is its own: node names (with a per-run suffix, so two test runs on one machine do not
meet), AMQP and Erlang distribution ports (free ones, picked at start), data, log and config
files, and an Erlang cookie in its own HOME shared by the nodes and `rabbitmqctl`. Settings and
pitfalls follow shared/notes/rabbitmq-cluster-on-one-host.md: RabbitMQ's own scripts from
/usr/lib/rabbitmq/bin (the Debian wrapper in /usr/sbin switches to the system node's cookie), an
empty env file so /etc/rabbitmq/rabbitmq-env.conf stays out, an own rabbitmq.conf so the node
does not read /etc/rabbitmq/rabbitmq.conf and try port 5672, no plugins (management adds ~7 s
per join). The system node and epmd are never touched.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
USER = PASSWORD = "guest"
START_TIMEOUT_S = 90
CTL_TIMEOUT_S = 60


class ClusterUnavailable(RuntimeError):
    """The machine cannot run the throwaway cluster; the message says what is missing."""


def missing_prerequisite() -> str | None:
    """None when the cluster can run here; otherwise one line saying what to install."""
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not os.access(RABBITMQ_BIN / tool, os.X_OK):
            return (
                f"the cluster tests start their own RabbitMQ nodes and need {RABBITMQ_BIN / tool} "
                "(Debian package rabbitmq-server: apt-get install rabbitmq-server)"
            )
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Node:
    number: int
    name: str  # lrc1-ab12cd@localhost
    amqp_port: int
    dist_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid_file(self) -> Path:
        return self.folder / "beam.pid"

    @property
    def log_folder(self) -> Path:
        return self.folder / "log"

    def url(self, vhost: str) -> str:
        return f"amqp://{USER}:{PASSWORD}@127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"

    def beam_pid(self) -> int | None:
        """The node's Erlang VM (its command line does not name the node: the PID file does)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


class ThrowawayCluster:
    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.home = root / "home"
        self.env_file = root / "rabbitmq-env.conf"
        suffix = secrets.token_hex(3)
        self.nodes = [
            Node(n, f"lrc{n}-{suffix}@localhost", free_port(), free_port(), root / f"lrc{n}")
            for n in range(1, size + 1)
        ]
        self.timings: dict[str, float] = {}

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Write every file, start all nodes at once, then join 2..N to node 1."""
        problem = missing_prerequisite()
        if problem:
            raise ClusterUnavailable(problem)
        self.home.mkdir(parents=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        self.env_file.write_text("")  # keeps /etc/rabbitmq/rabbitmq-env.conf out
        for node in self.nodes:
            self._write_config(node)
        began = time.monotonic()
        for node in self.nodes:
            self._spawn(node)
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self.wait_started, self.nodes))
        self.timings["start_s"] = time.monotonic() - began
        first, *others = self.nodes
        for node in others:
            began = time.monotonic()
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
            self.timings[f"join_{node.number}_s"] = time.monotonic() - began
        running = self.running_nodes(first)
        if running != {n.name for n in self.nodes}:
            raise ClusterUnavailable(f"the nodes did not form one cluster: {sorted(running)}")

    def close(self) -> None:
        """Stop every node (at once); kill -9, by its PID file only, what does not stop."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._shut_down, self.nodes))
        for node in self.nodes:
            shutil.rmtree(node.folder / "mnesia", ignore_errors=True)

    def _shut_down(self, node: Node) -> None:
        if not self.is_running(node):
            return
        try:
            self.ctl(node, "stop", timeout=30)
            if node.process is not None:
                node.process.wait(timeout=30)
        except (subprocess.SubprocessError, OSError):
            self.kill(node)

    # --- what the tests do to nodes -------------------------------------------------------

    def kill(self, node: Node) -> None:
        """kill -9 of the node's VM: no goodbye to clients or peers."""
        pid = node.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.process is not None:
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(timeout=10)

    def stop(self, node: Node) -> None:
        """A clean stop (SIGTERM, which RabbitMQ handles as `rabbitmqctl stop`): the node closes
        its client connections with "shutdown" and leaves the cluster running without it.
        Not `rabbitmqctl stop` itself: the CLI's own VM takes seconds to boot on a busy machine,
        which would blur when the stop happened."""
        pid = node.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if node.process is not None:
            node.process.wait(timeout=60)

    def restart(self, node: Node) -> float:
        """Start a stopped or killed node again; it rejoins by itself. Seconds until running."""
        began = time.monotonic()
        self._spawn(node)
        self.wait_started(node)
        return time.monotonic() - began

    def is_running(self, node: Node) -> bool:
        return node.process is not None and node.process.poll() is None

    def heal(self) -> None:
        """Bring back any node a test left down (all at once), so the next test starts with
        three."""
        down = [node for node in self.nodes if not self.is_running(node)]
        for node in down:
            self._spawn(node)
        for node in down:
            self.wait_started(node)
        self.await_running(self.nodes)

    def await_running(self, nodes: Sequence[Node], within: float = 60) -> None:
        """Until the cluster reports exactly these nodes running (a restarted node rejoined)."""
        expected = {n.name for n in nodes}
        deadline = time.monotonic() + within
        while (running := self.running_nodes(nodes[0])) != expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"running {sorted(running)}, expected {sorted(expected)}")
            time.sleep(0.2)

    # --- rabbitmqctl ----------------------------------------------------------------------

    def ctl(self, node: Node, *args: str, timeout: float = CTL_TIMEOUT_S) -> str:
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", node.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode,
                ["rabbitmqctl", "-n", node.name, *args],
                result.stdout,
                result.stderr,
            )
        return result.stdout

    def running_nodes(self, via: Node) -> set[str]:
        status = json.loads(self.ctl(via, "cluster_status", "--formatter", "json"))
        return set(status.get("running_nodes", []))

    def add_vhost(self, vhost: str) -> None:
        first = self.live_node()
        self.ctl(first, "add_vhost", vhost)
        self.ctl(first, "set_permissions", "-p", vhost, USER, ".*", ".*", ".*")

    def queue_members(self, vhost: str, queue: str) -> tuple[Node, list[Node]]:
        """The leader of a quorum queue and its members (rabbitmqctl, which may lag a little)."""
        rows = json.loads(
            self.ctl(
                self.live_node(),
                "list_queues",
                "-p",
                vhost,
                "name",
                "leader",
                "members",
                "online",
                "--formatter",
                "json",
            )
        )
        row = next(r for r in rows if r["name"] == queue)
        by_name = {n.name: n for n in self.nodes}
        return by_name[row["leader"]], [by_name[m] for m in row["online"]]

    def live_node(self) -> Node:
        return next(n for n in self.nodes if self.is_running(n))

    def urls(self, vhost: str, order: Sequence[Node] | None = None) -> str:
        """AMQP_URL listing the nodes (in `order`, default 1..N)."""
        return ",".join(n.url(vhost) for n in (order or self.nodes))

    # --- internals ------------------------------------------------------------------------

    def _env(self, node: Node | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.home),  # .erlang.cookie: the nodes' and the CLI's
            "RABBITMQ_CONF_ENV_FILE": str(self.env_file),
            "RABBITMQ_CTL_DIST_PORT_MIN": "35781",
            "RABBITMQ_CTL_DIST_PORT_MAX": "35801",
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        if node is not None:
            env.update(
                RABBITMQ_NODENAME=node.name,
                RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                RABBITMQ_NODE_PORT=str(node.amqp_port),
                RABBITMQ_DIST_PORT=str(node.dist_port),
                RABBITMQ_CONFIG_FILE=str(node.folder / "rabbitmq.conf"),
                RABBITMQ_ADVANCED_CONFIG_FILE=str(node.folder / "advanced.config"),
                RABBITMQ_ENABLED_PLUGINS_FILE=str(node.folder / "enabled_plugins"),
                RABBITMQ_MNESIA_BASE=str(node.folder / "mnesia"),
                RABBITMQ_LOG_BASE=str(node.log_folder),
                RABBITMQ_PID_FILE=str(node.pid_file),
                RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            )
        return env

    def _write_config(self, node: Node) -> None:
        node.folder.mkdir(parents=True)
        node.log_folder.mkdir()
        (node.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\nloopback_users.guest = true\n"
        )
        (node.folder / "advanced.config").write_text("[].\n")
        (node.folder / "enabled_plugins").write_text("[].\n")

    def _spawn(self, node: Node) -> None:
        node.pid_file.unlink(missing_ok=True)
        output = (node.log_folder / "console.log").open("ab")
        node.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self._env(node),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the test run is not the node's
        )
        output.close()

    def wait_started(self, node: Node) -> None:
        try:
            self.ctl(
                node,
                "wait",
                str(node.pid_file),
                "--timeout",
                str(START_TIMEOUT_S),
                timeout=START_TIMEOUT_S + 10,
            )
        except subprocess.CalledProcessError as exc:
            tail = (node.log_folder / "console.log").read_text(errors="replace")[-2000:]
            raise ClusterUnavailable(f"{node.name} did not start: {exc.stderr}\n{tail}") from exc
