"""The adapter that makes a user's generator a ganforge
:class:`~ganforge.training.variants.base.GeneratorModel`.

    gen = UserGenerator(G, latent_shape=(100, 1, 1))  # z [B, 100] -> x [B, 3, 64, 64]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganforge.errors import ConfigError, first_line
from ganforge.limits import MAX_CLASSES, MAX_LATENT_DIM, MAX_SAMPLE_VALUES
from ganforge.usercode.shapes import takes_hint
from ganforge.usercode.weights import from_torchscript

PROBE_BATCH = 4  # samples of the probe: the batch-dependence check compares them alone and together


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
            return from_torchscript(script, inputs)
        except Exception as exc:  # noqa: BLE001  (the converter raises many types)
            fix = takes_hint(script, self.latent_shape, lambda shape: script(*self._noise(shape)))
            raise ConfigError(f"the TorchScript module could not be converted for export at latent shape "
                              f"{list(self.latent_shape)} ({first_line(exc, typed=True)}); "
                              f"{fix or 'check --latent-shape'}, or export from the Python class (--module and "
                              "--weights)") from None

    def example(self, batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """``(z,)``, or ``(z, labels)`` for a conditional generator: seeded, ``batch`` samples."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(batch, self.latent_dim, generator=g)
        return (z,) if self.num_classes is None else (z, torch.randint(self.num_classes, (batch,), generator=g))

    def _noise(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
        """A probe's inputs with noise of ``shape`` a sample (another latent shape than the module's)."""
        g = torch.Generator().manual_seed(0)
        z = torch.randn(PROBE_BATCH, *shape, generator=g)
        return (z,) if self.num_classes is None else (z, torch.randint(self.num_classes, (PROBE_BATCH,), generator=g))

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
                              f"{takes} ({first_line(exc, typed=True)}): {self._probe_fix(exc)}") from None
        if not torch.is_tensor(x) or not x.is_floating_point():
            got = type(x).__name__ if not torch.is_tensor(x) else f"a {x.dtype} tensor"
            raise ConfigError(f"the generator's forward returned {got}; ganforge exports a generator that returns "
                              "one float tensor (the samples)")
        if x.dim() == 0 or x.shape[0] != PROBE_BATCH:
            raise ConfigError(f"the generator returned shape {list(x.shape)} for a batch of {PROBE_BATCH}; its "
                              "first dimension must be the batch")
        if x.dim() < 2 or 0 in x.shape[1:]:
            raise ConfigError(f"the generator returned shape {list(x.shape)} for a batch of {PROBE_BATCH}: samples of "
                              "no values; it must return [batch, *sample] with every dimension at least 1")
        return x

    def _probe_fix(self, exc: Exception) -> str:
        text = str(exc)
        if "Guard failed" in text:  # torch.export's check of the shapes a program was exported for
            return "re-export the program with a dynamic batch dimension (torch.export.Dim)"
        if isinstance(exc, TypeError) and "positional argument" in text:
            return ("its forward takes z alone: drop --num-classes" if self.num_classes is not None
                    else "its forward takes more than z: a conditional generator needs --num-classes K")
        found = takes_hint(self.net, self.latent_shape, lambda shape: self.net(*self._noise(shape)))
        return found or "pass the noise shape its forward takes (--latent-shape 100, or 100,1,1 for a DCGAN)"

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


def non_finite_output(gen: nn.Module) -> str:
    """The message for a generator whose samples hold NaN or infinite values, naming its weights that do."""
    bad = [(name, int((~torch.isfinite(t)).sum())) for name, t in (*gen.named_parameters(), *gen.named_buffers())
           if t.is_floating_point() and not torch.isfinite(t).all()]
    where = (f"{sum(n for _, n in bad):,} weight value(s) are NaN or infinite (in {', '.join(name for name, _ in bad[:3])}"
             f"{', ...' if len(bad) > 3 else ''})" if bad else "its weights are finite: its forward makes them")
    return (f"the generator's samples hold NaN or infinite values on ordinary noise: {where}; export weights "
            "saved before training diverged")


@torch.no_grad()
def check_batch_independent(gen: UserGenerator, atol: float) -> float:
    """The max abs difference between samples made alone and inside one batch; a ConfigError when
    it exceeds ``atol``: a generator whose sample depends on the rest of its batch (BatchNorm in
    training mode, batch statistics) cannot be served in batches of any size."""
    inputs = gen.example(PROBE_BATCH, seed=1)
    together = gen(*inputs)
    alone = torch.cat([gen(*(t[i:i + 1] for t in inputs)) for i in range(PROBE_BATCH)])
    if not (torch.isfinite(together).all() and torch.isfinite(alone).all()):
        raise ConfigError(non_finite_output(gen))  # NaN differs from itself: not a sign of batch statistics
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
