"""Levers against a discriminator that memorises or a generator that collapses, shared by the variants.

- :class:`MinibatchStd` (Karras et al., 2018, arXiv:1710.10196, section 3): the discriminator
  also sees how much the samples of its batch differ. A generator that repeats a few samples
  makes batches of low spread, which real batches never have, so collapse costs it at once.
- :func:`diff_augment` (Zhao et al., 2020, arXiv:2006.10738): the same random, differentiable
  translation / cutout / colour changes applied to every image D sees, real and generated,
  in D's and in G's update. D cannot memorise a small data set, and since G's gradient passes
  through the augmentation, G is not pushed to generate augmented images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

class MinibatchStd(nn.Module):
    """``x [B, F]`` or ``[B, C, H, W]`` -> the same with one more feature (channel): the standard
    deviation of every feature over the batch, averaged over features, the same for every sample."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) < 2:  # one sample has no spread
            spread = x.new_zeros(())
        else:
            spread = (x.float().var(0, unbiased=False) + 1e-8).sqrt().mean().to(x.dtype)
        extra = spread.expand(len(x), 1, *x.shape[2:])
        return torch.cat([x, extra], 1)


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Images ``[B, C, H, W]`` in [-1, 1], each changed at random by ``policy`` (differentiably;
    names from ``config.augment_policy``)."""
    for name in policy:
        x = _OPS[name](x)
    return x


def _color(x: torch.Tensor) -> torch.Tensor:
    b = len(x)
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)  # brightness
    if x.shape[1] > 1:  # saturation
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean((1, 2, 3), keepdim=True)  # contrast
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; what comes in is 0 (mid-grey), as in the paper."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx + 1).clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))  # a zero border: where a shift reads from outside the image
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the size, centred anywhere in the image (clipped at its edges)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1) - top
    cols = torch.arange(w, device=x.device).view(1, 1, w) - left
    inside = (rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw)
    return x * ~inside.unsqueeze(1)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}
