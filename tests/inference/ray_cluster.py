"""A real Ray cluster on this machine for the tests: a head and one worker node, each its own
``ray start --block`` process (its own process group), stopped by killing those groups.

Ray gives every node the machine's own address (it replaces 127.0.0.1 with it, and its gRPC
servers listen on every interface; it has no option to keep them on loopback), so the cluster is
joined as ``127.0.0.1:PORT`` and Ray reaches it there or on this machine's address. Every port is
a free one chosen here, the dashboard is off, usage stats are off, the temp dir is the test's, and
the cluster lives for one test module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 120.0  # a node may take this long to start on a loaded 2-core machine


def ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def auth_env() -> dict[str, str]:
    """Ray's token authentication off for the nodes and every driver, whatever ~/.ray holds (a
    local ``ray.init()`` leaves a token there, which a `ray start` would then require)."""
    return {"RAY_AUTH_MODE": "disabled"}


def env(tmp: Path) -> dict[str, str]:
    """This checkout first on the path (the workers import its ganforge), a private cache, no token."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), GANFORGE_CACHE_DIR=str(tmp / "cache"),
                RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS="", **auth_env())


@dataclass
class Cluster:
    tmp: Path
    port: int = field(default_factory=free_port)
    nodes: list = field(default_factory=list)  # the `ray start --block` processes, head first

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")
        proc = subprocess.Popen([ray_cli(), "start", "--block", "--disable-usage-stats", "--num-cpus=1", *args],
                                env=env(self.tmp), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.nodes.append(proc)
        return proc

    def start(self) -> "Cluster":
        ports = {name: free_port() for name in ("ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port",
                                                "dashboard-agent-grpc-port", "runtime-env-agent-port",
                                                "metrics-export-port")}
        self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false",
                             f"--temp-dir={self.tmp / 'ray'}", *(f"--{k}={v}" for k, v in ports.items())])
        self._wait(lambda: _listening(self.port), "the head's GCS")
        self._start("worker", [f"--address={self.address}"])
        return self

    def wait_nodes(self, ray, count: int = 2) -> list[dict]:
        """The alive nodes, once there are ``count`` (from a connected driver)."""
        self._wait(lambda: len([n for n in ray.nodes() if n["Alive"]]) >= count, f"{count} Ray nodes")
        return [n for n in ray.nodes() if n["Alive"]]

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not ready():
            dead = [p.args[3] for p in self.nodes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join((self.tmp / f"{n}.log").read_text(errors="replace")[-2000:] for n in ("head", "worker")
                                 if (self.tmp / f"{n}.log").exists())
                raise RuntimeError(f"{what} did not come up ({'a node exited' if dead else 'timed out'}):\n{logs}")
            time.sleep(0.1)

    def worker_node_pids(self) -> set[int]:
        """Every process of the worker node: its `ray start`, the raylet, the worker processes."""
        return descendants(self.nodes[1].pid)

    def stop(self) -> None:
        """Kill each node's processes (the worker processes a raylet starts have sessions of their
        own, so by pid, not only by group), then reap the `ray start` processes."""
        for proc in self.nodes:
            if proc.poll() is None:
                for pid in sorted(descendants(proc.pid)):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.nodes:
            proc.wait(timeout=30)


def descendants(root: int) -> set[int]:
    """``root`` and every process under it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(c for c in children.get(pid, ()) if c not in found)
    return found


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False
