"""``ganforge.inference`` is a leaf: numpy + onnxruntime + pillow + click, never torch.

Each check runs in a fresh interpreter, so what this test process imported does not count.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"

TORCH_LOADED = "[m for m in sys.modules if m == 'torch' or m.startswith('torch.')]"


def fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_library_generation_never_imports_torch(tmp_path):
    proc = fresh(f"""
        import sys
        import ganforge.inference as gi
        assert 'onnxruntime' not in sys.modules, 'onnxruntime is imported before a model is opened'
        gen = gi.Generator({str(DATA / 'tiny-image.onnx')!r})
        gi.save_samples(gen.generate(8), {str(tmp_path / 'g.png')!r}, kind=gen.info.kind)
        gi.generate({str(DATA / 'tiny-series.onnx')!r}, 4, {str(tmp_path / 's.npy')!r})
        gi.generate({str(DATA / 'no-metadata.onnx')!r}, 3, {str(tmp_path / 'each')!r} + '/')
        gi.generate({str(DATA / 'tiny-cond.onnx')!r}, None, {str(tmp_path / 'c.png')!r}, per_class=2)
        gi.generate_walk({str(DATA / 'tiny-cond.onnx')!r}, 1, 2, {str(tmp_path / 'w.gif')!r}, labels=[0, 2])
        assert 'onnxruntime' in sys.modules  # the check below is not vacuous: the work really ran
        loaded = {TORCH_LOADED}
        assert not loaded, loaded
        print('ok')
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert (tmp_path / "g.png").is_file() and (tmp_path / "s.npy").is_file() and len(list((tmp_path / "each" / "shard-000000").iterdir())) == 3
    assert (tmp_path / "c.png").is_file() and (tmp_path / "w.gif").is_file()


def test_cli_entry_never_imports_torch(tmp_path):
    out = tmp_path / "grid.png"
    proc = fresh(f"""
        import runpy, sys
        sys.argv = ['gan-infer', '--model', {str(DATA / 'tiny-series.onnx')!r}, '--n', '16', '--out', {str(out)!r}]
        try:
            runpy.run_module('ganforge.inference.cli', run_name='__main__')
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        loaded = {TORCH_LOADED}
        assert not loaded, loaded
        print('ok')
    """)
    assert proc.returncode == 0, proc.stderr
    wrote, ok = proc.stdout.strip().splitlines()
    assert wrote.startswith(f"wrote {out} (16 samples") and ok == "ok" and out.is_file()
