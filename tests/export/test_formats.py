"""The format contract, the torch-free format names, and one ONNX export per call."""

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

from ganforge.export import export, formats, onnx_format
from ganforge.export.pipeline import FORMATS, IMPLEMENTED
from ganforge.export.spec import ATOL


def test_every_registered_format_honours_the_protocol():
    assert set(IMPLEMENTED) == set(formats.NAMES) and list(FORMATS) == list(formats.NAMES)
    assert set(ATOL) == set(formats.PRECISIONS)  # every precision has its tolerance
    for name, fmt in FORMATS.items():
        assert isinstance(fmt, formats.ExportFormat), name
        assert fmt.name == name and fmt.precisions == formats.precisions_of(name)
        assert "fp32" in fmt.precisions and set(fmt.precisions) <= set(formats.PRECISIONS)
        assert isinstance(fmt.is_dir, bool)
        for method in ("filename", "convert", "validate"):
            want = list(inspect.signature(getattr(formats.ExportFormat, method)).parameters)[1:]  # less self
            assert list(inspect.signature(getattr(fmt, method)).parameters) == want, (name, method)
    assert FORMATS["triton"].is_dir and not FORMATS["onnx"].is_dir
    for precision in formats.PRECISIONS:  # two artifacts never share a path
        paths = [f.filename(precision) for f in FORMATS.values() if precision in f.precisions]
        assert len(set(paths)) == len(paths) and not any(Path(p).is_absolute() for p in paths)


def test_gan_export_help_never_imports_torch():
    code = textwrap.dedent("""
        import runpy, sys
        sys.argv = ['gan-export', '--help']
        try:
            runpy.run_module('ganforge.export.cli', run_name='__main__')
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime')]
        assert not heavy, heavy
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"[{'|'.join(formats.NAMES)}|all]" in proc.stdout and "[fp32|fp16|int8]" in proc.stdout


def test_onnx_and_triton_share_one_export_and_its_checks(sine_run, tmp_path, monkeypatch):
    calls = []
    real = onnx_format.export_model
    monkeypatch.setattr(onnx_format, "export_model", lambda spec: calls.append(spec) or real(spec))
    both = export(sine_run.run_dir, formats=["onnx", "triton"], out_dir=tmp_path / "both")
    assert len(calls) == 1
    model_file = both.artifacts["triton"] / "1" / "model.onnx"
    assert model_file.read_bytes() == both.artifacts["onnx"].read_bytes()
    onnx_checks = both.checks["onnx"]
    reused = [c for c in both.checks["triton"] if "reused: same bytes as generator.onnx" in c.detail]
    assert [(c.name, c.batch_size, c.max_abs_diff) for c in reused] == \
        [(c.name, c.batch_size, c.max_abs_diff) for c in onnx_checks if c.name != "eval_mode"]
    assert not any("reused" in c.detail for c in onnx_checks)
    # alone, triton's model.onnx is checked in full
    alone = export(sine_run.run_dir, formats="triton", out_dir=tmp_path / "alone")
    assert len(calls) == 2
    names = [c.name for c in alone.checks["triton"]]
    assert {"onnx.checker", "symbolic_batch", "io_types", "metadata", "parity", "triton_config"} <= set(names)
    assert names.count("parity") == 4 and not any("reused" in c.detail for c in alone.checks["triton"])
