"""/v1: the bytes gan-infer writes (its Python API, ganforge.inference.generate), named by seed,
model and ETag."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from ganforge.inference import Generator, generate, generate_walk
from tests.serve.conftest import COND, IMAGE, error_of


@pytest.mark.parametrize("query,kwargs", [
    ("n=64&seed=1", dict(n=64, seed=1)),
    ("n=10&seed=4&nrow=5", dict(n=10, seed=4, nrow=5)),
    ("n=9&seed=2&label=Sneaker&label=0", dict(n=9, seed=2, labels=["Sneaker", "0"])),
    ("n=9&seed=2&start=1020", dict(n=9, seed=2, start=1020)),  # drawn labels, across a block's edge
    ("n=6&seed=5&start=0", dict(n=6, seed=5, start=0)),
    ("start=5000&n=7&seed=3&label=Trouser", dict(n=7, seed=3, start=5000, labels=["Trouser"])),
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


def test_a_start_gives_those_samples_of_the_seed(image_server):
    """start=A: samples A:A+n of the seed, the same slice of a whole request, and the Generator's."""
    gen = Generator(IMAGE)
    status, _, body = image_server.get("/v1/generate.npy?n=2100&seed=6")
    assert status == 200, body
    whole = np.load(io.BytesIO(body))
    for start, n in [(0, 5), (1023, 2), (1000, 1100), (2047, 53)]:
        status, _, body = image_server.get(f"/v1/generate.npy?n={n}&seed=6&start={start}")
        assert status == 200, body
        part = np.load(io.BytesIO(body))
        np.testing.assert_array_equal(part, whole[start : start + n])
        np.testing.assert_array_equal(part, gen.generate(n, seed=6, start=start))


def test_etag_names_the_bytes(cond_server):
    _, first, body = cond_server.get("/v1/generate.png?n=4&seed=9")
    _, again, same = cond_server.get("/v1/generate.png?seed=9&n=4&start=0")
    _, other, _ = cond_server.get("/v1/generate.png?n=4&seed=10")
    _, later, moved = cond_server.get("/v1/generate.png?n=4&seed=9&start=1")
    assert first["etag"] == again["etag"] != other["etag"] and body == same
    assert later["etag"] not in (first["etag"], other["etag"]) and moved != body
    status, headers, body = cond_server.get("/v1/generate.png?n=4&seed=9", {"If-None-Match": first["etag"]})
    assert status == 304 and body == b"" and headers["etag"] == first["etag"]


@pytest.mark.parametrize("query,says", [
    ("n=0", "n must be >= 1"),
    ("n=abc", "n must be a whole number"),
    ("seed=-1", "seed"),
    ("n=3&label=Sneaker&label=0&label=1&label=2", "labels need at least"),
    ("label=Sandal", "Sandal"),
    ("n=5000", "at most 4096"),
    ("start=-1", "start must be >= 0"),
    ("start=1.5", "start must be a whole number"),
    ("start=9007199254740993", "start must be at most 2**53"),
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
