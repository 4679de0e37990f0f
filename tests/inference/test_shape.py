"""The shape issue 25 gave ``ganforge.inference``: no file over 400 lines, no function (or method)
over 60 (its def line to the last line of its body, docstring included), and a face of an
``__init__`` under 40 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import ganforge.inference

PACKAGE = Path(ganforge.inference.__file__).parent
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_FACE_LINES = 40


def files() -> list[Path]:
    found = sorted(PACKAGE.glob("*.py"))
    assert found
    return found


def test_no_file_is_over_400_lines():
    long = {p.name: n for p in files() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, f"files over {MAX_FILE_LINES} lines: {long}"


def test_no_function_is_over_60_lines():
    long = {}
    for path in files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.name}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_package_init_is_a_face():
    init = PACKAGE / "__init__.py"
    assert len(init.read_text().splitlines()) < MAX_FACE_LINES
    tree = ast.parse(init.read_text())
    assert not [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
