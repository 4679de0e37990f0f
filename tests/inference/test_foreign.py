"""ONNX generators exported elsewhere (no ganforge metadata), served by gan-infer, gan-bench and
gan-eval with what their graphs say and the flags say, and adopted into ganforge's contract
(ganforge.export.adopt). The models are built by tests/data/foreign_models.py; their samples
are computed with numpy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ganforge.errors import GanforgeError, ModelFileError
from ganforge.inference import Generator, keyed
from ganforge.inference.cli import main as infer
from ganforge.inference.render import to_uint8

pytest.importorskip("onnx")

from tests.data.foreign_models import FOREIGN, expected, write_all  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
N, SEED = 10, 3
# The flags each model needs (or that say what cannot be inferred), as gan-infer takes them
FLAGS = {
    "dcgan-open.onnx": ["--latent-dim", "100"],
    "unit.onnx": ["--value-range", "0,1"],
    "bytes-float.onnx": ["--value-range", "0,255"],
    "labels.onnx": ["--num-classes", "4"],
    "labels-int32.onnx": ["--num-classes", "4"],
}
KWARGS = {"dcgan-open.onnx": dict(latent_dim=100), "unit.onnx": dict(value_range=(0, 1)),
          "bytes-float.onnx": dict(value_range=(0, 255)), "labels.onnx": dict(num_classes=4),
          "labels-int32.onnx": dict(num_classes=4)}
RANGES = {"unit.onnx": (0.0, 1.0), "bytes-float.onnx": (0.0, 255.0), "uint8.onnx": (0.0, 255.0)}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("foreign"))


def run(*args):
    return CliRunner().invoke(infer, [str(a) for a in args])


def notes(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("foreign model:")]


def assert_one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0], result.output


def random_labels(n: int, seed: int, classes: int = 4) -> np.ndarray:
    """What gan-infer draws for a conditional model without --label (Generator.sample_labels)."""
    return keyed.labels(seed, 0, n, classes)


def want(name: str, n: int = N, seed: int = SEED, labels=None) -> np.ndarray:
    nz = int(np.prod(FOREIGN[name]["latent_shape"]))
    z = keyed.noise(seed, 0, n, nz)  # samples 0:n of the seed (keyed-blocks-v1)
    if labels is None and "labels" in FOREIGN[name]:
        labels = random_labels(n, seed)
    return expected(name, z, labels)


def tolerance(name: str) -> float:
    spec = FOREIGN[name]
    if spec.get("out") == "uint8":
        return 1.0  # sigmoid x 255 rounded: numpy and onnxruntime may round a half apart
    return 2e-3 if spec.get("dtype") == "float16" else 1e-4 * (255 if spec.get("out") == "bytes" else 1)


# --- gan-infer ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FOREIGN))
def test_served_to_npy_as_numpy_computes_it(models, name, tmp_path):
    out = tmp_path / "x.npy"
    result = run("--model", models[name], "--n", N, "--seed", SEED, "--out", out, *FLAGS.get(name, []))
    assert result.exit_code == 0, result.output
    assert len(notes(result)) == 1 and result.stdout.startswith("wrote ")  # the note once, on stderr
    x = np.load(out)
    assert x.dtype == np.float32 and x.shape == (N, *FOREIGN[name].get("sample_shape", (3, 8, 8)))
    np.testing.assert_allclose(x, want(name), atol=tolerance(name))


@pytest.mark.parametrize("name", ["dcgan.onnx", "batch1.onnx", "nhwc.onnx", "uint8.onnx", "unit.onnx", "half.onnx"])
def test_served_to_pngs_with_the_models_pixels(models, name, tmp_path):
    result = run("--model", models[name], "--n", 3, "--seed", SEED, "--out", f"{tmp_path}/each/",
                 *FLAGS.get(name, []))
    assert result.exit_code == 0, result.output
    from PIL import Image

    pixels = np.asarray(Image.open(tmp_path / "each" / "shard-000000" / "sample-00002.png"), np.int16)
    assert pixels.shape == (8, 8, 3)
    wanted = to_uint8(want(name, 3)[2], RANGES.get(name, (-1.0, 1.0))).transpose(1, 2, 0)
    assert np.abs(pixels - wanted).max() <= 1
    grid = run("--model", models[name], "--n", 4, "--out", tmp_path / "g.png", *FLAGS.get(name, []))
    assert grid.exit_code == 0 and Image.open(tmp_path / "g.png").size == (2 * 8 + 3 * 2,) * 2


def test_the_printed_line_says_what_was_read_and_assumed(models, tmp_path):
    def note(name, *flags):
        result = run("--model", models[name], "--n", 2, "--out", tmp_path / "x.npy", *flags)
        assert result.exit_code == 0, result.output
        (line,) = notes(result)
        return line

    tail = "; override with --latent-shape/--layout/--value-range"
    assert note("dcgan.onnx") == f"foreign model: latent [N,100,1,1], NCHW 3x8x8, assumed range [-1, 1]{tail}"
    assert note("batch1.onnx").startswith("foreign model: latent [1,100,1,1] (fixed batch: runs of 1), NCHW 3x8x8")
    assert note("uint8.onnx") == f"foreign model: latent [N,6], NHWC 8x8x3 uint8, range [0, 255] (uint8 output){tail}"
    assert note("labels-int32.onnx", "--num-classes", "4") == (
        f"foreign model: latent [N,6,1,1], labels int32 [N,1] (4 classes), NCHW 3x8x8, assumed range [-1, 1]{tail}")
    assert note("half.onnx").startswith("foreign model: latent [N,6] float16, NCHW 3x8x8 float16, assumed range")
    assert note("series.onnx").startswith("foreign model: latent [N,4], series of 16, assumed range [-1, 1]")
    # the probe of seed 0's samples hints at a range, never decides it
    assert "if it is [0, 255], pass --value-range 0,255)" in note("bytes-float.onnx")
    assert "if it is [0, 1], pass --value-range 0,1)" in note("unit.onnx")
    assert "range [0, 1] (--value-range)" in note("unit.onnx", "--value-range", "0,1")
    assert note("nhwc.onnx", "--layout", "nhwc").startswith("foreign model: latent [N,6], NHWC 8x8x3,")
    # ganforge's own exports print nothing of the kind
    result = run("--model", DATA / "tiny-image.onnx", "--n", 2, "--out", tmp_path / "t.npy")
    assert result.exit_code == 0 and result.stderr == ""
    assert Generator(DATA / "tiny-image.onnx", device="cpu").foreign_note is None


def test_the_latent_stays_a_flat_vector(models, tmp_path):
    """Seeds, walks and noise mean the same for [N, 100, 1, 1] as for [N, 100]: the flat noise, reshaped."""
    gen = Generator(models["dcgan.onnx"], device="cpu")
    assert gen.info.latent_dim == 100 and gen.latent_shape == (100, 1, 1)
    z = gen.sample_noise(4, 7)
    assert z.shape == (4, 100)
    np.testing.assert_allclose(gen(z), expected("dcgan.onnx", z), atol=1e-4)
    walk = tmp_path / "walk.npy"
    assert run("--model", models["dcgan.onnx"], "--interpolate", "3,7", "--steps", 3, "--out", walk).exit_code == 0
    frames = np.load(walk)
    np.testing.assert_array_equal(frames[0], gen.generate(1, seed=3)[0])
    np.testing.assert_array_equal(frames[-1], gen.generate(1, seed=7)[0])
    # an open latent dimension: --latent-dim fills it, --latent-shape gives it whole; the same samples
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert run("--model", models["dcgan-open.onnx"], "--n", 5, "--out", a, "--latent-dim", 100).exit_code == 0
    assert run("--model", models["dcgan-open.onnx"], "--n", 5, "--out", b, "--latent-shape", "100,1,1").exit_code == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("name, batch_size", [("batch4.onnx", None), ("batch4.onnx", 3), ("batch1.onnx", 7)])
def test_a_fixed_batch_runs_in_chunks_whatever_is_asked(models, name, batch_size, tmp_path):
    out = tmp_path / "x.npy"
    args = ["--batch-size", batch_size] if batch_size else []
    assert run("--model", models[name], "--n", N, "--seed", SEED, "--out", out, *args).exit_code == 0
    np.testing.assert_allclose(np.load(out), want(name), atol=1e-4)
    gen = Generator(models[name], device="cpu")
    assert gen.fixed_batch == FOREIGN[name]["batch"] and gen.micro_batch is None and gen.tune_micro_batch() is None
    np.testing.assert_array_equal(gen.generate(N, seed=SEED, batch_size=1), np.load(out))


def test_labels_by_index_and_per_class(models, tmp_path):
    out = tmp_path / "x.npy"
    for name in ("labels.onnx", "labels-int32.onnx"):
        result = run("--model", models[name], "--num-classes", 4, "--label", 2, "--label", 0, "--n", 6, "--out", out)
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(np.load(out), want(name, 6, 0, labels=np.array([2, 2, 2, 0, 0, 0])), atol=1e-4)
    result = run("--model", models["labels.onnx"], "--num-classes", 4, "--per-class", 2, "--out", out)
    assert result.exit_code == 0 and np.load(out).shape == (8, 3, 8, 8)
    assert_one_line_error(run("--model", models["labels.onnx"], "--num-classes", 4, "--label", 7, "--out", out),
                          "label '7' is out of range")


@pytest.mark.parametrize("name, flags, fragment", [
    ("labels.onnx", [], "takes class labels (input 'class' tensor(int64) ['N']): pass --num-classes K"),
    ("dcgan.onnx", ["--num-classes", "3"], "--num-classes 3, but"),
    ("dcgan.onnx", ["--latent-shape", "50,2,1"], "input 'noise' [N,100,1,1]: --latent-shape 50,2,1 contradicts it"),
    ("dcgan.onnx", ["--latent-shape", "100"], "--latent-shape 100 contradicts it"),
    ("dcgan.onnx", ["--latent-dim", "64"], "input 'noise' [N,100,1,1]: --latent-dim 64 contradicts it (100 values)"),
    ("dcgan-open.onnx", [], "input 'noise' [N,?,1,1]: the latent size is not fixed in the graph; pass --latent-dim N"),
    ("dcgan-open.onnx", ["--latent-dim", "100", "--latent-shape", "50,2,1"], "--latent-shape 50,2,1 contradicts it"),
    ("dcgan-open.onnx", ["--latent-shape", "100,1,1", "--latent-dim", "99"], "--latent-dim 99 contradicts it"),
    ("dcgan-open.onnx", ["--latent-dim", "99"], "running it on a [1,99,1,1] input failed"),
    ("nhwc.onnx", ["--layout", "nchw"], "channels last? try --layout nhwc"),
    ("nhwc.onnx", ["--layout", "series"], "not a series [L]"),
])
def test_refusals_are_one_line_and_write_nothing(models, name, flags, fragment, tmp_path):
    out = tmp_path / "g.png"
    out.write_bytes(b"an earlier grid")
    assert_one_line_error(run("--model", models[name], "--n", 4, "--out", out, *flags), fragment)
    assert out.read_bytes() == b"an earlier grid"


def test_flag_values_are_checked_by_the_cli(models, tmp_path):
    for flag, value, message in [("--latent-shape", "100,x", "expected sizes after the batch"),
                                 ("--latent-shape", "100,0,1", "each >= 1"),
                                 ("--num-classes", "0", "0 is not in the range"),
                                 ("--value-range", "1,0", "LOW must be below HIGH")]:
        result = run("--model", models["dcgan.onnx"], "--n", 2, "--out", tmp_path / "x.npy", flag, value)
        assert result.exit_code == 2 and message in result.output, result.output


def test_a_fixed_batch_beyond_the_limit_is_refused_before_it_sizes_anything(tmp_path):
    import onnx

    from tests.data.foreign_models import build_foreign

    onnx.save_model(build_foreign((6,), seed=0, batch=5000), str(tmp_path / "m.onnx"))
    with pytest.raises(ModelFileError, match="its graph fixes a batch of 5000; ganforge runs fixed batches of 1 to 4096"):
        Generator(tmp_path / "m.onnx", device="cpu")


def test_an_input_it_cannot_use_is_refused_naming_the_inputs(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    two_ints = helper.make_graph(
        [helper.make_node("Cast", ["a"], ["fa"], to=TensorProto.FLOAT), helper.make_node("Add", ["fa", "z"], ["x"])],
        "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4]),
              helper.make_tensor_value_info("a", TensorProto.INT64, ["N", 4])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])])
    model = helper.make_model(two_ints, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelFileError, match=r"at most one integer input of labels \[batch\], found inputs: z "
                                             r"tensor\(float\) \['N', 4\], a tensor\(int64\) \['N', 4\]"):
        Generator(tmp_path / "m.onnx", device="cpu")
    with pytest.raises(GanforgeError, match="a latent shape dimension must be >= 1"):
        Generator(tmp_path / "m.onnx", device="cpu", latent_shape=(4, 0))


# --- gan-bench and gan-eval --------------------------------------------------------------------------

def test_bench_times_a_foreign_model_and_skips_the_torch_backends(models, tmp_path):
    from ganforge.bench.cli import main as bench

    result = CliRunner().invoke(bench, ["--model", str(models["dcgan-open.onnx"]), "--latent-dim", "100",
                                        "--batch-sizes", "1,3", "--budget", "0.01", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert len(notes(result)) == 1
    report = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [b["name"] for b in report["backends"]] == ["ganforge", "onnxruntime-cpu"]
    assert report["skipped"]["torch-eager"] == "no checkpoint found beside the model (export.json names none)"
    assert report["model"]["foreign"].startswith("foreign model: latent [N,100,1,1]")
    assert report["cold_start"]["gan-infer_s"] > 0 and "gan-infer_error" not in report["cold_start"]  # flags passed on
    assert "Read as a foreign model" in (tmp_path / "b" / "bench.md").read_text()
    fixed = CliRunner().invoke(bench, ["--model", str(models["batch4.onnx"]), "--backends", "onnxruntime-cpu",
                                       "--batch-sizes", "1,5", "--budget", "0.01", "--no-cold-start",
                                       "--out", str(tmp_path / "c")])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads((tmp_path / "c" / "bench.json").read_text())["backends"][0]["fixed_batch"] == 4


def test_eval_reads_a_foreign_model_with_the_same_flags(models, tmp_path, fake_data):
    pytest.importorskip("torch")
    from ganforge.evaluation import evaluate, to_unit_range
    from ganforge.evaluation.cli import main as gan_eval

    result = CliRunner().invoke(gan_eval, [str(models["labels.onnx"]), "--out", str(tmp_path / "e")])
    assert_one_line_error(result, "pass --num-classes K")
    lines = []
    report = evaluate(models["uint8.onnx"], data=fake_data / "cifar", n=12, out_dir=tmp_path / "e",
                      evaluator_steps=5, progress=lines.append)
    assert lines[0].startswith("foreign model: latent [N,6], NHWC 8x8x3 uint8, range [0, 255]")
    assert report["foreign"] == lines[0] and "frechet_distance" in report["generated"]
    md = (tmp_path / "e" / "eval.md").read_text()
    assert md.startswith("# gan-eval: uint8.onnx\n\nRead as a foreign model: latent [N,6]")
    np.testing.assert_allclose(to_unit_range(np.array([0.0, 127.5, 255.0]), (0.0, 255.0)), [-1, 0, 1])


# --- adopt_onnx ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(FOREIGN))
def test_adopted_copy_serves_with_no_flags_the_same_bytes(models, name, tmp_path):
    import onnx

    from ganforge.export.adopt import adopt_onnx

    copy = tmp_path / "adopted" / "generator.onnx"
    info = adopt_onnx(models[name], copy, **KWARGS.get(name, {}))
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    original = run("--model", models[name], "--n", N, "--seed", SEED, "--out", a, *FLAGS.get(name, []))
    adopted = run("--model", copy, "--n", N, "--seed", SEED, "--out", b)
    assert original.exit_code == 0 and adopted.exit_code == 0, adopted.output
    assert a.read_bytes() == b.read_bytes() and notes(adopted) == []
    # ganforge's contract: z float32 [batch, latent], labels int64 [batch], x float32 NCHW, metadata
    gen = Generator(copy, device="cpu")
    assert gen.foreign_note is None and gen.info == info and gen.fixed_batch == FOREIGN[name].get("batch")
    model = onnx.load(str(copy))
    batch = FOREIGN[name].get("batch") or "batch"
    ins = {i.name: (i.type.tensor_type.elem_type, [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim])
           for i in model.graph.input}
    assert ins["z"] == (onnx.TensorProto.FLOAT, [batch, info.latent_dim])
    assert ins.get("labels", (onnx.TensorProto.INT64, [batch])) == (onnx.TensorProto.INT64, [batch])
    assert [o.name for o in model.graph.output] == ["x"]
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["ganforge.sample_shape"]) == list(info.sample_shape)
    assert json.loads(props["ganforge.value_range"]) == list(RANGES.get(name, (-1.0, 1.0)))
    assert json.loads(props["ganforge.source_latent_shape"]) == list(FOREIGN[name]["latent_shape"])
    assert len(props["ganforge.source_onnx_sha256"]) == 64
    names = [n.name for n in model.graph.node if n.name]  # the new nodes' names, and each tensor made once
    made = [out for n in model.graph.node for out in n.output]
    assert len(names) == len(set(names)) and len(made) == len(set(made))


def test_adopt_renames_source_tensors_that_take_ganforges_names(tmp_path):
    from ganforge.export.adopt import adopt_onnx

    # input 'z', output 'x', no metadata: both names are taken by the source
    src = DATA / "foreign-open-latent.onnx"
    adopt_onnx(src, tmp_path / "g.onnx", latent_dim=5)
    np.testing.assert_array_equal(Generator(tmp_path / "g.onnx", device="cpu").generate(6, seed=1),
                                  Generator(src, device="cpu", latent_dim=5).generate(6, seed=1))


def test_adopt_refusals_write_nothing(models, tmp_path):
    from ganforge.export.adopt import adopt_onnx

    dest = tmp_path / "g.onnx"
    dest.write_bytes(b"an earlier model")
    with pytest.raises(ModelFileError, match="pass --num-classes K"):
        adopt_onnx(models["labels.onnx"], dest)
    with pytest.raises(GanforgeError, match="already has ganforge metadata: serve it as it is"):
        adopt_onnx(DATA / "tiny-image.onnx", dest)
    with pytest.raises(ModelFileError, match="--latent-shape 50,2,1 contradicts it"):
        adopt_onnx(models["dcgan.onnx"], dest, latent_shape=(50, 2, 1))
    assert dest.read_bytes() == b"an earlier model" and sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]


def test_adopt_needs_no_torch(models, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        from ganforge.export.adopt import adopt_onnx
        print(adopt_onnx({str(models['batch1.onnx'])!r}, {str(tmp_path / 'g.onnx')!r}).latent_dim)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "100", proc.stderr
