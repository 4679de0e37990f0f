"""Typed training configs and how a user overrides them.

Every variant's config is a dataclass that extends :class:`TrainConfig`. Values
are resolved in this order, later wins: the variant's defaults, a named preset,
a ``--config`` JSON file, the named options (``--data``, ``--epochs``, ``--ema``, ...), then
``--set key=value``.
Every key is checked against the dataclass: an unknown key or a value of the
wrong type is a :class:`~ganforge.errors.ConfigError` that lists the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ganforge.errors import ConfigError
from ganforge.fsutil import not_a_file
from ganforge.values import loads_json
from ganforge.limits import (MAX_CLASS_NAME, MAX_CONFIG_BYTES, MAX_TRAIN_BATCH_SIZE, MAX_TRAIN_CLASSES,
                             MAX_TRAIN_EPOCHS, MAX_TRAIN_SAMPLE_COUNT, MAX_TRAIN_SEED)

if TYPE_CHECKING:
    from ganforge.training.variants.base import Variant

# Keys a config file may carry beside the dataclass fields: a resolved config.json's
# run keys, and runs_dir (the output folder, as the wgan-gp source's parameters.json has).
# Keys starting with "_" are comments.
RUN_KEYS = ("variant", "preset", "device", "precision", "world_size", "ganforge_version", "runs_dir", "threads")
AMP_CHOICES = ("auto", "bf16", "fp16", "off")
AUGMENTATIONS = ("color", "translation", "cutout")  # DiffAugment's, in the order they apply
# The levers against collapse, each off: what every variant's "source" preset starts from, so
# that `--preset source` is the source document's recipe whatever the defaults turn on.
LEVERS_OFF = {"ema": 0.0, "r1_weight": 0.0, "minibatch_std": False, "augment": "", "loss": None,
              "learning_rate_d": None, "lr_half_life": 0.0,
              "class_embedding_std": 1.0}


@dataclasses.dataclass
class TrainConfig:
    """Fields every variant has. Variants redeclare a field to change its default.

    ``ALIASES`` maps a source document's name for a knob to the field it sets
    (``num_epochs`` -> ``epochs``), so ``--set`` and config files accept both.
    """

    ALIASES: ClassVar[dict[str, str]] = {}
    SUPPORTS_CONDITIONAL: ClassVar[bool] = False  # the variant's models take class labels (conditional=true)
    LOSSES: ClassVar[tuple[str, ...]] = ("bce", "hinge")  # what `loss` may name (losses.OBJECTIVE_OF maps it)

    epochs: int = 10  # passes over the training data
    batch_size: int = 64  # samples per optimisation step
    learning_rate: float = 2e-4  # Adam learning rate of G (and of D unless learning_rate_d is set)
    learning_rate_d: float | None = None  # D/critic's own Adam rate (two time-scales, TTUR); None = learning_rate
    lr_half_life: float = 0.0  # epochs over which both learning rates halve (exponential decay; 0: constant)
    beta1: float = 0.5  # Adam beta1
    beta2: float = 0.999  # Adam beta2
    seed: int = 0  # seeds model init, noise, shuffling and data synthesis
    data: str | None = None  # data location (path or root); None for embedded data
    download: bool = False  # let torchvision download the data set into `data` (needs internet)
    sample_count: int = 16  # fixed-noise samples drawn each epoch (samples/, progress.gif)
    log_every: int = 1  # print an epoch summary every N epochs (train.log gets every epoch)
    eval_every: int = 0  # score G every N epochs and keep checkpoints/best.pt (0: off)
    ema: float = 0.0  # keep an exponential moving average of G with this decay, e.g. 0.999 (0: off)
    checkpoint_every: int = 0  # also checkpoint every N steps inside an epoch (0: at epoch ends only)
    tensorboard: bool = False  # write losses, sample grids and timing as TensorBoard events in <run>/tensorboard
    deterministic: bool = False  # torch.use_deterministic_algorithms: bit-reproducible runs (see README for CUDA)
    amp: str = "auto"  # autocast: auto (bf16 on CUDA where supported, else off), bf16, fp16 (+ gradient scaler), off
    compile: bool = False  # torch.compile G and D; a variant it fails for trains eagerly, with a warning
    conditional: bool = False  # G and D take the class label (labelled data: IDX, CIFAR-10, class subfolders)
    loss: str | None = None  # bce (non-saturating) or hinge, for variants with a discriminator; None = the variant's
    r1_weight: float = 0.0  # gamma of R1, a zero-centred gradient penalty on real data (bce/hinge; 0: off)
    minibatch_std: bool = False  # D also sees the spread of its batch (against collapse: Karras et al. 2018)
    augment: str = ""  # DiffAugment for D's inputs: any of color,translation,cutout (image variants; "": off)
    class_embedding_std: float = 1.0  # conditional: initial spread of G's class offsets E (the noise's is 1)
    num_classes: int | None = None  # conditional: set from the data
    class_names: list[str] | None = None  # conditional: set from the data, index = label

    def require_positive(self, *names: str) -> None:
        """Each named field must be >= 1 (a None, where the type allows it, passes)."""
        for name in names:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")

    def require_at_most(self, limit: int, *names: str) -> None:
        """Each named field (an int, or a list of ints; None passes) must be at most ``limit``."""
        for name in names:
            value = getattr(self, name)
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(v is not None and v > limit for v in values):
                raise ConfigError(f"{name} must be at most {limit:,}, got {value}; pick a smaller value")

    def validate(self) -> None:
        """Refuse values no run can use. Variants extend this for their own fields."""
        self.require_positive("epochs", "batch_size", "sample_count", "log_every")
        self.require_at_most(MAX_TRAIN_EPOCHS, "epochs")
        self.require_at_most(MAX_TRAIN_BATCH_SIZE, "batch_size")
        self.require_at_most(MAX_TRAIN_SAMPLE_COUNT, "sample_count")
        if not 0 <= self.seed <= MAX_TRAIN_SEED:  # torch.manual_seed takes 64 bits, numpy's RNGs more
            raise ConfigError(f"seed must be between 0 and {MAX_TRAIN_SEED} (2^63 - 1), got {self.seed}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"ema is a decay in [0, 1) (0 turns it off), got {self.ema}")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be >= 0 (0: epoch ends only), got {self.checkpoint_every}")
        if self.eval_every < 0:
            raise ConfigError(f"eval_every must be >= 0 (0 turns it off), got {self.eval_every}")
        if self.amp not in AMP_CHOICES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {self.amp!r}")
        if not self.conditional and (self.num_classes is not None or self.class_names is not None):
            raise ConfigError("num_classes and class_names come from the data with conditional=true; "
                              "set conditional=true or leave them unset")
        if self.num_classes is not None and not 2 <= self.num_classes <= MAX_TRAIN_CLASSES:
            raise ConfigError(f"num_classes must be between 2 and {MAX_TRAIN_CLASSES}, got {self.num_classes}")
        _check_class_names(self.class_names, self.num_classes)
        for name in ("learning_rate", "learning_rate_d"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.loss is not None and self.loss not in self.LOSSES:
            raise ConfigError(f"loss must be {', '.join(self.LOSSES[:-1])} or {self.LOSSES[-1]}, got {self.loss!r}")
        if not self.lr_half_life >= 0:
            raise ConfigError(f"lr_half_life must be >= 0 epochs (0: constant rates), got {self.lr_half_life}")
        if not 0 <= self.class_embedding_std < float("inf"):
            raise ConfigError(f"class_embedding_std must be >= 0, got {self.class_embedding_std}")
        if not self.r1_weight >= 0:
            raise ConfigError(f"r1_weight must be >= 0 (0 turns it off), got {self.r1_weight}")
        augment_policy(self.augment)
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")


def _check_class_names(names: list[str] | None, num_classes: int | None) -> None:
    if names is None:
        return
    if len(names) != num_classes:
        raise ConfigError(f"class_names has {len(names)} names but num_classes is {num_classes}; leave both unset "
                          "(they come from the data)")
    long = next((n for n in names if len(n) > MAX_CLASS_NAME), None)
    if long is not None:
        raise ConfigError(f"class name {long[:40]!r}... has {len(long)} characters, more than {MAX_CLASS_NAME}; "
                          "rename that class's folder")


def augment_policy(text: str) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ("translation", "cutout"), in application order; "" or "none": off."""
    names = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    unknown = [p for p in names if p not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(f"unknown augmentation {unknown[0]!r} in augment; choose from {', '.join(AUGMENTATIONS)} "
                          f"(comma-separated), or none")
    return tuple(a for a in AUGMENTATIONS if a in names)


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def valid_keys(cls: type) -> list[str]:
    return sorted([*field_types(cls), *cls.ALIASES])


def shown_default(value: Any) -> str:
    """A default as ``--set key=value`` takes it back: text bare ("" when empty), the rest as JSON
    (null, true, [32, 64], 0.0002)."""
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value)


def key_rows(cls: type) -> list[tuple[str, str, str]]:
    """(key, type, default) of every field of the config class ``cls``, sorted by key; the defaults
    are the class's own (an instance made with none given)."""
    defaults = cls()
    return [(key, _type_name(tp), shown_default(getattr(defaults, key)))
            for key, tp in sorted(field_types(cls).items())]


def key_table(cls: type, indent: str = "  ") -> list[str]:
    """``gan-train --list``'s table of ``cls``'s keys: key, type, default, in columns two spaces apart,
    then its aliases (a source document's names)."""
    rows = [("key", "type", "default"), *key_rows(cls)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{indent}{k:{widths[0]}s}  {t:{widths[1]}s}  {d}" for k, t, d in rows]
    if cls.ALIASES:
        lines.append(f"{indent}aliases: " + ", ".join(f"{a} = {k}" for a, k in sorted(cls.ALIASES.items())))
    return lines


def _unknown_key(key: str, cls: type, where: str) -> ConfigError:
    valid = ", ".join(valid_keys(cls))
    return ConfigError(f"unknown config key {key!r}{where}; valid keys: {valid}")


def _optional_inner(tp: Any) -> tuple[Any, bool]:
    """Return (T, True) for ``T | None`` / ``Optional[T]``, else (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    inner, optional = _optional_inner(tp)
    name = getattr(inner, "__name__", str(inner))
    if typing.get_origin(inner) in (list, tuple):
        name = f"list of {_type_name(typing.get_args(inner)[0])}"
    return f"{name} or null" if optional else name


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Check (and convert, for strings from ``--set``) one value against a field type."""
    inner, optional = _optional_inner(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        raise ConfigError(f"{key} cannot be null; expected {_type_name(tp)}")
    origin = typing.get_origin(inner)
    if origin in (list, tuple):
        (item_tp, *_rest) = typing.get_args(inner)
        if isinstance(value, str):
            text = value.strip()
            value = (loads_json(text, key, "give a JSON list such as [1, 2], or values separated by commas",
                                error=ConfigError)
                     if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()])
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} expects {_type_name(tp)}, got {value!r}")
        items = [coerce(key, v, item_tp) for v in value]
        return tuple(items) if origin is tuple else items
    if inner is dict or origin is dict:
        return _json_object(key, value)
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
    elif inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif inner is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif inner is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} expects {_type_name(tp)}, got {value!r}")


def _json_object(key: str, value: Any) -> dict[str, Any]:
    """A dict field's value: a mapping with string keys, or its JSON text (from ``--set``)."""
    if isinstance(value, str):
        value = loads_json(value, f"{key}'s value", "give a JSON object such as '{\"a\": 1}'", error=ConfigError)
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{key} expects a JSON object (names -> values), got {str(value)[:60]!r}")
    return dict(value)


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    problem = not_a_file(path)  # (a pipe would block the read)
    if problem is not None:
        raise ConfigError(f"config file {path} {problem}" + ("" if problem == "does not exist" else
                                                             ": pass a JSON file of config keys"))
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} is larger than a config can be ({MAX_CONFIG_BYTES:,} bytes); "
                              "is it the right file?")
        data = loads_json(raw, f"config file {path}", "give a JSON object of config keys", error=ConfigError)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, a number of 5000 digits, [[[[...]]]]
        raise ConfigError(f"config file {path} is not valid JSON ({str(exc)[:100] or 'nested too deeply'})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of config keys")
    return data


def apply(cfg: Any, values: Mapping[str, Any], *, where: str = "") -> Any:
    """Return a copy of ``cfg`` with ``values`` checked and applied."""
    types_ = field_types(type(cfg))
    changes = {}
    for key, value in values.items():
        key = type(cfg).ALIASES.get(key, key)
        if key not in types_:
            raise _unknown_key(key, type(cfg), where)
        changes[key] = coerce(key, value, types_[key])
    return dataclasses.replace(cfg, **changes)


def resolve(
    variant: Variant,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    file_config: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
) -> Any:
    """Build and validate a variant's config from every source, in precedence order.
    ``file_config``: the keys of ``config_file`` when the caller has read it already
    (:attr:`TrainRequest.file_config <ganforge.training.request.TrainRequest.file_config>`)."""
    cfg = variant.config_cls()
    if preset is not None:
        if preset not in variant.presets:
            names = ", ".join(sorted(variant.presets)) or "none"
            raise ConfigError(f"unknown preset {preset!r} for variant {variant.name}; presets: {names}")
        cfg = apply(cfg, variant.presets[preset], where=f" in preset {preset!r}")
    if config_file is not None:
        data = dict(file_config) if file_config is not None else read_config_file(config_file)
        file_variant = data.pop("variant", variant.name)
        if file_variant != variant.name:
            raise ConfigError(f"config file {config_file} is for variant {file_variant!r}, not {variant.name!r}")
        for key in [*RUN_KEYS, *(k for k in data if k.startswith("_"))]:
            data.pop(key, None)
        cfg = apply(cfg, data, where=f" in {config_file}")
    cfg = apply(cfg, {k: v for k, v in (overrides or {}).items() if v is not None})
    cfg = apply(cfg, parse_set(sets), where=" in --set")
    cfg.validate()
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
