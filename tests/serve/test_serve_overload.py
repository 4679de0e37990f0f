"""Overload and slowness, with the model held still: a full queue is 503 with Retry-After, a slow
answer 504, and the server stays ready; the batcher batches what is queued."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from ganforge.serve.config import ServeConfig
from ganforge.serve.model import ServedModel
from tests.serve.asgi import Gate, call
from tests.serve.conftest import COND, error_of

INFER = "/v2/models/generator/infer"


def body(n: int) -> bytes:
    return json.dumps({"inputs": [
        {"name": "z", "shape": [n, 8], "datatype": "FP32", "data": [0.5] * (8 * n)},
        {"name": "labels", "shape": [n, 1], "datatype": "INT64", "data": [1] * n}]}).encode()


def gated_app(**options):
    from ganforge.serve.app import make_app
    from ganforge.serve.handlers import State

    served = ServedModel(ServeConfig(model=str(COND), **options))
    gate = Gate(served.generators[0])
    served.generators[0] = gate
    state = State(served)
    served.warm_up()
    state.batcher.start()
    state.warm = True
    return make_app(state), state, gate


async def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


def test_full_queue_is_503_then_all_answered():
    app, state, gate = gated_app(max_batch=2, max_queue=4)

    async def scenario():
        gate.event.clear()
        begun = gate.begun
        first = asyncio.create_task(call(app, "POST", INFER, body(2)))  # taken by the worker, held at the gate
        await until(lambda: gate.begun > begun)
        queued = [asyncio.create_task(call(app, "POST", INFER, body(2))) for _ in range(2)]  # 4 of 4 samples
        await until(lambda: state.batcher.queued == 4)
        status, headers, answer = await call(app, "POST", INFER, body(1))
        assert status == 503 and headers["retry-after"] == "1" and "queue is full" in error_of(answer)
        ready = await call(app, "GET", "/v2/health/ready")
        assert ready[0] == 200
        gate.event.set()
        for task in (first, *queued):
            assert (await task)[0] == 200
        metrics = (await call(app, "GET", "/metrics"))[2].decode()
        assert 'gan_serve_requests_total{endpoint="/v2/models/{name}/infer",method="POST",code="503"} 1' in metrics
        assert 'gan_serve_errors_total{endpoint="/v2/models/{name}/infer",code="503"} 1' in metrics

    try:
        asyncio.run(scenario())
    finally:
        gate.event.set()
        state.batcher.stop(10)


def test_slow_answer_is_504_and_skipped():
    app, state, gate = gated_app(timeout_s=0.3)

    async def scenario():
        gate.event.clear()
        status, _, answer = await call(app, "POST", INFER, body(1))
        assert status == 504 and "--timeout" in error_of(answer)
        gate.event.set()
        status, _, _ = await call(app, "POST", INFER, body(1))
        assert status == 200
        assert (await call(app, "GET", "/v2/health/ready"))[0] == 200

    try:
        asyncio.run(scenario())
    finally:
        gate.event.set()
        state.batcher.stop(10)


def test_queued_requests_run_as_one_batch_and_match():
    """Held at the gate, eight queued requests become one run of 8 (max_batch 8), each answered its rows."""
    app, state, gate = gated_app(max_batch=8)
    rng = np.random.default_rng(0)
    zs = [rng.standard_normal((1, 8), dtype=np.float32) for _ in range(8)]

    def one(z):
        return json.dumps({"inputs": [{"name": "z", "shape": [1, 8], "datatype": "FP32", "data": z.ravel().tolist()},
                                      {"name": "labels", "shape": [1], "datatype": "INT64", "data": [2]}]}).encode()

    async def scenario():
        gate.event.clear()
        begun = gate.begun
        blocker = asyncio.create_task(call(app, "POST", INFER, one(zs[0])))
        await until(lambda: gate.begun > begun)
        tasks = [asyncio.create_task(call(app, "POST", INFER, one(z))) for z in zs]
        await until(lambda: state.batcher.queued == 8)
        gate.event.set()
        await blocker
        return [await t for t in tasks]

    try:
        answers = asyncio.run(scenario())
    finally:
        gate.event.set()
        state.batcher.stop(10)
    gen = gate.gen
    for z, (status, _, answer) in zip(zs, answers):
        assert status == 200
        x = np.asarray(json.loads(answer)["outputs"][0]["data"], np.float32).reshape(1, 1, 8, 8)
        np.testing.assert_allclose(x, gen(z, np.array([2])), atol=1e-6)
    assert state.metrics.batches.counts[state.metrics.batches.buckets.index(8)] >= 1  # one run of 8


@pytest.mark.parametrize("delay_ms", [0, 50])
def test_batcher_policy(delay_ms):
    """A delay bound waits for more; 0 takes what is queued."""
    from ganforge.serve.batcher import Batcher, Job

    class Recorder:
        def __init__(self):
            self.sizes = []

        def __call__(self, z, labels=None, small_job=False):
            self.sizes.append(len(z))
            return np.zeros((len(z), 2), np.float32)

    recorder = Recorder()
    batcher = Batcher([recorder], max_batch=4, max_queue=16, max_queue_delay_ms=delay_ms)
    batcher.start()

    async def scenario():
        first = asyncio.create_task(batcher.run(Job(1, z=np.zeros((1, 8), np.float32)), 5))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(batcher.run(Job(1, z=np.zeros((1, 8), np.float32)), 5))
        await asyncio.gather(first, second)

    try:
        asyncio.run(scenario())
    finally:
        batcher.stop(5)
    assert recorder.sizes == ([2] if delay_ms else [1, 1])
