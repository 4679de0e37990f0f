"""The noise shape a user's generator takes, when its forward rejected the one given.

    takes_hint(G, (100,), run)  # "this generator's forward takes [100, 1, 1] (its first layer,
                                #  ConvTranspose2d(100, ...)); pass --latent-shape 100,1,1"

The first layer that can take the noise says it: an ``nn.Linear`` takes ``[in_features]``, a
convolution (plain or transposed) ``[in_channels, 1, ...]``, one 1 a spatial axis (DCGAN's
``[100, 1, 1]``). A hint is given only once a probe of that shape went through the forward (a
generator may reshape its noise before that layer), so it never names a shape that fails too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ganforge.limits import MAX_LATENT_DIM

# layer type name -> spatial axes of its input (0: features); a TorchScript module keeps the name
LAYERS = {"Linear": 0, "Conv1d": 1, "ConvTranspose1d": 1, "Conv2d": 2, "ConvTranspose2d": 2, "Conv3d": 3,
          "ConvTranspose3d": 3}


def _kind(module: nn.Module) -> str:
    return getattr(module, "original_name", None) or type(module).__name__  # a scripted module's own class


def first_layer(net: nn.Module) -> tuple[str, int, int] | None:
    """(type name, input size, spatial axes) of the first Linear or convolution ``net`` holds (in
    the order its modules are registered), or None."""
    for module in net.modules():
        kind = _kind(module)
        if kind in LAYERS:
            size = _input_size(module, kind)
            if isinstance(size, int) and size > 0:  # (a lazy layer has none yet)
                return kind, size, LAYERS[kind]
    return None


def _input_size(module: nn.Module, kind: str) -> int | None:
    """in_features or in_channels; a traced module keeps no such attribute, only the weight:
    Linear's and Conv's are [out, in, ...] (one group), ConvTranspose's [in, out, ...]."""
    size = getattr(module, "in_features" if LAYERS[kind] == 0 else "in_channels", None)
    if isinstance(size, int):
        return size
    weight = getattr(module, "weight", None)
    if not torch.is_tensor(weight) or weight.dim() < 2:
        return None
    return int(weight.shape[0] if kind.startswith("ConvTranspose") else weight.shape[1])


def _candidates(size: int, axes: int) -> Iterator[tuple[int, ...]]:
    yield (size, *([1] * axes))
    if axes:
        yield (size,)  # a forward that reshapes flat noise itself


@torch.no_grad()
def takes(net: nn.Module, given: tuple[int, ...], run: Callable[[tuple[int, ...]], object],
          limit: int = MAX_LATENT_DIM) -> tuple[tuple[int, ...], str] | None:
    """(the latent shape ``net``'s forward takes, its first layer in words), found from that layer
    and confirmed by ``run(shape)`` (the caller's probe: it raises when the forward rejects the
    shape); None when nothing other than ``given`` is found. Shapes over ``limit`` values are
    never probed."""
    layer = first_layer(net)
    if layer is None:
        return None
    kind, size, axes = layer
    for shape in _candidates(size, axes):
        if shape == tuple(given) or math.prod(shape) > limit:
            continue
        try:
            run(shape)
        except Exception:  # noqa: BLE001  (the user's forward, whatever it raises)
            continue
        return shape, f"{kind}({size}, ...)"
    return None


def takes_hint(net: nn.Module, given: tuple[int, ...], run: Callable[[tuple[int, ...]], object],
               limit: int = MAX_LATENT_DIM) -> str | None:
    """The fix for a rejected ``--latent-shape``, naming the shape found (:func:`takes`), or None."""
    found = takes(net, given, run, limit)
    if found is None:
        return None
    shape, layer = found
    return (f"this generator's forward takes {list(shape)} (its first layer, {layer}); "
            f"pass --latent-shape {','.join(map(str, shape))}")
