"""One frozen request per generation: checked once where it is built, before any model opens,
and read everywhere after (issue 25)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import GanforgeError
from ganforge.inference import batches, generation, render, request as request_module, session, tuning
from ganforge.inference import GenerationRequest, Generator, WalkRequest, generate, generate_walk

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE, COND = str(DATA / "tiny-image.onnx"), str(DATA / "tiny-cond.onnx")


@pytest.fixture
def never_open(monkeypatch):
    def must_not_open(*args, **kwargs):
        raise AssertionError("opened the model before the request was checked")

    monkeypatch.setattr(session.Generator, "__init__", must_not_open)


@pytest.mark.parametrize("keywords, message", [
    (dict(n=0), "n must be >= 1, got 0"),
    (dict(n=2.5), "n must be a whole number, got 2.5"),
    (dict(n=3, seed=-1), "seed must be >= 0, got -1"),
    (dict(n=3, labels=[]), "labels is empty"),
    (dict(n=1, labels=[0, 1]), "2 labels need at least 2 samples, got n=1"),
    (dict(n=3, nrow=0), "nrow must be >= 1, got 0"),
    (dict(n=3, batch_size=0), "batch size must be >= 1, got 0"),
    (dict(n=3, per_class=2), "pass n or per_class, not both"),
    (dict(per_class=2, nrow=3), "nrow does not go with per_class"),
    (dict(per_class=5000), "a per-class grid holds at most 4096 samples of each class"),
    (dict(per_class=2000, labels=[0, 1, 2]), "a PNG grid holds at most 4096 samples, got 6000"),
    (dict(n=5000), "a PNG grid holds at most 4096 samples, got 5000"),
    (dict(n=3, out="grid.jpg"), "--out must be a .png grid"),
])
def test_a_bad_value_is_refused_when_the_request_is_built(never_open, tmp_path, keywords, message):
    keywords = {"out": str(tmp_path / "g.png"), **keywords}
    with pytest.raises(GanforgeError, match=re.escape(message)):
        GenerationRequest(model=COND, **keywords)
    n = keywords.pop("n", None)
    out = keywords.pop("out")
    with pytest.raises(GanforgeError, match=re.escape(message)):
        generate(COND, n, out, **keywords)  # the Python API builds the same request
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keywords, message", [
    (dict(steps=1), "steps must be >= 2, got 1"),
    (dict(steps=5000), "a walk has at most 4096 frames"),
    (dict(labels=[0, 1, 2]), "a walk takes one label (a fixed class) or two"),
    (dict(seed_a=-1), "seed must be >= 0, got -1"),
    (dict(out="walk.jpg"), "--out must be a .gif animation"),
])
def test_a_bad_walk_is_refused_when_its_request_is_built(never_open, tmp_path, keywords, message):
    keywords = {"seed_a": 1, "seed_b": 2, "out": str(tmp_path / "w.gif"), **keywords}
    with pytest.raises(GanforgeError, match=re.escape(message)):
        WalkRequest(model=COND, **keywords)
    with pytest.raises(GanforgeError, match=re.escape(message)):
        generate_walk(COND, **keywords)


def test_the_request_is_frozen_and_holds_checked_values(tmp_path):
    req = GenerationRequest(model=COND, n=np.int64(6), out=tmp_path / "x.npy", labels="Sneaker", nrow=np.int32(2))
    assert (req.n, req.nrow, req.labels, req.form, req.seed) == (6, 2, ("Sneaker",), "npy", 0)
    assert type(req.n) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.n = 7
    walk = WalkRequest(seed_a=3, seed_b=7, out=tmp_path / "w.gif", labels=[0, "Sneaker"])
    assert (walk.labels, walk.form, walk.steps) == ((0, "Sneaker"), "gif", 16)


def test_small_job_is_derived_from_n(monkeypatch, tmp_path):
    big = tuning.TUNE_FROM_N
    assert GenerationRequest(n=big - 1, out="x.npy").small_job()
    assert not GenerationRequest(n=big, out="x.npy").small_job()
    assert GenerationRequest(n=big, out="x.npy").tunes()
    assert not GenerationRequest(n=big, out="x.npy", batch_size=64).tunes()  # its run size is asked for
    per_class = GenerationRequest(per_class=4096, out="x.npy")  # all classes: the model says how many
    assert per_class.total(2) == 8192 and per_class.small_job(2) and not per_class.small_job(3)
    assert GenerationRequest(per_class=4000, labels=[0, 1, 2], out="x.npy").total() == 12000
    assert WalkRequest(seed_a=0, seed_b=1, out="w.gif").small_job()
    monkeypatch.setattr(tuning, "TUNE_FROM_N", 10)
    assert not GenerationRequest(n=10, out="x.npy").small_job()


def test_the_generator_is_not_told_from_outside(tmp_path):
    result = generate(COND, 4, tmp_path / "x.npy", labels=[1])
    assert result.n == 4
    assert not hasattr(Generator(IMAGE), "small_job")


def test_n_is_checked_once_and_the_grid_once(monkeypatch, tmp_path):
    counts = {"n": 0, "grid": 0}
    real_count, real_grid = request_module.check_count, render.check_grid

    def counting_count(value, what="n", minimum=1):
        counts["n"] += what == "n"
        return real_count(value, what, minimum)

    def counting_grid(n, form):
        counts["grid"] += 1
        return real_grid(n, form)

    for module in (request_module, batches, session):
        monkeypatch.setattr(module, "check_count", counting_count)
    for module in (request_module, generation, render):
        monkeypatch.setattr(module, "check_grid", counting_grid)
    generate(IMAGE, 5, tmp_path / "g.png")
    assert counts == {"n": 1, "grid": 1}
    counts.update(n=0, grid=0)
    generate(COND, None, tmp_path / "c.png", per_class=2)  # all classes: checked once the model says how many
    assert counts == {"n": 0, "grid": 1}
