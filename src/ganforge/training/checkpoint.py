"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint carries the variant name and its resolved config, so any consumer
(``gan-export``, ``--resume``) rebuilds the models from the file alone, and it
never runs code when loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from ganforge import zipcheck
from ganforge.errors import CheckpointError, ConfigError, first_line
from ganforge.fsutil import atomic_path, file_sha256
from ganforge.limits import MAX_CHECKPOINT_BYTES, MAX_HISTORY_ROWS, MAX_TRAIN_EPOCHS, check_file_size
from ganforge.statedict import WeightsMisfit, load_exact
from ganforge.training.run import write_error

FORMAT = 1
REQUIRED = ("format", "variant", "config", "generator", "discriminator", "epoch")
MAX_BYTES = MAX_CHECKPOINT_BYTES  # a larger file is not one ganforge wrote
MAX_STEP = 2**62  # optimizer steps: int64 with room; the loop does arithmetic on it
MAX_WORLD_SIZE = 1 << 16  # processes of one torchrun job
# How a checkpoint is proven before torch reads it: every record's CRC and size, and its pickle (its history the
# longest list in it, a row an epoch)
READER = zipcheck.Reader("checkpoint", "restore it or train again", error=CheckpointError,
                         legacy="ganforge never wrote it; pass the checkpoint of a ganforge run",
                         items=MAX_HISTORY_ROWS)


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temporary file and ``os.replace``. A failed write (a
    full disk) is one line naming the file; the previous ``path`` stays as it was."""
    try:  # through a Python file: a full disk is ENOSPC, where torch's own writer says "file write failed"
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
    except (OSError, RuntimeError) as exc:
        raise write_error(Path(path), exc, needed=_tensor_bytes(state)) from None


def _tensor_bytes(value: Any) -> int:
    if torch.is_tensor(value):
        return value.nelement() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def load(path: str | Path) -> dict[str, Any]:
    """Load and sanity-check a ganforge checkpoint; every problem is a CheckpointError.

    Whatever its consumers index or size is checked before they trust it: the types of every
    part, counters in range, and the config against the variant's bounds (no model it
    describes is built here, and none too large to build is let through)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file (a device or a pipe?); pass a checkpoint file")
    check_file_size(path, CheckpointError, "larger than any ganforge checkpoint ({limit} at most)", limit=MAX_BYTES)
    with zipcheck.opened(path, READER) as f:  # torch checks neither the CRCs nor what a record unpacks to
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (a foreign or damaged file: KeyError, IndexError, ...)
            raise CheckpointError(f"{path} is not a readable checkpoint ({first_line(exc)}); is the file "
                                  "complete?") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise CheckpointError(f"{path} is not a ganforge checkpoint (expected keys {', '.join(REQUIRED)})")
    if state["format"] != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {str(state['format'])[:40]}; this ganforge reads "
                              f"format {FORMAT}")
    try:
        _check_parts(state)
        checked_config(state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return state


# ---------------------------------------------------------------- what a checkpoint must look like


def _fail(key: str, expected: str, value: Any) -> CheckpointError:
    got = type(value).__name__ if not isinstance(value, (int, float, str)) else repr(value)[:60]
    return CheckpointError(f"its {key} should be {expected}, got {got}; the file is damaged or not ganforge's")


def _int(state: dict, key: str, low: int, high: int) -> None:
    value = state[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(key, f"an integer in {low}..{high:,}", value)


def _weights(state: dict, key: str) -> None:
    value = state[key]
    if not isinstance(value, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in value.items()):
        raise _fail(key, "a state dict (names -> tensors)", value)


def _dict(state: dict, key: str) -> dict:
    if not isinstance(state[key], dict):
        raise _fail(key, "a dict", state[key])
    return state[key]


def _rng(value: Any, key: str) -> None:
    if not isinstance(value, dict) or not torch.is_tensor(value.get("torch")) or value["torch"].dtype != torch.uint8:
        raise _fail(key, "RNG states ({'torch': a uint8 tensor})", value)
    cuda = value.get("cuda", [])
    if not isinstance(cuda, list) or not all(torch.is_tensor(t) and t.dtype == torch.uint8 for t in cuda):
        raise _fail(f"{key}['cuda']", "a list of uint8 tensors", cuda)


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _history(rows: Any) -> bool:
    """One row of figures per epoch, as metrics.csv and the plots read them."""
    if not isinstance(rows, list) or len(rows) > MAX_HISTORY_ROWS:
        return False
    return all(isinstance(row, dict) and {"epoch", "d_real", "d_fake", "g"} <= row.keys()
               and all(isinstance(k, str) and _number(v) for k, v in row.items()) for row in rows)


def _scalars(sums: Any) -> bool:
    """An epoch's running sums (EpochSums.saved): counts and 0-d tensors."""
    return isinstance(sums, dict) and all(
        (isinstance(v, int) and not isinstance(v, bool)) or (torch.is_tensor(v) and v.dim() == 0)
        for v in sums.values())


def _check_parts(state: dict) -> None:
    """Types and ranges of everything the loop, resume and export read from ``state``."""
    if not isinstance(state["variant"], str):
        raise _fail("variant", "a variant name", state["variant"])
    if not isinstance(state["config"], dict) or not all(isinstance(k, str) for k in state["config"]):
        raise _fail("config", "a dict of config keys", state["config"])
    _int(state, "epoch", 0, MAX_TRAIN_EPOCHS)
    for key in ("generator", "discriminator", "generator_ema"):
        if key in state:
            _weights(state, key)
    if "step" in state:
        _int(state, "step", 0, MAX_STEP)
    if "world_size" in state:
        _int(state, "world_size", 1, MAX_WORLD_SIZE)
    for key in ("opt_g", "opt_d"):
        if key in state:
            opt = _dict(state, key)
            if not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
                raise _fail(key, "an optimizer state dict", opt)
    if "scalers" in state and not all(isinstance(_dict(state, "scalers").get(k), dict) for k in ("d", "g")):
        raise _fail("scalers", "{'d': ..., 'g': ...} gradient scaler states", state["scalers"])
    if "fixed_noise" in state and (not torch.is_tensor(state["fixed_noise"]) or state["fixed_noise"].dim() != 2
                                   or not state["fixed_noise"].is_floating_point()):
        raise _fail("fixed_noise", "a float tensor [samples, latent]", state["fixed_noise"])
    if "history" in state and not _history(state["history"]):
        raise _fail("history", "a list of rows of figures (epoch, d_real, d_fake, g, ...)", state["history"])
    if "rng" in state:
        _rng(state["rng"], "rng")
    if "rng_ranks" in state:
        ranks = state["rng_ranks"]
        if not isinstance(ranks, list) or len(ranks) > MAX_WORLD_SIZE:
            raise _fail("rng_ranks", "a list of RNG states", ranks)
        for i, rng in enumerate(ranks):
            _rng(rng, f"rng_ranks[{i}]")
    if "partial" in state:
        _check_partial(_dict(state, "partial"))


def _check_partial(at: dict) -> None:
    """Where inside an epoch the checkpoint stands (resume.position)."""
    for key, low, high in (("epoch", 1, MAX_TRAIN_EPOCHS), ("pos", 0, MAX_STEP), ("world_size", 1, MAX_WORLD_SIZE)):
        if key not in at:
            raise _fail("partial", f"a position with {key}", at)
        _int(at, key, low, high)
    perm = at.get("perm")
    if perm is not None and (not torch.is_tensor(perm) or perm.dim() != 1 or perm.dtype != torch.int64):
        raise _fail("partial['perm']", "an int64 tensor [samples]", perm)
    ranks = at.get("sums_ranks", [])
    if not _scalars(at.get("sums")) or not isinstance(ranks, list) or not all(_scalars(s) for s in ranks):
        raise _fail("partial['sums']", "the epoch's running sums (scalars)", at.get("sums"))


def checked_config(state: dict[str, Any]) -> tuple[Any, Any]:
    """(variant, config) of a checkpoint, checked as a config file would be: every key and type,
    every bound, and the size of the models it describes (counted, not built)."""
    from ganforge.training.config import apply
    from ganforge.training.variants import check_size, get_variant

    try:
        variant = get_variant(state["variant"])
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint names {exc}") from None
    try:
        cfg = apply(variant.config_cls(), state["config"], where=" in the checkpoint's config")
        cfg.validate()
        if variant.user_code is None:  # the user's own modules are counted when imported (import_recorded)
            check_size(variant, cfg)
        else:
            _check_recorded_paths(variant.user_code(cfg))
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint config does not fit variant {variant.name}: {exc}") from None
    return variant, cfg


def _check_recorded_paths(code: dict[str, str]) -> None:
    """Training records a file by its absolute path: a relative one would import whatever file
    of that name sits in the folder gan-export or --resume runs from."""
    for spec in code.values():
        where = spec.rpartition(":")[0]
        if where.endswith(".py") and not Path(where).is_absolute():
            raise ConfigError(f"it names code by a relative path ({spec[:80]!r}); a run records its files by "
                              "absolute path")


def import_recorded(variant: Any, cfg: Any, where: str = "the checkpoint", *, say: bool = True) -> None:
    """A run of the user's own modules names their code in its config: to resume or export it,
    say so in one line (``say``), import it (which runs it) and count the models it builds.
    Nothing else imports the code a checkpoint names. Code that cannot be imported now (a moved
    file, a renamed class) is a CheckpointError naming it."""
    if variant.user_code is None:
        return
    from ganforge.training.variants import check_size
    from ganforge.usercode import UserCodeError, load_class

    specs = list(variant.user_code(cfg).values())
    if say:
        print(f"note: {where} names code of its own: importing {' and '.join(dict.fromkeys(specs))} "
              f"(this runs it)", file=sys.stderr)
    for spec in specs:
        try:
            load_class(spec)
        except UserCodeError as exc:
            reason = exc.reason.split("; ")[0]
            raise CheckpointError(f"{where} was trained with {spec}, which cannot be imported now ({reason}): "
                                  f"restore it there, or train a new run") from None
    try:
        check_size(variant, cfg)  # builds the modules on the meta device, probing their shapes
    except ConfigError as exc:
        raise CheckpointError(f"{where} was trained with {' and '.join(dict.fromkeys(specs))}, which no longer "
                              f"fit its config: {exc}") from None


sha256 = file_sha256  # the source checkpoint's digest in export metadata


def build_generator(state: dict[str, Any]) -> tuple[torch.nn.Module, Any, Any]:
    """Rebuild the generator of a loaded checkpoint in eval mode: (G, variant, config).

    When the run kept an exponential moving average of G (``--ema``), those are the weights.
    """
    from ganforge.training.variants import GeneratorModel

    variant, cfg = checked_config(state)
    import_recorded(variant, cfg)
    G = variant.generator(cfg)
    if not isinstance(G, GeneratorModel):  # what export and evaluation rely on
        raise CheckpointError(f"the {variant.name} generator does not honour GeneratorModel "
                              f"(latent_dim, sample_shape, num_classes, class_embedding)")
    key = "generator_ema" if "generator_ema" in state else "generator"
    try:
        load_exact(G, state[key], key)  # every key, dtype and shape as the model has them: nothing is cast
    except WeightsMisfit as exc:
        raise CheckpointError(f"checkpoint {key} does not fit the {variant.name} generator: "
                              f"{exc.misfit.describe()[:300]}; the file is damaged or not ganforge's") from None
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint weights do not fit the {variant.name} generator: {str(exc)[:200]}") from None
    return G.eval(), variant, cfg
