"""Checkpoints: written atomically, loaded with ``weights_only=True``.

A checkpoint carries the variant name and its resolved config, so any consumer
(``gan-export``, ``--resume``) rebuilds the models from the file alone, and it
never runs code when loaded.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import CheckpointError
from ganforge.fsutil import atomic_path

FORMAT = 1
REQUIRED = ("format", "variant", "config", "generator", "discriminator", "epoch")


def save(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temporary file and ``os.replace``."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load(path: str | Path) -> dict[str, Any]:
    """Load and sanity-check a ganforge checkpoint; every problem is a CheckpointError."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({first[:200]}); is the file complete?") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED):
        raise CheckpointError(f"{path} is not a ganforge checkpoint (expected keys {', '.join(REQUIRED)})")
    if state["format"] != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state['format']}; this ganforge reads format {FORMAT}")
    return state


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_generator(state: dict[str, Any]) -> tuple[torch.nn.Module, Any, Any]:
    """Rebuild the generator of a loaded checkpoint in eval mode: (G, variant, config).

    When the run kept an exponential moving average of G (``--ema``), those are the weights.
    """
    from ganforge.training.config import apply
    from ganforge.training.variants import GeneratorModel, get_variant

    try:
        variant = get_variant(state["variant"])
    except Exception as exc:
        raise CheckpointError(f"checkpoint names {exc}") from None
    try:
        cfg = apply(variant.config_cls(), state["config"], where=" in the checkpoint's config")
    except Exception as exc:
        raise CheckpointError(f"checkpoint config does not fit variant {variant.name}: {exc}") from None
    G = variant.generator(cfg)
    if not isinstance(G, GeneratorModel):  # what export and evaluation rely on
        raise CheckpointError(f"the {variant.name} generator does not honour GeneratorModel "
                              f"(latent_dim, sample_shape, num_classes, class_embedding)")
    try:
        G.load_state_dict(state.get("generator_ema", state["generator"]))
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint weights do not fit the {variant.name} generator: {str(exc)[:200]}") from None
    return G.eval(), variant, cfg
