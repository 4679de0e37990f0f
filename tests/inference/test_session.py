import warnings
from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import DeviceError, GanforgeError, GanforgeWarning, ModelFileError
from ganforge.inference import Generator
from ganforge.inference import keyed
from ganforge.inference import session as session_module
from tests.data.make_tiny_models import MODELS, build, weights

DATA = Path(__file__).resolve().parents[1] / "data"


def expected(name, z):
    kw = MODELS[name]
    W = weights(kw["latent_dim"], int(np.prod(kw["sample_shape"])), kw["seed"])
    return np.tanh(z @ W).reshape(len(z), *kw["sample_shape"])


@pytest.mark.parametrize("name", ["tiny-series.onnx", "tiny-image.onnx", "tiny-gray.onnx"])
def test_generate_matches_numpy(name):
    gen = Generator(DATA / name, device="cpu")
    kw = MODELS[name]
    assert gen.info.latent_dim == kw["latent_dim"] and gen.info.sample_shape == kw["sample_shape"]
    assert gen.info.kind == kw["kind"] and gen.providers == ["CPUExecutionProvider"]
    out = gen.generate(10, seed=3)
    assert out.shape == (10, *kw["sample_shape"]) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected(name, gen.sample_noise(10, 3)), atol=1e-5)


def test_batch_size_does_not_change_samples():
    gen = Generator(DATA / "tiny-image.onnx", device="cpu")
    a = gen.generate(37, seed=5, batch_size=37)
    np.testing.assert_array_equal(a, gen.generate(37, seed=5, batch_size=4))
    np.testing.assert_array_equal(a, gen.generate(37, seed=5, batch_size=1))
    assert not np.array_equal(a, gen.generate(37, seed=6))
    assert [b.shape[0] for b in gen.iter_batches(10, 0, batch_size=4)] == [4, 4, 2]


def test_ganforge_model_with_wrong_inputs_is_refused():
    with pytest.raises(ModelFileError, match=r"not a generator: expected one input 'z'.*found inputs: a tensor\(float\)"):
        Generator(DATA / "not-a-generator.onnx", device="cpu")


def test_foreign_series_generator_is_read_from_its_graph():
    gen = Generator(DATA / "no-metadata.onnx", device="cpu")
    assert (gen.info.latent_dim, gen.info.sample_shape, gen.info.kind, gen.info.variant) == (4, (32,), "series", None)
    np.testing.assert_allclose(gen.generate(6, seed=2), expected("no-metadata.onnx", gen.sample_noise(6, 2)), atol=1e-5)


def test_foreign_nhwc_is_inferred_and_transposed():
    with pytest.raises(ModelFileError, match="try --layout nhwc"):
        Generator(DATA / "foreign-nhwc.onnx", device="cpu", layout="nchw")
    gen = Generator(DATA / "foreign-nhwc.onnx", device="cpu")
    assert gen.layout == "nhwc" and "NHWC 8x8x3" in gen.foreign_note
    gen = Generator(DATA / "foreign-nhwc.onnx", device="cpu", layout="nhwc")
    assert gen.info.sample_shape == (3, 8, 8) and gen.info.kind == "image"
    z = gen.sample_noise(2, 0)
    np.testing.assert_allclose(gen(z), expected("foreign-nhwc.onnx", z).transpose(0, 3, 1, 2), atol=1e-5)


def test_foreign_open_latent_and_bad_inputs():
    with pytest.raises(ModelFileError, match="pass --latent-dim N"):
        Generator(DATA / "foreign-open-latent.onnx", device="cpu")
    gen = Generator(DATA / "foreign-open-latent.onnx", device="cpu", latent_dim=5, value_range=(0.0, 1.0))
    assert gen.info.sample_shape == (1, 4, 4) and gen.info.value_range == (0.0, 1.0)
    with pytest.raises(ModelFileError, match=r"expected one float input \[batch, \*latent\] and at most one integer "
                                             r"input of labels \[batch\], found inputs: "
                                             r"a tensor\(float\) \['batch', 4\], b tensor\(float\)"):
        Generator(DATA / "foreign-two-inputs.onnx", device="cpu")
    with pytest.raises(ModelFileError, match=r"input 'z' \[N,4\]: --latent-dim 7 contradicts it \(4 values\)"):
        Generator(DATA / "no-metadata.onnx", device="cpu", latent_dim=7)


def test_missing_corrupt_and_folder(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        Generator(tmp_path / "nope.onnx")
    with pytest.raises(ModelFileError, match="is a folder"):
        Generator(tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage" * 10)
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        Generator(bad)


def test_bad_arguments():
    gen = Generator(DATA / "tiny-series.onnx", device="cpu")
    with pytest.raises(GanforgeError, match="n must be >= 1"):
        gen.generate(0)
    with pytest.raises(GanforgeError, match=r"z must have shape \[batch, 4\]"):
        gen(np.zeros((2, 5), np.float32))
    with pytest.raises(GanforgeError, match="unknown device"):
        Generator(DATA / "tiny-series.onnx", device="tpu")


def test_cuda_request_without_cuda():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu installed")
    with pytest.raises(DeviceError, match="onnxruntime-gpu"):
        Generator(DATA / "tiny-series.onnx", device="cuda")


def test_noise_is_the_documented_scheme():
    gen = Generator(DATA / "tiny-series.onnx", device="cpu")
    z = gen.sample_noise(5, 11)
    assert z.dtype == np.float32 and z.shape == (5, 4)
    # keyed-blocks-v1: block 0 of seed 11 from default_rng([11, 0, 0]) (tests/inference/test_keyed.py)
    np.testing.assert_array_equal(z, keyed.generator(11, keyed.NOISE, 0).standard_normal((5, 4), dtype=np.float32))
    # generate(n, seed) is the model applied to exactly that noise
    np.testing.assert_array_equal(gen.generate(5, seed=11), gen(z))


def test_call_casts_float64_and_rejects_other_input():
    gen = Generator(DATA / "tiny-series.onnx", device="cpu")
    z = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(gen(z), expected("tiny-series.onnx", z.astype(np.float32)), atol=1e-5)
    with pytest.raises(GanforgeError, match="floating point"):
        gen(np.zeros((2, 4), np.int64))
    with pytest.raises(GanforgeError, match=r"z must have shape \[batch, 4\], got \[4\]"):
        gen(np.zeros(4, np.float32))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be >= 1"),
    (dict(n=2.5), "n must be a whole number"),
    (dict(n=3, seed=-1), "seed must be >= 0"),
    (dict(n=3, seed="7"), "seed must be a whole number"),
    (dict(n=3, batch_size=0), "batch size must be >= 1"),
])
def test_batch_arguments_are_checked_when_asked_not_when_iterated(kwargs, message):
    gen = Generator(DATA / "tiny-series.onnx", device="cpu")
    with pytest.raises(GanforgeError, match=message):
        gen.iter_batches(**kwargs)  # no next(): a streaming caller learns before it opens its output
    with pytest.raises(GanforgeError, match=message):
        gen.generate(**kwargs)


def _save(tmp_path, name, **kw):
    pytest.importorskip("onnx")
    import onnx

    path = tmp_path / name
    onnx.save_model(build(**kw), str(path))
    return path


@pytest.mark.parametrize("kw, message", [
    # a single input, but not named z
    (dict(latent_dim=4, sample_shape=(32,), kind="series", input_name="noise"), r"expected one input 'z'.*noise"),
    # metadata disagrees with the graph
    (dict(latent_dim=4, sample_shape=(32,), kind="series", props={"ganforge.latent_dim": "5"}), "latent_dim 5"),
    (dict(latent_dim=4, sample_shape=(32,), kind="series", props={"ganforge.sample_shape": "[16]"}),
     r"output 'x' has shape \['batch', 32\].*\[16\]"),
    (dict(latent_dim=4, sample_shape=(32,), kind="image"), r"kind image needs sample_shape \[C, H, W\]"),
    (dict(latent_dim=4, sample_shape=(2, 4, 4), kind="image"), "C 1 or 3"),
    (dict(latent_dim=4, sample_shape=(3, 4, 4), kind="series"), r"kind series needs sample_shape \[length\]"),
    (dict(latent_dim=4, sample_shape=(32,), kind="series", props={"ganforge.value_range": "[1, 1]"}),
     "value_range .* is empty"),
    (dict(latent_dim=4, sample_shape=(32,), kind="series", props={"ganforge.kind": "audio"}), "unknown model kind"),
    (dict(latent_dim=4, sample_shape=(32,), kind="series", props={"ganforge.latent_dim": "four"}), "malformed"),
    (dict(latent_dim=4, sample_shape=(32,), kind="series", props={"ganforge.sample_shape": None}),
     "ganforge.sample_shape missing"),
])
def test_inconsistent_ganforge_models_are_refused(tmp_path, kw, message):
    path = _save(tmp_path, "bad.onnx", **kw)
    with pytest.raises(ModelFileError, match=message):
        Generator(path, device="cpu")


# --- device selection, with a stand-in onnxruntime that lists CUDA -----------------------------------

class FakeOrt:
    """onnxruntime as onnxruntime-gpu looks on a machine whose CUDA cannot start.

    ``cuda="missing"``: the session silently runs on CPU (get_providers() lacks CUDA);
    ``cuda="raises"``: asking for CUDA raises, as when libcudnn cannot be loaded;
    ``cuda="works"``: the session reports CUDA (it really computes on CPU).
    """

    def __init__(self, cuda):
        import onnxruntime

        self.real, self.cuda, self.calls = onnxruntime, cuda, []
        self.SessionOptions, self.GraphOptimizationLevel = onnxruntime.SessionOptions, onnxruntime.GraphOptimizationLevel
        self.RunOptions = onnxruntime.RunOptions

    def get_available_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def InferenceSession(self, path, sess_options=None, providers=None, **kwargs):
        self.calls.append(list(providers))
        assert providers, "providers must always be explicit"
        wants_cuda = "CUDAExecutionProvider" in providers
        if wants_cuda and self.cuda == "raises":
            raise RuntimeError("Failed to load libonnxruntime_providers_cuda.so: libcudnn.so.9: cannot open shared object file")
        session = self.real.InferenceSession(path, sess_options=sess_options, providers=["CPUExecutionProvider"], **kwargs)
        if wants_cuda and self.cuda == "works":
            session.get_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return session


@pytest.fixture
def fake_ort(monkeypatch):
    def install(cuda):
        fake = FakeOrt(cuda)
        monkeypatch.setattr(session_module, "_ort", lambda: fake)
        monkeypatch.setattr(session_module, "_noted_fallback", False)
        return fake
    return install


@pytest.mark.parametrize("cuda", ["missing", "raises"])
def test_auto_falls_back_to_cpu_and_says_so_once(fake_ort, cuda):
    fake = fake_ort(cuda)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = Generator(DATA / "tiny-series.onnx", device="auto")
        second = Generator(DATA / "tiny-image.onnx", device="auto")
    notes = [str(w.message) for w in caught if issubclass(w.category, GanforgeWarning)]
    assert len(notes) == 1 and "running on CPU" in notes[0] and "CUDA provider is installed" in notes[0]
    assert first.device == second.device == "cpu" and first.providers == ["CPUExecutionProvider"]
    assert fake.calls[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert first.generate(2).shape == (2, 32)


@pytest.mark.parametrize("cuda, message", [("missing", "could not start"), ("raises", r"could not start \(.*libcudnn")])
def test_cuda_that_cannot_start_is_a_device_error(fake_ort, cuda, message):
    fake_ort(cuda)
    with pytest.raises(DeviceError, match=message):
        Generator(DATA / "tiny-series.onnx", device="cuda")


def test_cuda_that_starts_is_used_and_reported(fake_ort):
    fake = fake_ort("works")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback note
        gen = Generator(DATA / "tiny-series.onnx", device="auto")
    assert gen.device == "cuda" and gen.providers[0] == "CUDAExecutionProvider"
    assert Generator(DATA / "tiny-series.onnx", device="cpu").device == "cpu"
    assert fake.calls[-1] == ["CPUExecutionProvider"]  # --device cpu never asks for CUDA


def test_a_corrupt_file_is_a_model_error_even_when_cuda_fails_too(fake_ort, tmp_path):
    fake_ort("raises")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01junk")
    for device in ("auto", "cuda"):
        with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
            Generator(bad, device=device)


def test_a_failing_run_is_one_line(monkeypatch):
    gen = Generator(DATA / "tiny-series.onnx", device="cpu")

    def boom(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory\nmore detail")

    monkeypatch.setattr(gen.session, "run", boom)
    with pytest.raises(GanforgeError, match=r"running .*tiny-series.onnx on a batch of 3 failed \(.*allocate memory\)$"):
        gen.generate(3)


def test_an_output_that_breaks_the_metadata_contract_is_caught(monkeypatch):
    gen = Generator(DATA / "tiny-image.onnx", device="cpu")
    monkeypatch.setattr(gen.session, "run", lambda names, feed, options=None: [np.zeros((len(feed["z"]), 3, 8, 4), np.float32)])
    with pytest.raises(ModelFileError, match=r"returned shape \[2, 3, 8, 4\] for a batch of 2; expected \[2, 3, 8, 8\]"):
        gen.generate(2)
