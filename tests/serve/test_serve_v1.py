"""/v1: the bytes gan-infer writes (its Python API, ganforge.inference.generate), named by seed,
model and ETag."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from ganforge.inference import generate, generate_walk
from tests.serve.conftest import COND, IMAGE, error_of


@pytest.mark.parametrize("query,kwargs", [
    ("n=64&seed=1", dict(n=64, seed=1)),
    ("n=10&seed=4&nrow=5", dict(n=10, seed=4, nrow=5)),
    ("n=9&seed=2&label=Sneaker&label=0", dict(n=9, seed=2, labels=["Sneaker", "0"])),
])
@pytest.mark.parametrize("form", ["png", "npy"])
def test_generate_is_gan_infers_bytes(cond_server, tmp_path, query, kwargs, form):
    out = tmp_path / f"g.{form}"
    kwargs = dict(kwargs)
    generate(COND, kwargs.pop("n"), out, **kwargs)
    status, headers, body = cond_server.get(f"/v1/generate.{form}?{query}")
    assert status == 200, body
    assert body == out.read_bytes()
    assert headers["x-seed"] == str(kwargs["seed"])
    assert headers["x-model-sha256"] == hashlib.sha256(COND.read_bytes()).hexdigest()
    assert headers["content-type"] == ("image/png" if form == "png" else "application/octet-stream")


def test_npy_is_the_array(image_server, tmp_path):
    status, _, body = image_server.get("/v1/generate.npy?n=5&seed=3")
    generate(IMAGE, 5, tmp_path / "x.npy", seed=3)
    assert status == 200
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), np.load(tmp_path / "x.npy"))


@pytest.mark.parametrize("form", ["gif", "png", "npy"])
def test_walk_is_gan_infers_bytes(cond_server, tmp_path, form):
    out = tmp_path / f"w.{form}"
    generate_walk(COND, 1, 2, out, steps=6, labels=["Trouser", "Sneaker"])
    status, _, body = cond_server.get(f"/v1/walk.{form}?a=1&b=2&steps=6&label=Trouser&label=Sneaker")
    assert status == 200, body
    assert body == out.read_bytes()


def test_etag_names_the_bytes(cond_server):
    _, first, body = cond_server.get("/v1/generate.png?n=4&seed=9")
    _, again, same = cond_server.get("/v1/generate.png?seed=9&n=4")
    _, other, _ = cond_server.get("/v1/generate.png?n=4&seed=10")
    assert first["etag"] == again["etag"] != other["etag"] and body == same
    status, headers, body = cond_server.get("/v1/generate.png?n=4&seed=9", {"If-None-Match": first["etag"]})
    assert status == 304 and body == b"" and headers["etag"] == first["etag"]


@pytest.mark.parametrize("query,says", [
    ("n=0", "n must be >= 1"),
    ("n=abc", "n must be a whole number"),
    ("seed=-1", "seed"),
    ("n=3&label=Sneaker&label=0&label=1&label=2", "labels need at least"),
    ("label=Sandal", "Sandal"),
    ("n=5000", "at most 4096"),
])
def test_bad_generate_is_400_with_one_line(cond_server, query, says):
    status, _, body = cond_server.get(f"/v1/generate.png?{query}")
    assert status == 400
    assert says in error_of(body)


def test_bad_forms_and_walks(cond_server):
    status, _, body = cond_server.get("/v1/generate.gif")
    assert status == 404 and "generate.png" in error_of(body)
    status, _, body = cond_server.get("/v1/walk.gif?a=1")
    assert status == 400 and "two seeds" in error_of(body)
    status, _, body = cond_server.get("/v1/walk.gif?a=1&b=2&steps=1")
    assert status == 400 and "steps" in error_of(body)


def test_model_description(cond_server):
    status, _, body = cond_server.get("/v1/model")
    model = json.loads(body)
    assert status == 200 and model["class_names"] == ["T-shirt/top", "Trouser", "Sneaker"] and model["ready"]
