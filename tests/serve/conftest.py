"""gan-serve test helpers: a real server in a child process (``python -m ganforge.serve``, 127.0.0.1,
a free port, always stopped), and an in-process caller of the ASGI app for what needs control
over the model's timing (overload, timeouts)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
COND = DATA / "tiny-cond.onnx"  # image [1, 8, 8], latent 8, classes T-shirt/top, Trouser, Sneaker
IMAGE = DATA / "tiny-image.onnx"  # image [3, 8, 8], latent 8
LISTENING = re.compile(r"on http://127\.0\.0\.1:(\d+)/")

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401

    MISSING = None
except ImportError as exc:
    MISSING = f"gan-serve needs the serve extra ({exc.name} is missing): pip install 'ganforge[serve]'"


def pytest_collection_modifyitems(config, items):
    """Without the serve extra, the gan-serve tests skip, saying why (make test installs it with dev)."""
    if MISSING is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.skip(reason=MISSING))


class Server:
    def __init__(self, proc: subprocess.Popen, port: int, log: list[str] | None = None):
        self.proc, self.port = proc, port
        self.log = log or []  # what it printed up to where it listens
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, headers: dict | None = None, timeout: float = 30):
        return fetch(self.url + path, headers=headers, timeout=timeout)

    def post(self, path: str, body: bytes, headers: dict | None = None, timeout: float = 30):
        return fetch(self.url + path, body, headers=headers, timeout=timeout)


def fetch(url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 30):
    """(status, headers, body) of a GET (or a POST of ``body``); errors are answers too."""
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def error_of(body: bytes) -> str:
    data = json.loads(body)
    assert set(data) == {"error"} and isinstance(data["error"], str) and "\n" not in data["error"], data
    return data["error"]


@contextlib.contextmanager
def serving(model: Path = COND, *args: str, env: dict | None = None, ready: bool = True):
    """A gan-serve child on a free port of 127.0.0.1; stopped (SIGTERM, then SIGKILL) whatever happens."""
    cmd = [sys.executable, "-m", "ganforge.serve", "--model", str(model), "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        log: list[str] = []
        port = _port(proc, log)
        server = Server(proc, port, log)
        if ready:
            _wait_ready(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def _port(proc: subprocess.Popen, log: list[str] | None = None) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if log is not None and line:
            log.append(line.rstrip("\n"))
        if not line:
            if proc.poll() is not None:
                raise AssertionError(f"gan-serve exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
            continue
        match = LISTENING.search(line)
        if match:
            return int(match[1])
    raise AssertionError("gan-serve did not say where it listens within 60 s")


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _, _ = server.get("/v2/health/ready", timeout=5)
        if status == 200:
            return
        time.sleep(0.05)
    raise AssertionError("gan-serve was not ready within 60 s")


def with_directions(folder: Path, source: Path = COND, names=("pc0", "pc1", "sneaker")) -> Path:
    """A copy of ``source`` in ``folder`` with a directions.json beside it: unit axis vectors, step
    1.5; a name not starting ``pc`` is a class direction toward the class of that name."""
    import numpy as np

    from ganforge.fsutil import file_sha256
    from ganforge.inference import Generator, directions as D

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / "generator.onnx"
    model.write_bytes(source.read_bytes())
    dim = Generator(model, device="cpu").info.latent_dim
    found = tuple(D.Direction(name, "principal", np.eye(dim, dtype=np.float32)[i], 1.5) if name.startswith("pc")
                  else D.Direction(name, "class", np.eye(dim, dtype=np.float32)[i], 1.5, {"class": name.title()})
                  for i, name in enumerate(names))
    D.save(D.Directions(file_sha256(model), dim, found), D.path_for(model))
    return model


@pytest.fixture(scope="module")
def directed_model(tmp_path_factory) -> Path:
    return with_directions(tmp_path_factory.mktemp("directed"))


@pytest.fixture(scope="module")
def directed_server(directed_model):
    with serving(directed_model) as server:
        yield server


@pytest.fixture(scope="module")
def cond_server():
    with serving(COND) as server:
        yield server


@pytest.fixture(scope="module")
def image_server():
    with serving(IMAGE) as server:
        yield server
