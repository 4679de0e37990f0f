"""gan-export --onnx: a foreign ONNX generator becomes a ganforge one, served with no flags."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from ganforge.export.cli import main
from tests.data.foreign_models import write_all


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("foreign"))


def _infer(*args, cwd):
    return subprocess.run([sys.executable, "-m", "ganforge.inference.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("name, flags", [("dcgan.onnx", []), ("batch1.onnx", []), ("nhwc.onnx", []),
                                         ("labels.onnx", ["--num-classes", "4"]),
                                         ("unit.onnx", ["--value-range", "0,1"])])
def test_an_adopted_copy_serves_with_no_flags_and_the_same_samples(foreign, name, flags, tmp_path):
    result = CliRunner().invoke(main, ["--onnx", str(foreign[name]), "--out", str(tmp_path / "a"), *flags])
    assert result.exit_code == 0, result.output
    assert "generator.onnx" in result.output and "the same samples as" in result.output
    served = _infer("--model", str(tmp_path / "a" / "generator.onnx"), "--n", "5", "--out", "a.npy", cwd=tmp_path)
    assert served.returncode == 0 and "foreign model" not in served.stderr, served.stderr
    original = _infer("--model", str(foreign[name]), *flags, "--n", "5", "--out", "o.npy", cwd=tmp_path)
    assert original.returncode == 0, original.stderr
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "o.npy"))


@pytest.mark.parametrize("extra, fragment", [
    (["--module", "g.py:G"], "drop --module"),
    (["--format", "all"], "--format onnx and --precision fp32 only"),
    ([], "--onnx needs --out DIR"),
])
def test_adopt_refusals_are_one_line(foreign, extra, fragment, tmp_path):
    args = ["--onnx", str(foreign["dcgan.onnx"]), *extra]
    if fragment != "--onnx needs --out DIR":
        args += ["--out", str(tmp_path / "a")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and fragment in result.output and "Traceback" not in result.output
    assert not (tmp_path / "a").exists()


def test_labels_without_num_classes_leave_no_folder(foreign, tmp_path):
    result = CliRunner().invoke(main, ["--onnx", str(foreign["labels.onnx"]), "--out", str(tmp_path / "a")])
    assert result.exit_code == 1 and "--num-classes" in result.output
    assert not (tmp_path / "a").exists()


def test_layout_belongs_to_onnx(tmp_path):
    result = CliRunner().invoke(main, ["--layout", "nhwc", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "pass it with --onnx" in result.output
