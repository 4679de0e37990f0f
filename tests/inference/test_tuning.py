"""The micro-batch: chosen by measurement, cached per model and machine, and invisible in the output."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ganforge.inference as gi
from ganforge.inference import Generator, timing, tuning

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / tuning.CACHE_FILE


@pytest.fixture
def paced(monkeypatch):
    """A stand-in model whose time per sample depends on the run size, on a virtual clock
    (so a busy machine cannot change what is measured)."""
    now = [0.0]
    monkeypatch.setattr(timing, "clock", lambda: now[0])

    def model(per_sample_us: dict[int, float]):
        def run(z):
            now[0] += len(z) * per_sample_us[len(z)] / 1e6
        return run

    return model


def test_tune_picks_the_fastest_run_size(paced):
    cost = {1: 500, 8: 30, 16: 25, 32: 10, 64: 22, 128: 25, 256: 27, 512: 28, 1024: 30}  # µs a sample: 32 is fastest
    plan = tuning.tune({"onnxruntime": paced(cost)}, latent_dim=3, budget_s=0.02)
    assert plan.micro_batch == 32 and plan.routes == ((1, "onnxruntime"),)
    speed = plan.speeds["onnxruntime"]
    assert set(speed) == {1, *tuning.CANDIDATES}  # a run of 1024 takes ~30 ms: short enough to time
    assert speed[32] == pytest.approx(1e6 / 10) and speed[256] == pytest.approx(1e6 / 27)


def test_tune_prefers_the_larger_of_near_ties(paced):
    cost = {1: 500, 8: 40, 16: 40, 32: 39.7, 64: 40, 128: 40.5, 256: 43, 512: 44, 1024: 45}  # 128 within 3%
    assert tuning.tune({"onnxruntime": paced(cost)}, latent_dim=3, budget_s=0.02).micro_batch == 128


def test_tune_skips_sizes_whose_run_would_be_long(paced):
    slow = dict.fromkeys((1, *tuning.CANDIDATES), 4000.0)  # 4 ms a sample: a run of 32 would take 128 ms
    plan = tuning.tune({"onnxruntime": paced(slow)}, latent_dim=3, budget_s=0.02)
    assert sorted(plan.speeds["onnxruntime"]) == [1, 8, 16] and plan.micro_batch == 16


ORT = {"onnxruntime"}


def test_cache_round_trip_and_invalidation(cache, tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x")
    key = tuning.cache_key(model, ["CPUExecutionProvider"], "1.0", "onnxruntime:fp32")
    assert tuning.cached(key, ORT) is None
    plan = tuning.Plan(16, ((1, "onnxruntime"),), {"onnxruntime": {8: 1000.0, 16: 2000.0}})
    assert tuning.store(key, plan)
    assert tuning.cached(key, ORT) == tuning.Plan(16, ((1, "onnxruntime"),))
    assert json.loads(cache.read_text())[key]["samples_per_s"] == {"onnxruntime": {"8": 1000, "16": 2000}}
    assert tuning.cached(key, {"openvino"}) is None  # a plan for a runtime not on offer now is not used
    os.utime(model, ns=(0, 0))  # a re-exported model: measured again
    assert tuning.cached(tuning.cache_key(model, ["CPUExecutionProvider"], "1.0", "onnxruntime:fp32"), ORT) is None
    assert tuning.cached(tuning.cache_key(model, ["CPUExecutionProvider"], "2.0", "onnxruntime:fp32"), ORT) is None
    cache.write_text("{not json")
    assert tuning.cached(key, ORT) is None  # a damaged cache is measured over, not an error


@pytest.mark.parametrize("entry", [
    {"micro_batch": 16},  # written by an older ganforge: no routes
    {"micro_batch": 16, "routes": []},
    {"micro_batch": 0, "routes": [[1, "onnxruntime"]]},
    {"micro_batch": 16, "routes": [[1, "onnxruntime"], [1, "openvino"]]},
    {"micro_batch": 16, "routes": [[0, "onnxruntime"]]},
    {"micro_batch": 16, "routes": [["x", "onnxruntime"]]},
    {"micro_batch": "16", "routes": [[1, "onnxruntime"]]},
    {"micro_batch": 16, "routes": [[1, "tensorrt"]]},
])
def test_a_cache_entry_this_version_cannot_use_is_measured_again(entry):
    assert tuning.Plan.from_json(entry, {"onnxruntime", "openvino"}) is None


def test_unwritable_cache_is_not_an_error(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(blocker / "cache"))  # under a file: cannot be created
    assert tuning.store("k", tuning.Plan.single("onnxruntime", 8)) is False


def test_one_cache_folder_for_every_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("GANFORGE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tuning.cache_dir() == tmp_path / "home" / ".cache" / "ganforge"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tuning.cache_dir() == tmp_path / "xdg" / "ganforge"
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(tmp_path / "mine"))
    assert tuning.cache_dir() == tmp_path / "mine"
    # gan-eval's evaluators go to the same folder (read once, at import: a fresh interpreter)
    proc = subprocess.run([sys.executable, "-c", "import ganforge.evaluation.images as i; print(i.CACHE)"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "mine" / "evaluators")


def test_cpu_name_is_what_bench_reports(monkeypatch):
    from ganforge.bench import run

    monkeypatch.setattr(run, "cpu_name", lambda: "a test CPU")  # raises if bench/run.py has no cpu_name
    assert run._machine()["cpu"] == "a test CPU"


def counting(gen: Generator, monkeypatch) -> list[int]:
    sizes = []
    real = gen.session.run

    def run(names, feeds, options=None):
        sizes.append(len(next(iter(feeds.values()))))
        return real(names, feeds, options)

    monkeypatch.setattr(gen.session, "run", run)
    return sizes


def test_micro_batches_give_the_same_samples(cache, monkeypatch):
    gen = Generator(DATA / "tiny-image.onnx", device="cpu")
    assert gen.micro_batch is None
    z = gen.sample_noise(70, seed=1)
    whole = gen(z)
    gen.micro_batch = 32
    sizes = counting(gen, monkeypatch)
    np.testing.assert_array_equal(gen(z), whole)
    assert sizes == [32, 32, 6]
    sizes.clear()
    list(gen.iter_batches(70, batch_size=50))  # an explicit batch size is the run size
    assert sizes == [50, 20]


def test_generate_tunes_large_requests_once_and_caches(cache, monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "TUNE_FROM_N", 100)
    model = DATA / "tiny-image.onnx"
    gi.generate(model, 99, tmp_path / "a.npy")
    assert not cache.exists()  # small requests never pay for a measurement
    gi.generate(model, 100, tmp_path / "b.npy")
    chosen = Generator(model, device="cpu").micro_batch  # a new process would read it back
    assert chosen in tuning.CANDIDATES
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy")[:99], np.load(tmp_path / "a.npy"))
