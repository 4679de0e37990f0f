"""The user's weights: a state_dict found in whatever a training script saved, loaded into the
class strictly; or a saved program (TorchScript, torch.export ``.pt2``).

    state, note = load_weights("netG_epoch_24.pth")  # "state_dict under 'netG', 'module.' prefix removed"
    load_into(G, state, "netG_epoch_24.pth")

Weights are read with ``torch.load(weights_only=True)``: reading them never runs code (a
whole pickled module is refused unless ``trust_pickle``, when :func:`_unpickle` runs it).
"""

from __future__ import annotations

import argparse
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganforge import zipcheck
from ganforge.errors import ConfigError, first_line, quiet_log
from ganforge.fsutil import not_a_file
from ganforge.limits import check_file_size
from ganforge.statedict import misfit
from ganforge.usercode.classes import on_path, shown

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


def _check_file(path: Path, what: str) -> None:
    problem = not_a_file(path)
    if problem is not None:
        raise ConfigError(f"{what} {path} {problem}" + ("" if problem == "does not exist" else "; give the file"))
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


AGAIN = "copy it again from where it was saved"
# How a user's torch files are proven before torch reads them (zipcheck): no bound on the longest list (a
# training script may keep every iteration's loss), only on what the pickle builds in all.
WEIGHTS = zipcheck.Reader(
    "weights file", AGAIN, error=ConfigError,
    legacy="load and save it again with this PyTorch, which writes the zip format: "
           "torch.save(torch.load('OLD.pth', weights_only=True), 'G.pth')",
    foreign="{path} is not torch weights ({reason}): pass the file torch.save(G.state_dict(), 'G.pth') wrote")
PROGRAM = zipcheck.Reader("program file", AGAIN, error=ConfigError, legacy="save it again with torch.jit.save")


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
    with zipcheck.opened(path, WEIGHTS) as f:  # its CRCs and sizes proven first: torch checks neither
        try:
            with torch.serialization.safe_globals(SAFE_GLOBALS):
                obj = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (torch raises UnpicklingError, RuntimeError, KeyError, ...)
            if "Weights only load failed" not in str(exc):
                raise ConfigError(f"{path} is not a readable weights file ({first_line(exc, typed=True)}); is the "
                                  "file complete?") from None
            named = re.search(r"GLOBAL ([\w.]+)", str(exc))  # the class or function the pickle would call
            if named is None:  # no code named: a damaged or foreign file (text after a pickle's first byte)
                raise ConfigError(f"{path} is not torch weights (its contents are neither torch.save's nor a pickled "
                                  "object): pass the file torch.save(G.state_dict(), 'G.pth') wrote") from None
            if not trust_pickle:
                raise ConfigError(f"{path} holds a pickled Python object ({named[1]}), "
                                  "and loading it would run "
                                  "code: save the weights alone, torch.save(model.state_dict(), 'G.pth'), or pass "
                                  "--trust-pickle if you trust the file") from None
            f.seek(0)
            obj = _unpickle(f, path)
            notes.append("ran the pickle (--trust-pickle)")
    state, where = _find_state_dict(obj, path)
    notes.append(where)
    state, stripped = _strip_wrappers(state)
    notes += [f"'{p}' prefix removed" for p in stripped]
    return state, ", ".join(notes)


def _unpickle(f, path: Path):
    """``torch.load(weights_only=False)`` of ``f`` (``path``, open), with the working folder and the
    file's own on ``sys.path`` meanwhile: the pickle names the module of its class as the saving
    script saw it."""
    try:
        with on_path(path.resolve().parent), on_path(Path.cwd()):
            return torch.load(f, map_location="cpu", weights_only=False)
    except (AttributeError, ImportError) as exc:  # the class it was saved from is not importable here
        fix = ("the script that saved it defined the class in itself (__main__): save model.state_dict() there "
               "instead" if "__main__" in str(exc) else "run from the folder of the script that saved it (or add "
               "it to PYTHONPATH), or save model.state_dict() instead")
        raise ConfigError(f"unpickling {path} needs the class it was saved from ({first_line(exc, typed=True)}): "
                          f"{fix}") from None
    except Exception as exc:  # noqa: BLE001  (whatever the pickle's code raises)
        raise ConfigError(f"{path} could not be unpickled ({first_line(exc, typed=True)})") from None


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
    found = misfit(module, state, widen=True, optional=lambda k: k.endswith("num_batches_tracked"))
    missing, unexpected = found.missing, found.unexpected
    misshapen = [f"{w.key} {list(w.got.shape)} in the file, {list(w.want.shape)} in the module"
                 for w in found.wrong if w.shape_differs and torch.is_tensor(w.got)]
    name = type(module).__name__
    if missing or unexpected:
        parts = ([f"{len(missing)} keys missing ({shown(missing)})"] if missing else []) + (
            [f"{len(unexpected)} unexpected ({shown(unexpected)})"] if unexpected else [])
        raise ConfigError(f"the weights in {source} do not fit {name}: {'; '.join(parts)}; check --init-args "
                          "(the sizes it was trained with) and that --module names the class they were saved from")
    if misshapen:
        more = "; ..." if len(misshapen) > 2 else ""
        raise ConfigError(f"the weights in {source} do not fit {name}: {len(misshapen)} tensors differ in shape "
                          f"({'; '.join(misshapen[:2])}{more}); check --init-args (the sizes it was trained with)")
    if found.wrong:  # not tensors, or of a dtype that loading would round or cast (int64 into float32)
        more = f" ({len(found.wrong) - 1} more)" if len(found.wrong) > 1 else ""
        raise ConfigError(f"the weights in {source} do not fit {name}: {found.wrong[0]}{more}; save them from a "
                          "model of its dtypes (a float16 file loads into float32 as it is, nothing else is cast)")
    try:
        module.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"the weights in {source} do not fit {name}: {first_line(exc, typed=True)}") from None
    if found.widened:
        note = ", ".join(filter(None, [note, f"{' and '.join(sorted(found.widened))} weights widened exactly"]))
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
    zipcheck.verify_file(path, PROGRAM)  # torch's loaders check no CRC either
    try:
        if kind == "torchscript":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=FutureWarning)
                return torch.jit.load(str(path), map_location="cpu"), PROGRAM_NOTES[kind]
        return torch.export.load(str(path)).module(), PROGRAM_NOTES[kind]
    except Exception as exc:  # noqa: BLE001  (torch's loaders raise RuntimeError and their own types)
        raise ConfigError(f"{path} could not be loaded ({first_line(exc, typed=True)}); is the file "
                          "complete?") from None


def from_torchscript(module: torch.jit.ScriptModule, inputs: tuple) -> nn.Module:
    """A TorchScript module as a torch.export graph module (what ONNX and .pt2 export take): the
    ScriptModule itself cannot be traced by torch.export."""
    from torch._export.converter import TS2EPConverter

    with quiet_log("torch._export"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TS2EPConverter(module, inputs).convert().module()
