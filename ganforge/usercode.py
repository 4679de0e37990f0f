"""A user's own PyTorch generator: its class, its weights, and an adapter that makes it a
ganforge :class:`~ganforge.training.variants.base.GeneratorModel`.

    G = build_module("dcgan.py:Generator", {"ngpu": 1})
    state, note = load_weights("netG_epoch_24.pth")  # "state_dict under 'netG', 'module.' prefix removed"
    load_into(G, state, "netG_epoch_24.pth")
    gen = UserGenerator(G, latent_shape=(100, 1, 1))  # z [B, 100] -> x [B, 3, 64, 64]

Weights are read with ``torch.load(weights_only=True)``: reading them never runs code (a
whole pickled module is refused unless ``trust_pickle``). Importing the user's class does
run the user's file, which is what naming it asks for. Every mistake is a one-line
:class:`~ganforge.errors.ConfigError` that names the fix.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import io
import json
import math
import re
import sys
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge.errors import ConfigError, quiet_log
from ganforge.limits import MAX_CLASSES, MAX_LATENT_DIM, MAX_SAMPLE_VALUES, check_file_size

# Where common training scripts keep the generator's state_dict inside a checkpoint dict, in the
# order tried: the moving average first (rosinality's stylegan2 samples from g_ema), then the names
# of GAN scripts (netG: pytorch/examples-style; G, gen, generator...), then one-model names last.
STATE_KEYS = ("g_ema", "generator_ema", "generator", "netG", "G", "gen", "g", "generator_state_dict",
              "netG_state_dict", "G_state_dict", "gen_state_dict", "g_state_dict", "model_state_dict",
              "state_dict", "model")
# Prefixes runtime wrappers put on every key: DataParallel/DDP, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Harmless types a checkpoint often carries beside its weights (a script's parsed arguments), which
# weights_only loading may build: plain data, no code.
SAFE_GLOBALS = [argparse.Namespace]
# a saved program's kinds: the gan-export option that takes each, and what its weights note says
PROGRAM_OPTIONS = {"torchscript": "--torchscript", "exported": "--exported"}
PROGRAM_NOTES = {"torchscript": "TorchScript, converted with torch.export", "exported": "torch.export program"}
PROBE_BATCH = 4  # samples of the probe: the batch-dependence check compares them alone and together
SHOWN = 4  # keys an error about weights lists before "..."
ERROR_CHARS = 200  # of a foreign exception's message in a one-line error

__all__ = ["UserGenerator", "build_module", "check_batch_independent", "load_class", "load_into", "load_program",
           "load_weights", "program_kind", "square_image"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:ERROR_CHARS]}" if text else type(exc).__name__


def _shown(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > SHOWN else "")


# ---------------------------------------------------------------- the class


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
                              f"{_shown(found) or 'none'}")
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
        with _on_path(path.parent), contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise _fail(naming, spec, f"syntax error in {path.name} line {exc.lineno}: {exc.msg}; "
                          "fix the file") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (SystemExit: a script that parses its arguments at import)
        sys.modules.pop(name, None)
        last = said.getvalue().strip().splitlines()[-1:]
        printed = f" after printing {last[0][:ERROR_CHARS]!r}" if last else ""
        raise _fail(naming, spec, f"importing {path.name} raised {_first_line(exc)}{printed}; the file must "
                          "import without running (move training code under `if __name__ == '__main__':`)") from None
    sys.stderr.write(said.getvalue())  # a file that prints as it imports keeps its say
    return module


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
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
        raise _fail(naming, spec, f"importing {dotted} raised {_first_line(exc)}") from None
    except (Exception, SystemExit) as exc:  # noqa: BLE001  (the user's module, whatever it raises)
        raise _fail(naming, spec, f"importing {dotted} raised {_first_line(exc)}; the module must import "
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
        raise _fail(naming, spec, f"{cls.__name__}({_kwargs(init_args)}) failed: {_first_line(exc)}; "
                          f"check {naming.args} against {cls.__name__}{_params(signature)}") from None
    except Exception as exc:  # noqa: BLE001  (the user's constructor, whatever it raises)
        raise _fail(naming, spec, f"{cls.__name__}({_kwargs(init_args)}) failed: {_first_line(exc)}; "
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


# ---------------------------------------------------------------- the weights


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise ConfigError(f"{what} {path} " + ("is a folder; give the file" if path.is_dir() else "does not exist"))
    # at most the largest file a ganforge run could write
    check_file_size(path, ConfigError, "more than the {limit} of the largest generator ganforge exports", what)


def program_kind(path: str | Path) -> str | None:
    """``"torchscript"`` or ``"exported"`` (torch.export .pt2) when ``path`` is such an archive, from
    the names inside it (nothing is loaded); None otherwise, a torch.save file included."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    if any("/code/__torch__" in n for n in names):
        return "torchscript"
    if any(n.endswith("/archive_format") or "/models/" in n for n in names):
        return "exported"
    return None


def load_weights(path: str | Path, *, trust_pickle: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """The generator's state_dict in ``path`` and one line on how it was found.

    ``path`` may hold the state_dict itself or a checkpoint dict with it under a known key
    (:data:`STATE_KEYS`); DataParallel's ``module.`` and torch.compile's ``_orig_mod.`` prefixes
    are removed. A whole pickled module is refused (loading it runs code) unless
    ``trust_pickle``, when it is unpickled and its state_dict taken."""
    path = Path(path)
    _check_file(path, "weights file")
    kind = program_kind(path)
    if kind is not None:
        raise ConfigError(f"{path} is a {'TorchScript' if kind == 'torchscript' else 'torch.export'} file, not a "
                          f"state_dict: pass it as {PROGRAM_OPTIONS[kind]} {path} (it needs no --module)")
    notes = []
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises UnpicklingError, RuntimeError, KeyError, ...)
        if "Weights only load failed" not in str(exc):
            raise ConfigError(f"{path} is not a readable weights file ({_first_line(exc)}); is the file "
                              "complete?") from None
        named = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the class or function the pickle would call
        if not trust_pickle:
            raise ConfigError(f"{path} holds a pickled Python object ({named[1] if named else 'not plain data'}), "
                              "and loading it would run "
                              "code: save the weights alone, torch.save(model.state_dict(), 'G.pth'), or pass "
                              "--trust-pickle if you trust the file") from None
        obj = _unpickle(path)
        notes.append("ran the pickle (--trust-pickle)")
    state, where = _find_state_dict(obj, path)
    notes.append(where)
    state, stripped = _strip_wrappers(state)
    notes += [f"'{p}' prefix removed" for p in stripped]
    return state, ", ".join(notes)


def _unpickle(path: Path):
    """``torch.load(weights_only=False)``, with the working folder and the file's own on
    ``sys.path`` meanwhile: the pickle names the module of its class as the saving script saw it."""
    try:
        with _on_path(path.resolve().parent), _on_path(Path.cwd()):
            return torch.load(path, map_location="cpu", weights_only=False)
    except (AttributeError, ImportError) as exc:  # the class it was saved from is not importable here
        fix = ("the script that saved it defined the class in itself (__main__): save model.state_dict() there "
               "instead" if "__main__" in str(exc) else "run from the folder of the script that saved it (or add "
               "it to PYTHONPATH), or save model.state_dict() instead")
        raise ConfigError(f"unpickling {path} needs the class it was saved from ({_first_line(exc)}): {fix}") from None
    except Exception as exc:  # noqa: BLE001  (whatever the pickle's code raises)
        raise ConfigError(f"{path} could not be unpickled ({_first_line(exc)})") from None


def _as_state_dict(value: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(value, nn.Module):
        return value.state_dict()
    if isinstance(value, dict) and value and all(isinstance(k, str) and torch.is_tensor(v) for k, v in value.items()):
        return dict(value)
    return None


def _find_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """(state_dict, where it was): ``obj`` itself, or its value under the first of STATE_KEYS."""
    state = _as_state_dict(obj)
    if state is not None:
        return state, f"a whole {type(obj).__name__} module" if isinstance(obj, nn.Module) else "a state_dict"
    if not isinstance(obj, dict):
        raise ConfigError(f"{path} holds a {type(obj).__name__}, not a state_dict: save it with "
                          "torch.save(model.state_dict(), 'G.pth')")
    for key in STATE_KEYS:
        state = _as_state_dict(obj.get(key))
        if state is not None:
            others = [k for k in STATE_KEYS if k != key and k in obj and _as_state_dict(obj[k]) is not None]
            return state, f"state_dict under {key!r}" + (f" (also there: {', '.join(others)})" if others else "")
    keys = [str(k) for k in obj][:8]
    raise ConfigError(f"{path} holds a dict ({', '.join(keys)}) without a generator state_dict under any of "
                      f"{', '.join(STATE_KEYS)}: save it with torch.save(G.state_dict(), 'G.pth')")


def _strip_wrappers(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``state`` without the wrapper prefixes that every key carries, and those removed."""
    stripped = []
    while True:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)), None)
        if prefix is None:
            return state, stripped
        state = {k[len(prefix):]: v for k, v in state.items()}
        stripped.append(prefix)


def load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> str | None:
    """Load ``state`` into ``module`` strictly. When the keys carry one more prefix than the
    module's (a Lightning module's ``generator.``, a whole GAN's ``netG.``), the entries under it
    are taken, and the returned note says so. A misfit names the first keys and the fix."""
    own = module.state_dict()
    picked, note = _under_prefix(state, own)
    if picked is not None:
        state = picked
    # BatchNorm's counter is absent from files of old PyTorch versions; eval mode never reads it
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    misshapen = [f"{k} {list(state[k].shape)} in the file, {list(own[k].shape)} in the module"
                 for k in own if k in state and state[k].shape != own[k].shape]
    name = type(module).__name__
    if missing or unexpected:
        parts = ([f"{len(missing)} keys missing ({_shown(missing)})"] if missing else []) + (
            [f"{len(unexpected)} unexpected ({_shown(unexpected)})"] if unexpected else [])
        raise ConfigError(f"the weights in {source} do not fit {name}: {'; '.join(parts)}; check --init-args "
                          "(the sizes it was trained with) and that --module names the class they were saved from")
    if misshapen:
        more = "; ..." if len(misshapen) > 2 else ""
        raise ConfigError(f"the weights in {source} do not fit {name}: {len(misshapen)} tensors differ in shape "
                          f"({'; '.join(misshapen[:2])}{more}); check --init-args (the sizes it was trained with)")
    try:
        module.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"the weights in {source} do not fit {name}: {_first_line(exc)}") from None
    return note


def _under_prefix(state: dict, own: dict) -> tuple[dict | None, str | None]:
    """The entries of ``state`` under the one prefix that holds every key of ``own``, if the keys
    do not match as they are."""
    if not own or all(k in state for k in own):
        return None, None
    first = next(iter(own))
    prefixes = {k[: -len(first)] for k in state if k.endswith("." + first)}
    for prefix in sorted(prefixes):
        if all(prefix + k in state for k in own if not k.endswith("num_batches_tracked")):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, f"weights under '{prefix}'"
    return None, None


# ---------------------------------------------------------------- a saved program (TorchScript, .pt2)


def load_program(path: str | Path, expect: str | None = None) -> tuple[nn.Module, str]:
    """The module saved in a TorchScript (``.ts``) or torch.export (``.pt2``) file, and a note.
    ``expect`` ("torchscript" or "exported"): what the caller was told the file is."""
    path = Path(path)
    _check_file(path, "program file")
    kind = program_kind(path)
    if kind is None:
        raise ConfigError(f"{path} is neither a TorchScript nor a torch.export (.pt2) file; a state_dict goes in "
                          "--weights, with --module naming its class")
    if expect is not None and kind != expect:
        raise ConfigError(f"{path} is a {'TorchScript' if kind == 'torchscript' else 'torch.export'} file: pass it "
                          f"as {PROGRAM_OPTIONS[kind]} {path}")
    try:
        if kind == "torchscript":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=FutureWarning)
                return torch.jit.load(str(path), map_location="cpu"), PROGRAM_NOTES[kind]
        return torch.export.load(str(path)).module(), PROGRAM_NOTES[kind]
    except Exception as exc:  # noqa: BLE001  (torch's loaders raise RuntimeError and their own types)
        raise ConfigError(f"{path} could not be loaded ({_first_line(exc)}); is the file complete?") from None


def _from_torchscript(module: torch.jit.ScriptModule, inputs: tuple) -> nn.Module:
    """A TorchScript module as a torch.export graph module (what ONNX and .pt2 export take): the
    ScriptModule itself cannot be traced by torch.export."""
    from torch._export.converter import TS2EPConverter

    with quiet_log("torch._export"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TS2EPConverter(module, inputs).convert().module()


# ---------------------------------------------------------------- the adapter


class UserGenerator(nn.Module):
    """A user's generator as a ganforge GeneratorModel.

    ``forward(z)`` takes noise ``[B, latent_dim]`` and reshapes it to the user's
    ``latent_shape`` (``[B, 100, 1, 1]`` for a DCGAN) inside the module, so an exported graph
    takes ``z [batch, latent_dim]``; with ``num_classes`` it calls the user's ``forward(z, labels)``.
    ``sample_shape`` and ``kind`` come from one probe batch: an output ``[B, C, H, W]`` (C 1 or 3)
    is an image, ``[B, L]`` a series, or, with ``kind="image"``, a square image
    (``[B, 784]`` -> ``[1, 28, 28]``).
    """

    def __init__(self, net: nn.Module, latent_shape: tuple[int, ...], *, num_classes: int | None = None,
                 kind: str | None = None):
        super().__init__()
        latent_shape = tuple(int(d) for d in latent_shape)
        if not latent_shape or any(d < 1 for d in latent_shape) or math.prod(latent_shape) > MAX_LATENT_DIM:
            raise ConfigError(f"--latent-shape {list(latent_shape)}: give positive sizes of at most "
                              f"{MAX_LATENT_DIM} values in all, e.g. 100 or 100,1,1")
        if num_classes is not None and not 1 <= num_classes <= MAX_CLASSES:
            raise ConfigError(f"--num-classes {num_classes}: expected 1 to {MAX_CLASSES:,}")
        if kind not in (None, "image", "series"):
            raise ConfigError(f"kind {kind!r}: use image or series")
        self.net = net
        self.latent_shape = latent_shape
        self.latent_dim = math.prod(latent_shape)
        self.num_classes = num_classes
        self.class_embedding = None  # the user's module takes labels its own way
        self.fixed = isinstance(net, (torch.jit.ScriptModule, torch.fx.GraphModule))  # a saved program
        self.image_view: tuple[int, ...] | None = None  # (C, H, W) a flat output is viewed as
        if isinstance(net, torch.jit.ScriptModule):
            self.net = self._convert(net)
        self.eval()
        shape = tuple(self._probe().shape[1:])
        self.kind, self.sample_shape, self.image_view = _layout(shape, kind)

    def _convert(self, script: torch.jit.ScriptModule) -> nn.Module:
        inputs = self._user_inputs(*self.example(2))
        try:
            return _from_torchscript(script, inputs)
        except Exception as exc:  # noqa: BLE001  (the converter raises many types)
            raise ConfigError(f"the TorchScript module could not be converted for export at latent shape "
                              f"{list(self.latent_shape)} ({_first_line(exc)}); check --latent-shape, or export "
                              "from the Python class (--module and --weights)") from None

    def example(self, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """``(z,)``, or ``(z, labels)`` for a conditional generator: seeded, ``batch`` samples."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(batch, self.latent_dim, generator=g)
        return (z,) if self.num_classes is None else (z, torch.randint(self.num_classes, (batch,), generator=g))

    def _user_inputs(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        if len(self.latent_shape) > 1:
            z = z.reshape(z.shape[0], *self.latent_shape)  # B x latent_dim -> B x latent_shape
        return (z,) if self.num_classes is None else (z, labels)

    @torch.no_grad()
    def _probe(self) -> torch.Tensor:
        inputs = self.example(PROBE_BATCH)
        try:
            x = self.net(*self._user_inputs(*inputs))
        except Exception as exc:  # noqa: BLE001  (the user's forward, whatever it raises)
            takes = "forward(z, labels)" if self.num_classes is not None else "forward(z)"
            raise ConfigError(f"the generator rejects noise of shape {[PROBE_BATCH, *self.latent_shape]} through "
                              f"{takes} ({_first_line(exc)}): {self._probe_fix(exc)}") from None
        if not torch.is_tensor(x) or not x.is_floating_point():
            got = type(x).__name__ if not torch.is_tensor(x) else f"a {x.dtype} tensor"
            raise ConfigError(f"the generator's forward returned {got}; ganforge exports a generator that returns "
                              "one float tensor (the samples)")
        if x.dim() == 0 or x.shape[0] != PROBE_BATCH:
            raise ConfigError(f"the generator returned shape {list(x.shape)} for a batch of {PROBE_BATCH}; its "
                              "first dimension must be the batch")
        return x

    def _probe_fix(self, exc: Exception) -> str:
        text = str(exc)
        if "Guard failed" in text:  # torch.export's check of the shapes a program was exported for
            return "re-export the program with a dynamic batch dimension (torch.export.Dim)"
        if isinstance(exc, TypeError) and "positional argument" in text:
            return ("its forward takes z alone: drop --num-classes" if self.num_classes is not None
                    else "its forward takes more than z: a conditional generator needs --num-classes K")
        return "pass the noise shape its forward takes (--latent-shape 100, or 100,1,1 for a DCGAN)"

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.net(*self._user_inputs(z, labels))
        if self.image_view is not None:
            x = x.reshape(x.shape[0], *self.image_view)  # B x L -> B x C x H x W
        return x

    def train(self, mode: bool = True) -> UserGenerator:
        """A saved program's mode was fixed when it was saved (its modules refuse ``train()``):
        its flags are set to eval, and :func:`check_batch_independent` tells whether it is."""
        if not self.fixed:
            return super().train(mode)
        self.training = mode
        for m in self.net.modules():
            m.training = False
        return self


def _layout(shape: tuple[int, ...], kind: str | None) -> tuple[str, tuple[int, ...], tuple[int, ...] | None]:
    """(kind, sample_shape, image view of a flat output) of an output whose sample has ``shape``."""
    values = math.prod(shape)
    if values > MAX_SAMPLE_VALUES:
        raise ConfigError(f"the generator's samples of shape {list(shape)} hold {values:,} values, more than the "
                          f"{MAX_SAMPLE_VALUES:,} ganforge serves")
    if len(shape) == 3:
        if kind == "series":
            raise ConfigError(f"--kind series, but the generator returns images [B, {', '.join(map(str, shape))}]; "
                              "drop --kind")
        if shape[0] not in (1, 3):
            raise ConfigError(f"the generator returns [B, {', '.join(map(str, shape))}]: images need 1 or 3 channels "
                              "first ([B, C, H, W]); return channels-first images from forward")
        return "image", shape, None
    if len(shape) == 1:
        if kind != "image":
            return "series", shape, None
        view = square_image(shape[0])
        if view is None:
            raise ConfigError(f"--kind image, but the generator returns [B, {shape[0]}], which is not a square image "
                              "of 1 or 3 channels; return [B, C, H, W] from forward")
        return "image", view, view
    raise ConfigError(f"the generator returns [B, {', '.join(map(str, shape))}]: ganforge exports images "
                      "[B, C, H, W] (C 1 or 3) or series [B, L]; reshape the output in forward")


def square_image(length: int) -> tuple[int, int, int] | None:
    """(C, H, W) with H == W and C 1 (else 3) holding ``length`` values, if any."""
    for channels in (1, 3):
        side = math.isqrt(length // channels)
        if length % channels == 0 and side * side * channels == length:
            return channels, side, side
    return None


@torch.no_grad()
def check_batch_independent(gen: UserGenerator, atol: float) -> float:
    """The max abs difference between samples made alone and inside one batch; a ConfigError when
    it exceeds ``atol``: a generator whose sample depends on the rest of its batch (BatchNorm in
    training mode, batch statistics) cannot be served in batches of any size."""
    inputs = gen.example(PROBE_BATCH, seed=1)
    together = gen(*inputs)
    alone = torch.cat([gen(*(t[i:i + 1] for t in inputs)) for i in range(PROBE_BATCH)])
    diff = float((together - alone).abs().max())
    if not diff <= atol:  # NaN too
        fix = ("call model.eval() before saving the TorchScript or .pt2 file, or export from the class "
               "(--module and --weights)" if gen.fixed else
               "make forward use running statistics in eval mode (nn.BatchNorm with track_running_stats, not "
               "F.batch_norm(training=True) or x.mean(0)); model.eval() must reach every module")
        raise ConfigError(f"the generator's output depends on the rest of the batch (BatchNorm in training mode, or "
                          f"batch statistics): a sample differs by {diff:.3g} alone and in a batch of {PROBE_BATCH}; "
                          f"{fix}")
    return diff
