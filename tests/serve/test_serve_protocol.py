"""The Open Inference Protocol as Triton speaks it: tritonclient.http runs against gan-serve
unchanged, and its outputs are Generator's on the same noise and labels."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from ganforge.inference import Generator, keyed
from tests.serve.conftest import COND, IMAGE, error_of

httpclient = pytest.importorskip("tritonclient.http", reason="the tests need tritonclient[http] (the dev extra)")


def client(server):
    return httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}", connection_timeout=30, network_timeout=30)


def inputs(z, labels=None, binary=True):
    zi = httpclient.InferInput("z", list(z.shape), "FP32")
    zi.set_data_from_numpy(z, binary_data=binary)
    if labels is None:
        return [zi]
    li = httpclient.InferInput("labels", [len(labels), 1], "INT64")
    li.set_data_from_numpy(labels.reshape(-1, 1), binary_data=binary)
    return [zi, li]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_infer_equals_generator(cond_server, binary):
    gen = Generator(COND)
    z = gen.sample_noise(5, 3)
    labels = np.array([0, 1, 2, 2, 0], np.int64)
    outputs = [httpclient.InferRequestedOutput("x", binary_data=binary)]
    with client(cond_server) as c:
        assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("generator")
        result = c.infer("generator", inputs(z, labels, binary), outputs=outputs)
    x = result.as_numpy("x")
    assert x.dtype == np.float32 and x.shape == (5, 1, 8, 8)
    np.testing.assert_array_equal(x, gen(z, labels))
    assert result.get_response()["model_name"] == "generator"


@pytest.mark.parametrize("start, n", [(0, 4), (1022, 5), (3000, 40)])
def test_tritonclient_on_keyed_noise_gives_samples_start_on(cond_server, start, n):
    """Sample i of seed s through /v2: the client sends keyed.noise (and keyed.labels) of i, and gets
    the Generator's generate(n, s, start=i), the bytes /v1/generate.npy?start=i answers."""
    gen = Generator(COND)
    z = keyed.noise(7, start, start + n, gen.info.latent_dim)
    labels = keyed.labels(7, start, start + n, gen.info.num_classes)
    with client(cond_server) as c:
        x = c.infer("generator", inputs(z, labels)).as_numpy("x")
    want = gen.generate(n, seed=7, start=start)
    np.testing.assert_array_equal(x, want)
    status, _, body = cond_server.get(f"/v1/generate.npy?n={n}&seed=7&start={start}")
    assert status == 200 and np.load(io.BytesIO(body)).tobytes() == want.tobytes()


def test_no_outputs_named_come_back_binary(image_server):
    gen = Generator(IMAGE)
    z = gen.sample_noise(3, 0)
    with client(image_server) as c:
        result = c.infer("generator", inputs(z), request_id="abc")  # tritonclient asks binary_data_output
        assert result.get_response()["id"] == "abc"
        assert "parameters" in result.get_output("x")  # binary_data_size: the bytes came after the header
        np.testing.assert_array_equal(result.as_numpy("x"), gen(z))


def test_metadata_is_tritons_for_the_export(cond_server):
    with client(cond_server) as c:
        meta = c.get_model_metadata("generator")
        server = c.get_server_metadata()
        assert c.is_model_ready("generator", "1")
    assert meta == {"name": "generator", "versions": ["1"], "platform": "onnxruntime_onnx",
                    "inputs": [{"name": "z", "datatype": "FP32", "shape": [-1, 8]},
                               {"name": "labels", "datatype": "INT64", "shape": [-1, 1]}],
                    "outputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]}
    assert server["name"] == "gan-serve" and "binary_tensor_data" in server["extensions"]
    status, _, body = cond_server.get("/v2/models/generator/versions/1")
    assert status == 200 and json.loads(body) == meta


def test_unknown_model_and_version_are_404(cond_server):
    for path in ("/v2/models/other", "/v2/models/generator/versions/2", "/v2/models/other/ready"):
        status, _, body = cond_server.get(path)
        assert status == 404 and "generator" in error_of(body)
    with client(cond_server) as c:
        with pytest.raises(Exception, match="unknown model"):
            c.infer("other", inputs(np.zeros((1, 8), np.float32), np.zeros(1, np.int64)))


def test_raw_json_request_and_flat_labels(cond_server):
    """curl's way: JSON in, JSON out; labels as [batch] are taken too."""
    z = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    body = json.dumps({"id": "7", "inputs": [
        {"name": "z", "shape": [2, 8], "datatype": "FP32", "data": z.ravel().tolist()},
        {"name": "labels", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}).encode()
    status, headers, raw = cond_server.post("/v2/models/generator/infer", body,
                                            {"Content-Type": "application/json"})
    assert status == 200, raw
    answer = json.loads(raw)
    assert answer["id"] == "7" and answer["model_version"] == "1"
    out = answer["outputs"][0]
    assert out["name"] == "x" and out["shape"] == [2, 1, 8, 8]
    np.testing.assert_array_equal(np.asarray(out["data"], np.float32).reshape(out["shape"]),
                                  Generator(COND)(z, np.array([1, 2])))


def test_binary_request_by_hand(cond_server):
    """The binary extension byte by byte: JSON header, its length in a header, raw tensors after."""
    z = np.ones((1, 8), np.float32)
    header = json.dumps({"inputs": [
        {"name": "z", "shape": [1, 8], "datatype": "FP32", "parameters": {"binary_data_size": 32}},
        {"name": "labels", "shape": [1, 1], "datatype": "INT64", "parameters": {"binary_data_size": 8}}],
        "outputs": [{"name": "x", "parameters": {"binary_data": True}}]}).encode()
    body = header + z.tobytes() + struct.pack("<q", 1)
    status, headers, raw = cond_server.post("/v2/models/generator/infer", body,
                                            {"Inference-Header-Content-Length": str(len(header))})
    assert status == 200, raw
    size = int(headers["inference-header-content-length"])
    answer = json.loads(raw[:size])
    assert answer["outputs"][0]["parameters"]["binary_data_size"] == 64 * 4 == len(raw) - size
    np.testing.assert_array_equal(np.frombuffer(raw[size:], np.float32).reshape(1, 1, 8, 8),
                                  Generator(COND)(z, np.array([1])))
