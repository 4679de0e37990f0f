"""The user's class: ``path/to/file.py:Name`` or ``package.module:Name``, imported and built.

    G = build_module("dcgan.py:Generator", {"ngpu": 1})

Importing the user's class runs the user's file, which is what naming it asks for. Every
mistake is a one-line :class:`UserCodeError` (a ConfigError) that names the option and the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ganforge.errors import ConfigError, first_line

SHOWN = 4  # keys (or classes) an error lists before "..."
ERROR_CHARS = 200  # of what the user's code printed, or was passed, in a one-line error


def shown(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > SHOWN else "")



@dataclass(frozen=True)
class Naming:
    """What one-line errors call the class's options: gan-export's by default (``--module``),
    gan-train's for each of its two modules."""

    option: str = "--module"
    args: str = "--init-args"
    role: str = "generator"


MODULE = Naming()


class UserCodeError(ConfigError):
    """A class that cannot be loaded or built; ``reason`` is the message without the option."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _fail(naming: Naming, spec: str, reason: str) -> UserCodeError:
    where = reason if reason.startswith(repr(spec)) else f"{spec}: {reason}"
    return UserCodeError(f"{naming.option} {where}", reason)



def load_class(spec: str, naming: Naming = MODULE) -> type:
    """The class named by ``spec``: ``path/to/file.py:Name`` (the file is imported by path, its
    folder on ``sys.path`` meanwhile, as when it runs as a script) or ``package.module:Name``."""
    where, sep, name = str(spec).rpartition(":")
    if not sep or not where or not name:
        raise _fail(naming, spec, f"{spec!r} should be PATH.py:Class or package.module:Class "
                          "(e.g. models/dcgan.py:Generator)")
    module = _import_file(spec, Path(where), naming) if _is_path(where) else _import_module(spec, where, naming)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            found = [n for n, v in vars(module).items() if inspect.isclass(v) and issubclass(v, nn.Module)
                     and v.__module__ == module.__name__]
            source = Path(where).name if _is_path(where) else where
            raise _fail(naming, spec, f"{source} has no {name!r}; its nn.Module classes: "
                              f"{shown(found) or 'none'}")
        obj = getattr(obj, part)
    if not inspect.isclass(obj):
        raise _fail(naming, spec, f"{name} is not a class ({type(obj).__name__} object); name the class "
                          f"that builds the {naming.role} (PATH.py:Class)")
    return obj


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _import_file(spec: str, path: Path, naming: Naming):
    path = path.expanduser().resolve()
    if not path.is_file():
        raise _fail(naming, spec, f"{path} is not a file; give the .py file that defines the class")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    name = f"ganforge_user_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}_{digest}"  # unique per file
    stamp = (path.stat().st_mtime_ns, path.stat().st_size)
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__ganforge_stamp__", None) == stamp:
        return loaded  # imported once a process while the file is unchanged: one class, not one per call
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise _fail(naming, spec, f"{path} cannot be imported as Python; give a .py file")
    module = importlib.util.module_from_spec(module_spec)
    module.__ganforge_stamp__ = stamp
    sys.modules[name] = module  # dataclasses and pickling look the module up while it runs
    said = io.StringIO()  # what the file prints as it imports (argparse's usage): told once, in one line
    try:
        with on_path(path.parent), contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise _fail(naming, spec, f"syntax error in {path.name} line {exc.lineno}: {exc.msg}; "
                          "fix the file") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (SystemExit: a script that parses its arguments at import)
        sys.modules.pop(name, None)
        last = said.getvalue().strip().splitlines()[-1:]
        printed = f" after printing {last[0][:ERROR_CHARS]!r}" if last else ""
        raise _fail(naming, spec, f"importing {path.name} raised {first_line(exc, typed=True)}{printed}; the file must "
                          "import without running (move training code under `if __name__ == '__main__':`)") from None
    sys.stderr.write(said.getvalue())  # a file that prints as it imports keeps its say
    return module


@contextlib.contextmanager
def on_path(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` meanwhile: the file's own imports of its neighbours work."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def _import_module(spec: str, dotted: str, naming: Naming):
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name and (dotted == exc.name or dotted.startswith(exc.name + ".")):
            raise _fail(naming, spec, f"no module named {exc.name!r}; put its folder on PYTHONPATH, or give "
                              "the file (path/to/file.py:Class)") from None
        raise _fail(naming, spec, f"importing {dotted} raised {first_line(exc, typed=True)}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (the user's module, whatever it raises)
        raise _fail(naming, spec, f"importing {dotted} raised {first_line(exc, typed=True)}; the module must import "
                          "without running") from None


def build_module(spec: str, init_args: dict | None = None, naming: Naming = MODULE) -> nn.Module:
    """``Class(**init_args)`` of :func:`load_class` ``(spec)``, which must be a ``torch.nn.Module``."""
    cls = load_class(spec, naming)
    init_args = dict(init_args or {})
    if not issubclass(cls, nn.Module):
        raise _fail(naming, spec, f"{cls.__name__} is not a torch.nn.Module; name the {naming.role}'s class")
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a builtin or C-implemented __init__: let the call tell
        signature = None
    if signature is not None:
        try:
            signature.bind(**init_args)
        except TypeError as exc:
            fix = (f"pass its arguments with {naming.args} '{_example(signature)}'" if signature.parameters
                   else f"drop {naming.args}")
            raise _fail(naming, spec, f"{cls.__name__}{_params(signature)} {exc}; {fix}") from None
    try:
        module = cls(**init_args)
    except TypeError as exc:
        raise _fail(naming, spec, f"{cls.__name__}({_kwargs(init_args)}) failed: {first_line(exc, typed=True)}; "
                          f"check {naming.args} against {cls.__name__}{_params(signature)}") from None
    except Exception as exc:  # noqa: BLE001  (the user's constructor, whatever it raises)
        raise _fail(naming, spec, f"{cls.__name__}({_kwargs(init_args)}) failed: {first_line(exc, typed=True)}; "
                          f"check {naming.args}") from None
    if not isinstance(module, nn.Module):
        raise _fail(naming, spec, f"{cls.__name__}(...) returned a {type(module).__name__}, not a "
                          "torch.nn.Module")
    return module


def _params(signature: inspect.Signature | None) -> str:
    """``(ngpu, nz=100)``: the parameters, without annotations."""
    if signature is None:
        return "(...)"
    shown = []
    for p in signature.parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        shown.append(prefix + p.name + ("" if p.default is p.empty else f"={p.default!r}"))
    return f"({', '.join(shown)})"


def _example(signature: inspect.Signature) -> str:
    """A JSON object of the parameters without a default, to fill in (every one when all have one)."""
    params = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p for p in params if p.default is p.empty] or params
    return "{" + ", ".join(f'"{p.name}": ' + ("..." if p.default is p.empty else json.dumps(p.default, default=str))
                           for p in required) + "}"


def _kwargs(init_args: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in init_args.items())[:ERROR_CHARS]

