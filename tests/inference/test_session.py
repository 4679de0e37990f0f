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


def test_ganforge_model_with_wrong_inputs_is_refused():
    with pytest.raises(ModelFileError, match=r"not a generator: expected one input 'z'.*found inputs: a tensor\(float\)"):
        Generator(DATA / "not-a-generator.onnx", device="cpu")


def test_foreign_series_generator_is_read_from_its_graph():
    gen = Generator(DATA / "no-metadata.onnx", device="cpu")
    assert (gen.info.latent_dim, gen.info.sample_shape, gen.info.kind, gen.info.variant) == (4, (32,), "series", None)
    np.testing.assert_allclose(gen.generate(6, seed=2), expected("no-metadata.onnx", gen.sample_noise(6, 2)), atol=1e-5)


def test_foreign_nhwc_needs_the_layout_and_is_transposed():
    with pytest.raises(ModelFileError, match="try --layout nhwc"):
        Generator(DATA / "foreign-nhwc.onnx", device="cpu")
    gen = Generator(DATA / "foreign-nhwc.onnx", device="cpu", layout="nhwc")
    assert gen.info.sample_shape == (3, 8, 8) and gen.info.kind == "image"
    z = gen.sample_noise(2, 0)
    np.testing.assert_allclose(gen(z), expected("foreign-nhwc.onnx", z).transpose(0, 3, 1, 2), atol=1e-5)


def test_foreign_open_latent_and_bad_inputs():
    with pytest.raises(ModelFileError, match="pass --latent-dim N"):
        Generator(DATA / "foreign-open-latent.onnx", device="cpu")
    gen = Generator(DATA / "foreign-open-latent.onnx", device="cpu", latent_dim=5, value_range=(0.0, 1.0))
    assert gen.info.sample_shape == (1, 4, 4) and gen.info.value_range == (0.0, 1.0)
    with pytest.raises(ModelFileError, match=r"expected one float input \[batch, latent\], found inputs: "
                                             r"a tensor\(float\) \['batch', 4\], b tensor\(float\)"):
        Generator(DATA / "foreign-two-inputs.onnx", device="cpu")
    with pytest.raises(ModelFileError, match="--latent-dim 7 but input 'z' takes 4"):
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
