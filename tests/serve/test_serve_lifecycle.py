"""Start, token, CORS, shutdown: safe by default, and SIGTERM finishes what is queued and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from ganforge.serve.config import ServeConfig
from tests.serve.asgi import call
from tests.serve.conftest import COND, error_of, fetch, serving

INFER = "/v2/models/generator/infer"
BODY = json.dumps({"inputs": [{"name": "z", "shape": [1, 8], "datatype": "FP32", "data": [0.0] * 8},
                              {"name": "labels", "shape": [1, 1], "datatype": "INT64", "data": [0]}]}).encode()
TOKEN = "s3cret-token-123"


def test_token_guards_all_but_health_metrics_and_page():
    with serving(COND, env={"GAN_SERVE_TOKEN": TOKEN}) as server:
        for path in ("/v2", "/v2/models/generator", "/v1/generate.png?n=1", "/v1/model"):
            status, headers, body = server.get(path)
            assert status == 401 and headers["www-authenticate"] == "Bearer" and "Bearer" in error_of(body), path
            assert server.get(path, {"Authorization": "Bearer wrong-token-1"})[0] == 401
            assert server.get(path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
        assert server.post(INFER, BODY)[0] == 401
        assert server.post(INFER, BODY, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        for path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/"):
            assert server.get(path)[0] == 200, path


def test_cors_only_when_asked():
    with serving(COND) as server:
        _, headers, _ = server.get("/v2", {"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in headers
    with serving(COND, "--cors-origin", "http://app.example") as server:
        _, headers, _ = server.get("/v2", {"Origin": "http://app.example"})
        assert headers["access-control-allow-origin"] == "http://app.example"
        _, headers, _ = server.get("/v2", {"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in headers


def test_binds_loopback_and_warns_beyond_it():
    assert ServeConfig(model="m.onnx").host == "127.0.0.1" and ServeConfig(model="m.onnx").loopback
    assert not ServeConfig(model="m.onnx", host="0.0.0.0").loopback
    # the warning, without binding beyond loopback: an address of the loopback range is loopback
    assert ServeConfig(model="m.onnx", host="127.0.0.2").loopback


def test_warning_beyond_loopback_without_token(monkeypatch):
    from click.testing import CliRunner

    from ganforge.serve import cli

    monkeypatch.setattr(cli, "_serve", lambda served, log_level: None)  # no socket is opened
    result = CliRunner().invoke(cli.main, ["--model", str(COND), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "beyond loopback without a token" in result.output
    result = CliRunner().invoke(cli.main, ["--model", str(COND), "--host", "0.0.0.0", "--token", TOKEN])
    assert "beyond loopback" not in result.output


@pytest.mark.parametrize("args,says", [
    (["--model", "missing.onnx"], "does not exist"),
    (["--model", str(COND), "--max-batch", "64", "--max-queue", "8"], "at least one full batch"),
    (["--model", str(COND), "--token", "short"], "at least 8 characters"),
    (["--model", str(COND), "--max-body", "lots"], "byte count"),
])
def test_bad_command_lines_are_one_line(args, says):
    proc = subprocess.run([sys.executable, "-m", "ganforge.serve", *args], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("Error")]) == 1


def test_sigterm_finishes_the_queue_and_exits_0():
    """A request waiting in the batcher (a 3 s delay bound) when SIGTERM comes is still answered."""
    with serving(COND, "--max-queue-delay-ms", "3000", "--max-batch", "8") as server:
        answers = []
        thread = threading.Thread(target=lambda: answers.append(server.post(INFER, BODY, timeout=30)))
        thread.start()
        deadline = time.monotonic() + 20
        while b"gan_serve_queue_samples 1\n" not in server.get("/metrics")[2]:  # held by the 3 s delay bound
            assert time.monotonic() < deadline, "the request never reached the batcher"
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        thread.join(30)
        assert server.proc.wait(timeout=30) == 0
        assert answers and answers[0][0] == 200, answers
        with pytest.raises(OSError):  # stopped accepting
            fetch(server.url + "/v2/health/live", timeout=2)


def test_draining_is_not_ready():
    from ganforge.serve.app import make_app
    from ganforge.serve.handlers import State
    from ganforge.serve.model import ServedModel

    state = State(ServedModel(ServeConfig(model=str(COND))))
    app = make_app(state)
    state.warm = True
    assert asyncio.run(call(app, "GET", "/v2/health/ready"))[0] == 200
    state.draining = True
    assert asyncio.run(call(app, "GET", "/v2/health/ready"))[0] == 503
    assert asyncio.run(call(app, "GET", "/v2/models/generator/ready"))[0] == 503
    assert asyncio.run(call(app, "GET", "/v2/health/live"))[0] == 200
    status, headers, body = asyncio.run(call(app, "POST", INFER, BODY))
    assert status == 503 and "draining" in error_of(body)


def test_every_option_says_what_it_does():
    import click
    from click.testing import CliRunner

    from ganforge.serve.cli import main

    bare = [p.opts[0] for p in main.params if isinstance(p, click.Option) and len((p.help or "").split()) < 3]
    assert not bare, bare
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "Open Inference Protocol" in result.output


def test_without_the_serve_extra_one_line_names_it(tmp_path):
    code = ("import sys; sys.modules['uvicorn'] = None\n"
            "from ganforge.serve.cli import main\n"
            f"main(['--model', {str(COND)!r}])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "pip install 'ganforge[serve]'" in proc.stderr and "uvicorn" in proc.stderr


def test_workers_share_one_queue():
    """--workers 2: two sessions, one queue; concurrent requests each get their own rows."""
    import numpy as np

    from ganforge.inference import Generator

    gen = Generator(COND)
    zs = [gen.sample_noise(3, seed) for seed in range(12)]

    def body(z):
        return json.dumps({"inputs": [
            {"name": "z", "shape": [3, 8], "datatype": "FP32", "data": z.ravel().tolist()},
            {"name": "labels", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]}]}).encode()

    with serving(COND, "--workers", "2", "--max-batch", "6") as server:
        answers = [None] * len(zs)

        def ask(i):
            answers[i] = server.post(INFER, body(zs[i]))

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(zs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        metrics = server.get("/metrics")[2].decode()
        described = json.loads(server.get("/v1/model")[2])
    # the startup log and /v1/model say what each session computes on (a tiny model: one thread each)
    assert "gan-serve: 2 sessions of the model, each on threads: 1 intra-op, 1 inter-op (a tiny model" in \
        "\n".join(server.log), server.log
    assert described["sessions"] == 2 and described["threads_per_session"]["intra_op"] == 1
    for z, (status, _, raw) in zip(zs, answers):
        assert status == 200
        x = np.asarray(json.loads(raw)["outputs"][0]["data"], np.float32).reshape(3, 1, 8, 8)
        np.testing.assert_allclose(x, gen(z, np.array([0, 1, 2])), atol=1e-6)
    assert "gan_serve_samples_total 36" in metrics
