"""Hostile and broken requests get their 4xx, one line each, before anything is allocated, and
the server stays ready after every one."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from tests.serve.conftest import COND, error_of, serving

INFER = "/v2/models/generator/infer"


def z_input(shape=(1, 8), **extra):
    return {"name": "z", "shape": list(shape), "datatype": "FP32", **extra}


def labels_input(shape=(1, 1), data=(0,)):
    return {"name": "labels", "shape": list(shape), "datatype": "INT64", "data": list(data)}


def request(*tensors, **extra) -> bytes:
    return json.dumps({"inputs": list(tensors), **extra}).encode()


@pytest.fixture(scope="module")
def small_server():
    with serving(COND, "--max-body", "64K", "--max-batch", "8", "--max-queue", "64") as server:
        yield server


BAD = [
    (b"not json", None, 400, "not JSON"),
    (b"[1, 2]", None, 400, "JSON object"),
    (request(), None, 400, "z, labels once each"),
    (request(z_input(data=[0] * 8)), None, 400, "once each"),
    (request(z_input(data=[0] * 8), labels_input(), {"name": "w", "shape": [1], "datatype": "FP32"}), None, 400,
     "unknown input 'w'"),
    (request(z_input((1, 9), data=[0] * 9), labels_input()), None, 400, "the model takes [-1, 8]"),
    (request(z_input((1, 8, 1), data=[0] * 8), labels_input()), None, 400, "shape"),
    (request(z_input((0, 8), data=[]), labels_input((0, 1), ())), None, 400, "at least one sample"),
    (request(z_input((2, 8), data=[0] * 16), labels_input()), None, 400, "different batch sizes"),
    (request({**z_input(data=[0] * 8), "datatype": "FP64"}, labels_input()), None, 400, "the model takes FP32"),
    (request(z_input(data=[0] * 7), labels_input()), None, 400, "holds 7 values"),
    (request(z_input(data=["a"] * 8), labels_input()), None, 400, "FP32 numbers"),
    (request(z_input(), labels_input()), None, 400, "neither data nor"),
    (request(z_input(data=[0] * 8), labels_input(data=[3])), None, 400, "label 3 is out of range"),
    (request(z_input(data=[0] * 8), labels_input(data=[-1])), None, 400, "label -1 is out of range"),
    (request(z_input(data=[0] * 8), labels_input(), outputs=[{"name": "y"}]), None, 400, "unknown output 'y'"),
    # a claim of 10^12 samples is refused by its claim, nothing allocated
    (request(z_input((10 ** 12, 8), parameters={"binary_data_size": 32 * 10 ** 12}),
             labels_input((10 ** 12, 1))), "", 400, "more than the queue holds"),
    (request(z_input(parameters={"binary_data_size": 31}), labels_input()), "", 400, "binary_data_size is 31"),
    (request(z_input(parameters={"binary_data_size": 32}), labels_input()), "", 400, "bytes short"),
    (request(z_input(data=[0] * 8), labels_input()) + b"junk", "", 400, "4 bytes follow"),
    (request(z_input(data=[0] * 8), labels_input()), "99999", 400, "Inference-Header-Content-Length is 99999"),
    (request(z_input(data=[0] * 8), labels_input()), "x", 400, "must be a byte count"),
]


@pytest.mark.parametrize("body,header_length,status,says", BAD)
def test_bad_infer_requests(small_server, body, header_length, status, says):
    headers = {}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = header_length or str(body.index(b"}]}") + 3)
    got, _, answer = small_server.post(INFER, body, headers)
    assert got == status, answer
    assert says in error_of(answer)
    assert small_server.get("/v2/health/ready")[0] == 200


def test_memory_budget_is_gan_infers():
    """Samples per request: within GANFORGE_MAX_MEMORY, as gan-infer's grids are; JSON answers cost more."""
    n = 15_000
    z = np.zeros((n, 8), np.float32)
    header = json.dumps({"inputs": [z_input((n, 8), parameters={"binary_data_size": z.nbytes}),
                                    labels_input((n, 1), [0] * n)]}).encode()
    with serving(COND, "--max-queue", "20000", env={"GANFORGE_MAX_MEMORY": "64M"}) as server:
        headers = {"Inference-Header-Content-Length": str(len(header))}
        status, _, answer = server.post(INFER, header + z.tobytes(), headers)  # JSON out: about 66 MiB
        assert status == 400 and "64.0 MiB limit" in error_of(answer) and "GANFORGE_MAX_MEMORY" in error_of(answer)
        binary = json.loads(header)
        binary["outputs"] = [{"name": "x", "parameters": {"binary_data": True}}]
        header = json.dumps(binary).encode()
        headers = {"Inference-Header-Content-Length": str(len(header))}
        status, _, answer = server.post(INFER, header + z.tobytes(), headers)  # binary out: about 8 MiB
        assert status == 200, answer[:200]


def test_body_limit_is_413_before_reading(small_server):
    body = b" " * (65 * 1024)
    status, _, answer = small_server.post(INFER, body)
    assert status == 413 and "--max-body" in error_of(answer)


def test_declared_length_over_limit_is_refused_unread(small_server):
    """A Content-Length of 10 GB: refused at once, the body never sent."""
    with socket.create_connection(("127.0.0.1", small_server.port), timeout=10) as sock:
        sock.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n".encode())
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert small_server.get("/v2/health/ready")[0] == 200


def test_compressed_bodies_are_415(small_server):
    status, _, answer = small_server.post(INFER, b"\x1f\x8b", {"Content-Encoding": "gzip"})
    assert status == 415 and "uncompressed" in error_of(answer)


def test_wrong_method_and_path(small_server):
    status, _, answer = small_server.get(INFER)
    assert status == 405 and error_of(answer)
    status, _, answer = small_server.get("/etc/passwd")
    assert status == 404 and error_of(answer)


def test_good_request_after_all_that(small_server):
    body = request(z_input(data=np.zeros(8).tolist()), labels_input())
    status, _, answer = small_server.post(INFER, body)
    assert status == 200 and json.loads(answer)["outputs"][0]["shape"] == [1, 1, 8, 8]
