"""ganforge.serve stays lean and plain: torch never imported (a fresh interpreter serves a request
through the app), no import circles (function-level imports count), no file over 400 lines,
no function over 60, and the page ships in the package."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import ganforge.serve

PACKAGE = Path(ganforge.serve.__file__).parent
DATA = Path(__file__).resolve().parents[1] / "data"


def modules() -> dict[str, ast.Module]:
    found = {f"ganforge.serve.{p.stem}": ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}
    assert len(found) > 5
    return found


def test_serving_a_request_never_imports_torch():
    code = textwrap.dedent(f"""
        import asyncio, json, sys
        sys.path[:0] = [{str(Path(__file__).resolve().parents[2] / "src")!r}, {str(Path(__file__).resolve().parents[2])!r}]
        from ganforge.serve.app import make_app
        from ganforge.serve.config import ServeConfig
        from ganforge.serve.handlers import State
        from ganforge.serve.model import ServedModel
        from tests.serve.asgi import call

        state = State(ServedModel(ServeConfig(model={str(DATA / 'tiny-cond.onnx')!r})))
        state.served.warm_up(); state.batcher.start(); state.warm = True
        app = make_app(state)
        body = json.dumps({{"inputs": [{{"name": "z", "shape": [1, 8], "datatype": "FP32", "data": [0.0] * 8}},
                                      {{"name": "labels", "shape": [1], "datatype": "INT64", "data": [1]}}]}}).encode()
        status, _, _ = asyncio.run(call(app, "POST", "/v2/models/generator/infer", body))
        png = asyncio.run(call(app, "GET", "/v1/generate.png?n=4"))
        state.batcher.stop(5)
        assert status == 200 and png[0] == 200, (status, png[:2])
        assert 'onnxruntime' in sys.modules
        loaded = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]
        assert not loaded, loaded
        print('ok')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]


def _imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):  # every import, at any level
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_import_circles():
    found = modules()
    graph = {name: {m for m in _imports(tree) if m in found and m != name} for name, tree in found.items()}

    def visit(name, path):
        assert name not in path, f"import circle: {' -> '.join([*path, name])}"
        for dep in graph[name]:
            visit(dep, [*path, name])

    for name in graph:
        visit(name, [])


def test_no_file_over_400_lines_nor_function_over_60():
    for path in PACKAGE.glob("*.py"):
        lines = path.read_text().splitlines()
        assert len(lines) <= 400, f"{path.name}: {len(lines)} lines"
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                assert size <= 60, f"{path.name}:{node.lineno} {node.name} is {size} lines"


def test_the_page_ships_in_the_package():
    from ganforge.serve.handlers import page

    html = page().decode()
    assert "<script>" in html and "v1/generate.png" in html and "http" not in html.split("<script>")[1].split("//")[0]
    assert "cdn" not in html.lower() and "src=\"http" not in html
    setup = (Path(__file__).resolve().parents[2] / "setup.cfg").read_text()
    assert "ganforge.serve = static/*.html" in setup and "gan-serve = ganforge.serve.cli:main" in setup
