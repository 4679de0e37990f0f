"""The runtime per run size: measured, cached, reported, forced, and what happens without the
openvino extra. OpenVINO itself runs only in a child process (see conftest.py); here a stand-in
takes its place where a test needs a second runtime."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ganforge.inference as gi
from ganforge.errors import DeviceError, GanforgeError, MissingExtraError, ModelFileError
from ganforge.inference import Generator, runtimes, timing, tuning
from ganforge.inference.cli import main as infer_cli

DATA = Path(__file__).resolve().parents[1] / "data"
MODEL = DATA / "tiny-image.onnx"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(runtimes.PROVIDER_ENV, "auto")
    return tmp_path / "cache" / tuning.CACHE_FILE


class FakeOpenVino:
    """Stands in for OpenVINO's runner: onnxruntime's output, and a record of the run sizes it took."""

    opened: list[str] = []
    sizes: list[int] = []

    def __init__(self, path, output, precision, choice=None):  # choice: the threads, as OpenVinoRunner takes them
        import onnxruntime

        FakeOpenVino.opened.append(precision)
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.output = output

    def __call__(self, feed):
        FakeOpenVino.sizes.append(len(next(iter(feed.values()))))
        return self.session.run([self.output], feed)[0]


@pytest.fixture
def openvino(monkeypatch):
    """OpenVINO "installed" (the stand-in), with bf16 on this CPU."""
    FakeOpenVino.opened, FakeOpenVino.sizes = [], []
    monkeypatch.setattr(runtimes, "_openvino", lambda: object())
    monkeypatch.setattr(runtimes, "openvino_version", lambda: "test")
    monkeypatch.setattr(runtimes, "has_bf16", lambda: True)
    monkeypatch.setattr(runtimes, "OpenVinoRunner", FakeOpenVino)
    return FakeOpenVino


@pytest.fixture
def no_openvino(monkeypatch):
    monkeypatch.setattr(runtimes, "_openvino", lambda: None)
    monkeypatch.setattr(runtimes, "openvino_version", lambda: None)


@pytest.fixture
def paced(monkeypatch):
    """Stand-in runtimes whose time per sample depends on the run size, on a virtual clock."""
    now = [0.0]
    monkeypatch.setattr(timing, "clock", lambda: now[0])
    monkeypatch.setattr(tuning, "SETTLE_S", 0.0)

    def model(per_sample_us: dict[int, float]):
        def run(z):
            now[0] += len(z) * per_sample_us[len(z)] / 1e6
        return run

    return model


SIZES = (1, *tuning.CANDIDATES)


def test_each_run_size_goes_to_its_fastest_runtime(paced):
    ort = dict(zip(SIZES, (20, 5, 4, 4, 4, 4.2, 4.5, 4.6, 4.7)))  # µs a sample: best at 16-64
    ov = dict(zip(SIZES, (100, 8, 5, 4.1, 3.5, 3.0, 3.05, 3.2, 3.3)))  # slower small, faster from 64
    plan = tuning.tune({"onnxruntime": paced(ort), "openvino": paced(ov)}, latent_dim=3, budget_s=0.02)
    assert plan.routes == ((1, "onnxruntime"), (64, "openvino"))
    assert plan.micro_batch == 256  # openvino at 256 is within 3% of its best (128): fewer runs
    assert [plan.runtime(b) for b in (1, 32, 63, 64, 100, 256)] == ["onnxruntime"] * 3 + ["openvino"] * 3
    assert plan.describe() == "onnxruntime for runs of 1-63, openvino for runs of 64+; micro-batch 256"


def test_a_near_tie_stays_on_onnxruntime(paced):
    ort = dict.fromkeys(SIZES, 10.0)
    ov = dict.fromkeys(SIZES, 9.8)  # 2% faster: not worth a second runtime
    plan = tuning.tune({"onnxruntime": paced(ort), "openvino": paced(ov)}, latent_dim=3, budget_s=0.02)
    assert plan.routes == ((1, "onnxruntime"),) and plan.runtimes == ["onnxruntime"]


def test_generator_routes_runs_by_the_plan(openvino):
    gen = Generator(MODEL, device="cpu")
    assert gen.candidates == [("onnxruntime", "fp32"), ("openvino", "fp32")]
    z = gen.sample_noise(70, seed=1)
    exact = gen(z)  # not measured yet: onnxruntime
    assert not openvino.opened and gen.used == {"onnxruntime"}
    gen.plan, gen.micro_batch = tuning.Plan(32, ((1, "onnxruntime"), (16, "openvino"))), 32
    np.testing.assert_allclose(gen(z), exact, atol=1e-6)
    assert openvino.sizes == [32, 32] and gen.used == {"onnxruntime", "openvino"}  # 70 = 32 + 32 + 6 (onnxruntime)
    assert "onnxruntime, openvino" in gen.runtime_text()


def test_the_plan_is_measured_once_and_read_back(openvino, cache, monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "TUNE_FROM_N", 100)
    gen = Generator(MODEL, device="cpu")
    gen.tune_micro_batch(budget_s=0.01)
    assert set(gen.plan.speeds) == {"onnxruntime", "openvino"} and gen.plan_source == "measured"
    assert not gen.used  # what tuning ran is not what samples came from
    again = Generator(MODEL, device="cpu")
    assert again.plan == tuning.Plan(gen.plan.micro_batch, gen.plan.routes) and again.plan_source == "cache"
    forced = Generator(MODEL, device="cpu", provider="onnxruntime")  # another question: its own entry
    assert forced.plan_source is None and forced.plan.runtimes == ["onnxruntime"]


def test_a_small_job_keeps_to_onnxruntime_and_a_big_one_follows_the_plan(openvino, monkeypatch, tmp_path):
    monkeypatch.setattr(tuning, "TUNE_FROM_N", 100)
    gen = Generator(MODEL, device="cpu")
    tuning.store(gen._tuning_key, tuning.Plan(16, ((1, "openvino"),)))  # as if OpenVINO had won everywhere
    small = gi.generate(MODEL, 50, tmp_path / "small.npy")
    assert not openvino.opened and small.runtime.startswith("onnxruntime")
    assert any("this job is small" in line for line in small.runtime_details)
    big = gi.generate(MODEL, 100, tmp_path / "big.npy")
    assert openvino.opened == ["fp32"] and set(openvino.sizes) == {16, 4} and big.runtime == "openvino"
    np.testing.assert_allclose(np.load(tmp_path / "big.npy")[:50], np.load(tmp_path / "small.npy"), atol=1e-6)


def test_forcing_a_provider(openvino, monkeypatch):
    assert Generator(MODEL, device="cpu", provider="onnxruntime").candidates == [("onnxruntime", "fp32")]
    forced = Generator(MODEL, device="cpu", provider="openvino")
    assert forced.candidates == [("openvino", "fp32")] and forced.plan.runtimes == ["openvino"]
    forced.generate(3)
    assert openvino.opened == ["fp32"] and forced.used == {"openvino"}
    monkeypatch.setenv(runtimes.PROVIDER_ENV, "onnxruntime")  # the default of --provider
    assert Generator(MODEL, device="cpu").candidates == [("onnxruntime", "fp32")]
    monkeypatch.setenv(runtimes.PROVIDER_ENV, "tensorrt")
    with pytest.raises(GanforgeError, match="GANFORGE_PROVIDER='tensorrt' is not a provider; use one of: auto"):
        Generator(MODEL, device="cpu")
    with pytest.raises(GanforgeError, match="unknown provider 'cuda'"):
        Generator(MODEL, device="cpu", provider="cuda")
    with pytest.raises(DeviceError, match="--provider openvino runs on the CPU: use --device cpu"):
        Generator(MODEL, device="cuda", provider="openvino")


def test_without_the_extra_auto_falls_back_and_forcing_names_it(no_openvino, tmp_path):
    gen = Generator(MODEL, device="cpu")
    assert gen.candidates == [("onnxruntime", "fp32")]
    assert "OpenVINO is not installed: pip install 'ganforge[openvino]'" in "\n".join(gen.runtime_report())
    with pytest.raises(MissingExtraError, match=r"--provider openvino needs the 'openvino' extra \(openvino is missing\)"):
        Generator(MODEL, device="cpu", provider="openvino")
    with pytest.raises(MissingExtraError, match="--precision bf16 .* needs the 'openvino' extra"):
        Generator(MODEL, device="cpu", precision="bf16")
    result = CliRunner().invoke(infer_cli, ["--model", str(MODEL), "--out", str(tmp_path / "g.png"), "--provider",
                                            "openvino"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "pip install 'ganforge[openvino]'" in result.output and not (tmp_path / "g.png").exists()


def test_bf16_needs_openvino_and_a_cpu_that_has_it(openvino, monkeypatch):
    gen = Generator(MODEL, device="cpu", precision="bf16")
    assert gen.candidates == [("onnxruntime", "fp32"), ("openvino", "bf16")]
    assert gen.plan.runtimes == ["openvino"]  # asked for bf16: runs it until a measurement says otherwise
    gen.generate(2)
    assert openvino.opened == ["bf16"]
    with pytest.raises(GanforgeError, match="--precision bf16 runs on OpenVINO .* use --provider auto or openvino"):
        Generator(MODEL, device="cpu", precision="bf16", provider="onnxruntime")
    monkeypatch.setattr(runtimes, "has_bf16", lambda: False)
    with pytest.raises(GanforgeError, match="needs a CPU with bf16 instructions"):
        Generator(MODEL, device="cpu", precision="bf16")


def test_int8_reads_the_int8_file_beside_the_model(tmp_path):
    model = tmp_path / "generator.onnx"
    shutil.copy(MODEL, model)
    with pytest.raises(ModelFileError, match=r"needs .*generator\.int8\.onnx, which does not exist: write it with "
                                             r"gan-export --precision int8"):
        Generator(model, device="cpu", precision="int8")
    shutil.copy(MODEL, tmp_path / "generator.int8.onnx")
    gen = Generator(model, device="cpu", precision="int8")
    assert gen.path == tmp_path / "generator.int8.onnx" and gen.precision == "int8"
    assert Generator(tmp_path / "generator.int8.onnx", device="cpu", precision="int8").path == gen.path


def test_verbose_says_what_runs_it_and_why(openvino, tmp_path):
    args = ["--model", str(MODEL), "--n", "4", "--out", str(tmp_path / "g.png"), "-v"]
    first = CliRunner().invoke(infer_cli, args)
    assert first.exit_code == 0, first.output
    assert "candidates: onnxruntime fp32, openvino fp32" in first.output
    assert "plan: not measured yet: onnxruntime (measured on a job of 10,000 samples or more" in first.output
    gen = Generator(MODEL, device="cpu")
    tuning.store(gen._tuning_key, tuning.Plan(64, ((1, "onnxruntime"), (64, "openvino")), {"openvino": {64: 5.0}}))
    second = CliRunner().invoke(infer_cli, args)
    assert f"plan (read from {tuning.cache_dir() / tuning.CACHE_FILE}): onnxruntime for runs of 1-63, openvino for " \
           "runs of 64+; micro-batch 64" in second.output
    assert "ran on: onnxruntime" in second.output and "wrote " in second.output.splitlines()[-1]


def test_the_cli_offers_the_choices():
    result = CliRunner().invoke(infer_cli, ["--out", "g.png", "--provider", "tensorrt"])
    assert result.exit_code == 2 and "'tensorrt' is not one of 'auto', 'onnxruntime', 'openvino'" in result.output


@pytest.mark.skipif(runtimes.openvino_version() is None, reason="the openvino extra is not installed")
def test_with_openvino_itself(tmp_path):
    """In a child: OpenVINO's threads stay out of the pytest process."""
    code = textwrap.dedent(f"""
        import numpy as np
        from ganforge.inference import Generator, runtimes
        model = {str(MODEL)!r}
        ref = Generator(model, device="cpu", provider="onnxruntime")
        z = ref.sample_noise(300, seed=2)
        want = ref(z)
        auto = Generator(model, device="cpu", provider="auto")
        auto.tune_micro_batch(budget_s=0.02)
        assert set(auto.plan.speeds) == {{"onnxruntime", "openvino"}}, auto.plan
        assert np.abs(auto(z) - want).max() < 1e-5
        ov = Generator(model, device="cpu", provider="openvino")
        assert np.abs(ov(z) - want).max() < 1e-5 and ov.used == {{"openvino"}}
        if runtimes.has_bf16():
            bf = Generator(model, device="cpu", precision="bf16")
            assert 0 < np.abs(bf(z) - want).max() < 0.05, np.abs(bf(z) - want).max()
        print("ok")
    """)
    env = {**os.environ, "GANFORGE_CACHE_DIR": str(tmp_path / "cache"), runtimes.PROVIDER_ENV: ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"


def test_one_size_won_by_the_other_runtime_is_noise():
    speeds = {"onnxruntime": {1: 100, 8: 800, 16: 1000, 32: 1100}, "openvino": {1: 10, 8: 500, 16: 1100, 32: 1000}}
    plan = tuning.plan_from(speeds, ["onnxruntime", "openvino"])
    assert plan.routes == ((1, "onnxruntime"),)  # not onnxruntime, openvino at 16 alone, onnxruntime again
