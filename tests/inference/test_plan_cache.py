"""The runtime-plan cache is untrusted input (issue 29): read only as a small regular file of
JSON (never a FIFO, a device, a huge file, deeply nested JSON), its old entries evicted, and no
entry routes a run past the memory budget (an OpenVINO route runs a size only once the capped
onnxruntime ran it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import GanforgeError
from ganforge.inference import Generator, runtimes, tuning
from tests.hostile.harness import assert_ok, run_cli

DATA = Path(__file__).resolve().parents[1] / "data"
TINY = DATA / "tiny-image.onnx"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    return tmp_path / "cache" / tuning.CACHE_FILE


def test_a_fifo_in_place_of_the_cache_never_blocks(cache, tmp_path):
    os.mkfifo(cache)
    assert tuning._read() == {}  # opened without waiting for a writer
    result = run_cli("gan-infer", "--model", str(TINY), "--n", "16", "--out", "g.png", "--device", "cpu",
                     cwd=tmp_path, env={"GANFORGE_CACHE_DIR": str(cache.parent)}, timeout=60)
    assert_ok(result)


@pytest.mark.parametrize("content", [
    "[" * 200_000,  # nested past the parser's recursion
    json.dumps({"k": "x" * (tuning.MAX_CACHE_BYTES + 10)}),  # valid, but more than a plan cache holds
    "\xff\xfe not json",
    "[1, 2]",
])
def test_a_cache_that_is_not_a_small_json_object_is_measured_again(cache, content):
    cache.write_bytes(content.encode("latin-1"))
    assert tuning._read() == {}
    gen = Generator(TINY, device="cpu")
    assert gen.plan_source is None and np.isfinite(gen.generate(8)).all()


def test_old_entries_are_evicted_and_the_newest_kept(cache):
    plan = tuning.Plan.single(runtimes.ONNXRUNTIME, 64)
    for i in range(tuning.MAX_ENTRIES + 5):
        assert tuning.store(f"key {i}", plan)
    data = json.loads(cache.read_text())
    assert len(data) == tuning.MAX_ENTRIES
    assert "key 0" not in data and "key 4" not in data and f"key {tuning.MAX_ENTRIES + 4}" in data
    tuning.store("key 5", plan)  # stored again: the newest now
    assert list(json.loads(cache.read_text()))[-1] == "key 5"


@pytest.mark.parametrize("entry", [
    {"micro_batch": True, "routes": [[1, "onnxruntime"]]},
    {"micro_batch": 10**9, "routes": [[1, "onnxruntime"]]},
    {"micro_batch": 8, "routes": [[i, "onnxruntime"] for i in range(1, 40)]},
    {"micro_batch": 8, "routes": [[1, "magic"]]},
])
def test_an_entry_of_wrong_types_or_sizes_is_not_used(entry):
    assert tuning.Plan.from_json(entry, {runtimes.ONNXRUNTIME}) is None


def test_an_openvino_route_runs_a_size_only_once_the_capped_runtime_ran_it(cache, monkeypatch):
    gen = Generator(TINY, device="cpu")
    opened = []

    class Spy:
        def __call__(self, feed):
            opened.append(len(feed["z"]))
            return np.zeros((len(feed["z"]), *gen.info.sample_shape), np.float32)

    gen._runners[runtimes.OPENVINO] = Spy()
    gen.plan = tuning.Plan(None, ((1, runtimes.OPENVINO),))  # what a crafted cache entry would say

    def over_budget(feed):
        raise RuntimeError("Available memory of 67108864 is smaller than requested bytes of 4294967296")

    real = gen._run_session
    monkeypatch.setattr(gen, "_run_session", over_budget)
    with pytest.raises(GanforgeError, match=r"on a batch of 4 needs more than the .* memory limit"):
        gen.generate(4, batch_size=4)
    assert opened == []  # OpenVINO never ran the size the capped runtime could not
    monkeypatch.setattr(gen, "_run_session", real)
    gen.generate(4, batch_size=4)
    gen.generate(4, batch_size=4)
    assert opened == [4, 4]  # proven once, then OpenVINO's
