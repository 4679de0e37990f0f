"""What a run holds between steps, and what its checkpoint restores.

:class:`TrainState` is the checkpointed part: the plain modules (no DDP, no torch.compile
wrappers), their optimizers and fp16 gradient scalers, the moving average of G, the
counters, the loss history and the fixed noise of the sample grid. How this process runs
those modules (device, autocast, DDP, compiled wrappers) is rebuilt at every start
(``runtime.py``) and never saved. The RNG state travels beside it (:func:`rng_state`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.statedict import load_exact
from ganforge.training import classes
from ganforge.training.accel import Precision, use_channels_last
from ganforge.training.variants import Variant


@dataclass
class TrainState:
    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler  # enabled for fp16 only: a pass-through otherwise
    scaler_d: torch.amp.GradScaler
    fixed_noise: torch.Tensor  # the per-epoch sample grid's noise
    fixed_labels: torch.Tensor | None = None  # conditional: the grid's labels, a row per class
    G_ema: nn.Module | None = None  # exponential moving average of G (--ema)
    epoch: int = 0  # epochs done
    step: int = 0  # D/critic updates done
    history: list[dict[str, Any]] = field(default_factory=list)  # one row of figures per epoch

    @property
    def G_out(self) -> nn.Module:
        """The generator whose samples are shown, scored and shipped: the EMA one when kept."""
        return self.G_ema if self.G_ema is not None else self.G

    @classmethod
    def build(cls, variant: Variant, cfg: Any, device: torch.device, precision: Precision) -> TrainState:
        """Fresh models from ``cfg.seed`` (the same initial weights on every rank)."""
        torch.manual_seed(cfg.seed)
        G = variant.generator(cfg).to(device)
        D = variant.discriminator(cfg).to(device)
        if use_channels_last(device, G, D):
            G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        betas = (cfg.beta1, cfg.beta2)
        fixed, fixed_labels = _grid_noise(cfg, G.latent_dim, device)
        return cls(
            G, D,
            torch.optim.Adam(G.parameters(), lr=cfg.learning_rate, betas=betas),
            torch.optim.Adam(D.parameters(), lr=cfg.learning_rate_d or cfg.learning_rate, betas=betas),
            precision.grad_scaler(), precision.grad_scaler(),
            fixed, fixed_labels,
            G_ema=copy.deepcopy(G).eval().requires_grad_(False) if cfg.ema else None,
        )

    def set_learning_rates(self, cfg: Any, epoch: int) -> None:
        """The rates of ``epoch`` (``lr_half_life``: halved every that many epochs, from the first).
        A function of the epoch alone, so a resumed run trains at the rates of one never stopped."""
        scale = 0.5 ** ((epoch - 1) / cfg.lr_half_life) if cfg.lr_half_life else 1.0
        for optimizer, rate in ((self.opt_g, cfg.learning_rate), (self.opt_d, cfg.learning_rate_d or cfg.learning_rate)):
            for group in optimizer.param_groups:
                group["lr"] = rate * scale

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.G.state_dict(),
            **({"generator_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
            "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            **({"scalers": {"d": self.scaler_d.state_dict(), "g": self.scaler_g.state_dict()}}
               if self.scaler_d.is_enabled() else {}),
            "epoch": self.epoch,
            "step": self.step,
            "fixed_noise": self.fixed_noise.cpu(),
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Raises KeyError, RuntimeError or ValueError when ``state`` does not fit (a weight of another
        key, dtype or shape than the model's: WeightsMisfit, a ValueError; nothing is cast)."""
        load_exact(self.G, state["generator"], "generator")
        if self.G_ema is not None:
            ema = "generator_ema" if "generator_ema" in state else "generator"
            load_exact(self.G_ema, state[ema], ema)
        load_exact(self.D, state["discriminator"], "discriminator")
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.scaler_d.is_enabled() and "scalers" in state:  # fp16: go on with the scale the run had reached
            self.scaler_d.load_state_dict(state["scalers"]["d"])
            self.scaler_g.load_state_dict(state["scalers"]["g"])
        self.fixed_noise = state["fixed_noise"].to(self.fixed_noise.device)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])


def _grid_noise(cfg: Any, latent_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The sample grid's noise, from its own stream (``seed + 1``); conditional: one row per
    class, a column's noise the same in every row."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    if not cfg.num_classes:
        return torch.randn(cfg.sample_count, latent_dim, generator=g).to(device), None
    per_class = classes.grid_columns(cfg.sample_count, cfg.num_classes)
    fixed = torch.randn(per_class, latent_dim, generator=g).repeat(cfg.num_classes, 1)
    return fixed.to(device), classes.fixed_labels(cfg.num_classes, per_class, device)


def ema_decay(decay: float, updates: int) -> float:
    """The moving average's decay after ``updates`` G updates: short at first, ``decay`` from
    about ``10 / (1 - decay)`` updates on (TensorFlow's ExponentialMovingAverage with
    ``num_updates``), so that early on it does not average in the untrained initial weights."""
    return min(decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def ema_update(G_ema: nn.Module, G: nn.Module, decay: float) -> None:
    """``p_ema = decay * p_ema + (1 - decay) * p`` for parameters; buffers (BatchNorm
    statistics) are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def rng_state(device: torch.device) -> dict[str, Any]:
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def set_rng_state(rng: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and device.type == "cuda" and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
