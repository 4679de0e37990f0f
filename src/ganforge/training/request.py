"""A training run as asked for: one frozen :class:`TrainRequest`, built once.

gan-train builds it from its command line (and a Python caller from keywords, through
:func:`ganforge.training.train`); nothing after that reads options. Config values come from
it in one order, later wins: the variant's defaults, ``preset``, ``config_file``, the named
options (``--data``, ``--epochs``, ``--ema``, ...: ``options``), then ``--set`` (``sets``).

A resumed run keeps the config it was started with. :data:`RESUMABLE` is the one table of
the keys a resume may still change: none of them changes what the run computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ganforge.errors import ConfigError
from ganforge.threads import check_threads
from ganforge.training.config import apply, parse_set, read_config_file, resolve
from ganforge.training.run import DEFAULT_RUNS_DIR
from ganforge.training.variants import DEFAULT_VARIANT, Variant, check_config

# The config keys a resume may change, and why that is safe.
RESUMABLE: Mapping[str, str] = MappingProxyType({
    "epochs": "the new total",
    "amp": "autocast precision of the forward passes; weights stay float32",
    "compile": "torch.compile computes what eager does",
    "deterministic": "which kernels run, not what they compute",
    "eval_every": "scoring never touches the training's random stream",
    "checkpoint_every": "where the run may stop, not where it goes",
    "log_every": "console output only",
    "tensorboard": "an extra record of the same figures",
})
# Config keys with an option of their own in gan-train (the rest are --set KEY=VALUE).
FLAGS = ("data", "download", "epochs", "seed", "eval_every", "ema", "checkpoint_every", "tensorboard",
         "deterministic", "amp", "compile", "loss", "generator", "discriminator", "latent_shape", "init_args",
         "d_init_args")


def flag(key: str) -> str:
    """How a user gives ``key`` on the command line."""
    return f"--{key.replace('_', '-')}" if key in FLAGS else f"--set {key}"


@dataclass(frozen=True)
class TrainRequest:
    """What to train (or resume), from where, on what; built once, read everywhere."""

    variant: str | None = None  # a registered variant; None: the config file's, else sine
    config_file: str | Path | None = None  # JSON of config keys (a run's config.json works)
    preset: str | None = None  # a named preset of the variant ("source": the source document's recipe)
    options: Mapping[str, Any] = field(default_factory=dict)  # config keys from named options, checked later
    sets: tuple[str, ...] = ()  # --set KEY=VALUE, applied last
    device: str = "auto"  # auto, cpu or cuda
    runs_dir: str | Path | None = None  # None: the config file's runs_dir, else runs/
    resume: str | Path | None = None  # a run folder, run name, checkpoint or "latest"
    progress: bool | None = None  # progress bars; None: when stderr is a terminal
    threads: int | None = None  # threads to compute on, as --threads N; None: chosen (ganforge.threads)

    def __post_init__(self) -> None:
        if self.threads is not None:
            object.__setattr__(self, "threads", check_threads(self.threads, "threads"))
        object.__setattr__(self, "options", MappingProxyType({k: v for k, v in self.options.items() if v is not None}))
        object.__setattr__(self, "sets", tuple(self.sets))

    @classmethod
    def make(cls, variant: str | None = None, **keywords: Any) -> TrainRequest:
        """A request from keywords: the request's own fields by name; any other keyword is a
        config key (``epochs=3``, ``ema=0.999``), checked against the variant's config later."""
        own = {f.name for f in fields(cls)}
        options = {k: v for k, v in keywords.items() if k not in own}
        return cls(variant=variant, options=options, **{k: v for k, v in keywords.items() if k in own})

    @cached_property
    def file_config(self) -> Mapping[str, Any] | None:
        """The keys of ``config_file`` (None without one), read and parsed once, when first asked
        for: the variant, the runs folder and the config all come from this one reading."""
        if self.config_file is None:
            return None
        return MappingProxyType(read_config_file(self.config_file))

    def runs_folder(self) -> Path:
        if self.runs_dir is not None:
            return Path(self.runs_dir)
        from_file = self.file_config.get("runs_dir") if self.file_config is not None else None
        return Path(from_file) if from_file else DEFAULT_RUNS_DIR

    def variant_name(self) -> str:
        if self.variant is None and self.file_config is not None:
            return self.file_config.get("variant") or DEFAULT_VARIANT
        return self.variant or DEFAULT_VARIANT


def new_config(variant: Variant, request: TrainRequest) -> Any:
    """The config of a new run: every source of the request, in precedence order, checked."""
    cfg = resolve(variant, preset=request.preset, config_file=request.config_file, file_config=request.file_config,
                  overrides=request.options, sets=request.sets)
    check_config(variant, cfg)
    return cfg


def resumed_config(variant: Variant, saved: Mapping[str, Any], request: TrainRequest, where: str) -> Any:
    """The config a run was started with (``saved``), with what the request may change of it."""
    fixed = [name for name, value in (("VARIANT", request.variant), ("--config", request.config_file),
                                      ("--preset", request.preset)) if value]
    changes = {**request.options, **parse_set(request.sets)}
    refused = [flag(k) for k in changes if k not in RESUMABLE]
    if fixed or refused:
        allowed = ", ".join(["--device", *(flag(k) for k in RESUMABLE)])
        raise ConfigError(f"--resume keeps the run's config; drop {', '.join([*fixed, *refused])} "
                          f"(a resume may change only {allowed})")
    cfg = apply(variant.config_cls(), saved, where=where)
    if changes:
        cfg = replace(cfg, **vars(apply(cfg, changes, where=" in the resume's options")))
        cfg.validate()
    return cfg
