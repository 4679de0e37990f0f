"""Truncation and edits through gan-serve: a Triton client's parameters and /v1's query give
Generator.generate(..., control=...)'s samples and gan-infer's bytes; bad ones are a 400 in one
line; a model without directions still truncates; the batcher keeps each request's control."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from ganforge.inference import Generator, directions as D, generate
from ganforge.inference.control import Control, Edit
from ganforge.serve.config import ServeConfig
from ganforge.serve.model import ServedModel
from tests.serve.asgi import Gate, call
from tests.serve.conftest import COND, error_of

httpclient = pytest.importorskip("tritonclient.http", reason="the tests need tritonclient[http] (the dev extra)")
from tritonclient.utils import InferenceServerException  # noqa: E402

INFER = "/v2/models/generator/infer"


def client(server):
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}", connection_timeout=30, network_timeout=30)


def triton_infer(server, z, labels, parameters):
    zi = httpclient.InferInput("z", list(z.shape), "FP32")
    zi.set_data_from_numpy(z)
    li = httpclient.InferInput("labels", [len(labels), 1], "INT64")
    li.set_data_from_numpy(labels.reshape(-1, 1))
    with client(server) as c:
        return c.infer("generator", [zi, li], parameters=parameters).as_numpy("x")


def json_body(z, labels, parameters=None) -> bytes:
    request = {"inputs": [{"name": "z", "shape": list(z.shape), "datatype": "FP32", "data": z.ravel().tolist()},
                          {"name": "labels", "shape": [len(labels), 1], "datatype": "INT64",
                           "data": labels.tolist()}]}
    if parameters is not None:
        request["parameters"] = parameters
    return json.dumps(request).encode()


def output(body: bytes) -> np.ndarray:
    out = json.loads(body)["outputs"][0]
    return np.asarray(out["data"], np.float32).reshape(out["shape"])


LABELS = np.array([0, 1, 2, 2, 1, 0], np.int64)


def test_tritonclient_truncation_and_edits_equal_generate(directed_server, directed_model):
    """Scalar parameters, as a Triton client sends them: the edits as one string, the seed and start
    the noise came from; the answer is Generator.generate's for that seed and control."""
    gen = Generator(directed_model, device="cpu")
    found = D.for_generator(gen)
    z = gen.sample_noise(6, 3, start=5)
    got = triton_infer(directed_server, z, LABELS, {"truncation": 0.7, "edits": "sneaker=+2,pc1=-1", "seed": 3,
                                                    "start": 5})
    control = found.control(0.7, [Edit("sneaker", 2.0), Edit("pc1", -1.0)])
    want = gen.generate(6, 3, labels=LABELS, start=5, control=control)
    assert np.allclose(got, want, atol=1e-6)
    plain = gen.generate(6, 3, labels=LABELS, start=5)
    assert not np.allclose(got, plain, atol=1e-3)  # the control did something
    # edits alone need no seed: the shift is the same for any noise; truncation alone too
    got = triton_infer(directed_server, z, LABELS, {"edits": "pc0"})
    assert np.allclose(got, gen(z + np.float32(1.5) * np.eye(8, dtype=np.float32)[0], LABELS), atol=1e-6)
    got = triton_infer(directed_server, z, LABELS, {"truncation": 0.5, "seed": 3, "start": 5})
    assert np.allclose(got, gen.generate(6, 3, labels=LABELS, start=5, control=Control(0.5)), atol=1e-6)


def test_a_json_request_takes_edits_as_an_object(directed_server, directed_model):
    gen = Generator(directed_model, device="cpu")
    z = gen.sample_noise(6, 1)
    status, _, body = directed_server.post(INFER, json_body(z, LABELS, {"truncation": 1, "seed": 1,
                                                                        "edits": {"SNEAKER": 2, "pc1": -0.5}}))
    assert status == 200, body
    control = D.for_generator(gen).control(1.0, [Edit("sneaker", 2.0), Edit("pc1", -0.5)])
    assert np.allclose(output(body), gen.generate(6, 1, labels=LABELS, control=control), atol=1e-6)


def test_v1_gives_gan_infers_bytes_with_the_control(directed_server, directed_model, tmp_path):
    query = "n=9&seed=4&start=2&label=Sneaker&truncation=0.8&edit=sneaker%3D%2B2&edit=pc1=-1"
    for form in ("npy", "png"):
        status, headers, data = directed_server.get(f"/v1/generate.{form}?{query}")
        assert status == 200, data
        out = tmp_path / f"g.{form}"
        generate(directed_model, 9, out, seed=4, start=2, labels=["Sneaker"], truncation=0.8,
                 edits=["sneaker=+2", "pc1=-1"], device="cpu")
        assert data == out.read_bytes()
        plain = directed_server.get(f"/v1/generate.{form}?n=9&seed=4&start=2&label=Sneaker")
        assert plain[2] != data and plain[1]["etag"] != headers["etag"]  # another query, other bytes, other ETag
    # the ETag names the control: the same query again is a 304
    status, _, _ = directed_server.get(f"/v1/generate.png?{query}", headers={"If-None-Match": headers["etag"]})
    assert status == 304


def test_v1_model_lists_the_directions(directed_server):
    status, _, body = directed_server.get("/v1/model")
    info = json.loads(body)
    assert status == 200 and info["directions_missing"] is None and info["max_truncation"] == 100
    assert info["directions"] == [{"name": "pc0", "kind": "principal", "step": 1.5},
                                  {"name": "pc1", "kind": "principal", "step": 1.5},
                                  {"name": "sneaker", "kind": "class", "step": 1.5, "class": "Sneaker"}]


KNOWN = "it has: pc0, pc1, sneaker (GET /v1/model lists them)"


def test_an_unknown_direction_is_a_400_naming_the_known_ones(directed_server, directed_model):
    z = Generator(directed_model, device="cpu").sample_noise(6, 0)
    with pytest.raises(InferenceServerException) as caught:
        triton_infer(directed_server, z, LABELS, {"edits": "boot=+1"})
    assert caught.value.status() == "400"
    assert caught.value.message() == f"no direction 'boot' for this model; {KNOWN}"
    status, _, body = directed_server.get("/v1/generate.png?n=4&edit=boot")
    assert status == 400 and error_of(body) == f"no direction 'boot' for this model; {KNOWN}"


@pytest.mark.parametrize("parameters, message", [
    ({"truncation": 0}, "truncation must be a number above 0 and at most 100"),
    ({"truncation": "abc"}, "truncation must be a number above 0 and at most 100"),
    ({"truncation": True}, "truncation must be a number above 0"),
    ({"edits": "pc0=lots"}, "edit 'pc0': the amount must be a number of the direction's steps"),
    ({"edits": {"pc0": None}}, "edit 'pc0': the amount must be a number"),
    ({"edits": "=2"}, "an edit is NAME=AMOUNT"),
    ({"edits": ["pc0=1"]}, 'parameters.edits is an object {"sneaker": 2, "pc1": -1} or a string'),
    ({"edits": "pc0=1,PC0=2"}, "one edit a direction: pc0 given twice"),
    ({"edits": "pc0=1e9"}, "from -100 to 100"),
    ({"truncation": 0.5, "seed": -1}, "parameters: seed must be >= 0"),
    ({"truncation": 0.5, "start": 1.5}, "parameters: start must be a whole number"),
])
def test_bad_control_values_are_one_line_400s(directed_server, parameters, message):
    z = np.zeros((6, 8), np.float32)
    status, _, body = directed_server.post(INFER, json_body(z, LABELS, parameters))
    assert status == 400 and message in error_of(body), body


def test_bad_v1_control_values_are_one_line_400s(directed_server):
    for query, message in (("truncation=-1", "truncation must be a number above 0"),
                           ("edit=pc0=x", "edit 'pc0': the amount must be a number"),
                           ("edit=pc0&edit=pc0=2", "one edit a direction: pc0 given twice")):
        status, _, body = directed_server.get(f"/v1/generate.png?n=4&{query}")
        assert status == 400 and message in error_of(body), (query, body)
    status, _, body = directed_server.get("/v1/walk.gif?a=1&b=2&steps=4&edit=pc0")
    assert status == 400 and "a walk takes no truncation or edits" in error_of(body)


def test_without_directions_edits_are_refused_and_truncation_works(cond_server, tmp_path):
    gen = Generator(COND, device="cpu")
    z = gen.sample_noise(6, 2)
    hint = ("this model has no named directions: make them with gan-directions MODEL on the server "
            "(directions.json beside the served model) and restart gan-serve; truncation works without them")
    with pytest.raises(InferenceServerException) as caught:
        triton_infer(cond_server, z, LABELS, {"edits": "pc0=1"})
    assert caught.value.status() == "400"
    assert caught.value.message() == f"edits asked of a model without directions: {hint}"
    got = triton_infer(cond_server, z, LABELS, {"truncation": 0.6, "seed": 2})
    assert np.allclose(got, gen.generate(6, 2, labels=LABELS, control=Control(0.6)), atol=1e-6)
    status, _, body = cond_server.get("/v1/generate.npy?n=5&seed=2&edit=pc0")
    assert status == 400 and error_of(body) == f"edits asked of a model without directions: {hint}"
    status, _, data = cond_server.get("/v1/generate.npy?n=5&seed=2&truncation=0.6")
    generate(COND, 5, tmp_path / "t.npy", seed=2, truncation=0.6, device="cpu")
    assert status == 200 and data == (tmp_path / "t.npy").read_bytes()
    info = json.loads(cond_server.get("/v1/model")[2])
    assert info["directions"] == [] and info["directions_missing"] == hint


def test_a_refused_directions_file_leaves_edits_off_and_the_server_up(tmp_path, caplog):
    """A directions.json of another model: the server starts, logs why once, and refuses edits saying so."""
    from tests.serve.conftest import with_directions

    model = with_directions(tmp_path / "m")
    data = json.loads(D.path_for(model).read_text())
    data["model_sha256"] = "0" * 64
    D.path_for(model).write_text(json.dumps(data))
    with caplog.at_level("WARNING", logger="gan-serve"):
        served = ServedModel(ServeConfig(model=str(model)))
    assert served.controls.directions is None and "was made for another model" in caplog.text
    assert "the directions.json beside it was refused; the server's log says why" in served.controls.missing
    assert served.controls.control(0.5, ()) == Control(0.5)


def test_the_batcher_keeps_each_requests_control_in_one_merged_run(directed_model):
    """Two requests of different controls queued behind a held run are taken as one batch (one run
    of the model) and each answer is its own request's samples."""
    from ganforge.serve.app import make_app
    from ganforge.serve.handlers import State

    served = ServedModel(ServeConfig(model=str(directed_model), max_batch=64, max_queue_delay_ms=50))
    gate = Gate(served.generators[0])
    served.generators[0] = gate
    state = State(served)
    served.warm_up()
    state.batcher.start()
    state.warm = True
    app = make_app(state)
    gen = Generator(directed_model, device="cpu")
    found = D.for_generator(gen)
    asks = [({"truncation": 0.5, "edits": "pc0=+2", "seed": 7}, 7, found.control(0.5, [Edit("pc0", 2.0)])),
            ({"edits": {"sneaker": -1}, "seed": 8}, 8, found.control(None, [Edit("sneaker", -1.0)]))]

    async def scenario():
        gate.event.clear()
        begun = gate.begun
        holder = asyncio.create_task(call(app, "POST", INFER, json_body(gen.sample_noise(6, 0), LABELS)))
        while gate.begun == begun:  # the worker holds the first run at the gate
            await asyncio.sleep(0.005)
        tasks = [asyncio.create_task(call(app, "POST", INFER, json_body(gen.sample_noise(6, seed), LABELS, params)))
                 for params, seed, _ in asks]
        for _ in range(2000):  # bounded: both queued
            if state.batcher.queued == 12:
                break
            await asyncio.sleep(0.005)
        assert state.batcher.queued == 12
        gate.event.set()
        results = [await task for task in (holder, *tasks)]
        return results, gate.begun - begun

    try:
        results, runs = asyncio.run(scenario())
    finally:
        gate.event.set()
        state.batcher.stop(10)
    assert runs == 2  # the held run, then both controlled requests in one run
    assert [r[0] for r in results] == [200, 200, 200]
    for (_, seed, control), (_, _, body) in zip(asks, results[1:]):
        assert np.allclose(output(body), gen.generate(6, seed, labels=LABELS, control=control), atol=1e-6)
