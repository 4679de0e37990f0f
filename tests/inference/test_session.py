import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ganforge.errors import DeviceError, GanforgeError, ModelFileError
from ganforge.inference import Generator
from tests.data.make_tiny_models import MODELS, weights

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


@pytest.mark.parametrize("name, fragment", [
    ("not-a-generator.onnx", r"not a generator: expected one input 'z'.*found inputs: a tensor\(float\)"),
    ("no-metadata.onnx", "no ganforge metadata"),
])
def test_foreign_models_are_refused(name, fragment):
    with pytest.raises(ModelFileError, match=fragment):
        Generator(DATA / name, device="cpu")


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


def test_inference_never_imports_torch(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import ganforge.inference as gi
        from ganforge.inference.cli import main
        gen = gi.Generator({str(DATA / 'tiny-image.onnx')!r})
        gi.save_samples(gen.generate(8), {str(tmp_path / 'g.png')!r}, kind=gen.info.kind)
        gi.generate({str(DATA / 'tiny-series.onnx')!r}, 4, {str(tmp_path / 's.npy')!r})
        bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]
        assert not bad, bad
        print('ok')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok" and (tmp_path / "g.png").exists() and (tmp_path / "s.npy").exists()
