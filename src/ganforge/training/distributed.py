"""Data-parallel training under torchrun.

``torchrun --nproc_per_node=N -m ganforge.training ...`` starts N copies of ``gan-train`` with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set. :func:`start` finds them and joins the process
group (NCCL on GPUs, gloo on CPU); the loop then wraps G and D in DistributedDataParallel, so
every step's gradients are averaged over all processes, and each process trains on its own
shard of every epoch. Rank 0 alone writes the run folder; the others learn its name from it.

One process (no torchrun, or ``WORLD_SIZE=1``) gets a :class:`Dist` of size 1 whose
collectives do nothing, so the loop reads the same either way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from ganforge.errors import ConfigError, DeviceError, GanforgeError

T = TypeVar("T")
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # what torchrun sets for each process


@dataclass
class Dist:
    """This process's place in the job, and the few collectives the loop needs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control: Any = None  # process group for small CPU messages (gloo); None: the default group
    owns_group: bool = False  # this Dist started the process group (and ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """DistributedDataParallel around ``module`` (which it syncs from rank 0 on the way in)."""
        if not self.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a Ctrl-C that reached one process)."""
        if not self.enabled:
            return flag
        import torch.distributed as dist

        t = torch.tensor([int(flag)])
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.control)
        return bool(t.item())

    def from_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and give every rank its result. A GanforgeError it raises
        is raised on every rank, so all processes stop with the same one-line message."""
        if not self.enabled:
            return fn()
        import torch.distributed as dist

        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except GanforgeError as exc:
                box[0] = ("error", type(exc), str(exc))
        dist.broadcast_object_list(box, src=0, group=self.control)
        if box[0][0] == "error":
            _, cls, message = box[0]
            error = cls.__new__(cls)  # some errors build their message in __init__; keep it as sent
            GanforgeError.__init__(error, message)
            raise error
        return box[0][1]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def sum(self, values: dict[str, Any]) -> dict[str, Any]:
        """Sum a dict of scalars (tensors or ints) over all ranks; types are kept."""
        if not self.enabled:
            return values
        import torch.distributed as dist

        keys = sorted(values)
        device = next((v.device for v in values.values() if torch.is_tensor(v)), torch.device("cpu"))
        packed = torch.stack([torch.as_tensor(values[k], dtype=torch.float64, device=device).reshape(())
                              for k in keys])
        dist.all_reduce(packed)
        return {k: packed[i].to(values[k].dtype) if torch.is_tensor(values[k]) else int(packed[i].item())
                for i, k in enumerate(keys)}

    def sync_buffers(self, *modules: nn.Module | None) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics, which each rank updates on its
        own batches between DDP's broadcasts), so all ranks hold the same model at checkpoints."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for module in modules:
            if module is not None:
                for buffer in module.buffers():
                    dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier(group=self.control)

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def torchrun_env() -> tuple[int, int, int, int] | None:
    """(rank, world size, local rank, processes on this machine) when started by torchrun with
    more than one process; None otherwise."""
    if not all(k in os.environ for k in ENV):
        return None
    try:
        rank, world, local = (int(os.environ[k]) for k in ENV)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", local + 1))
    except ValueError:
        raise ConfigError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got "
                          f"{', '.join(os.environ[k] for k in ENV)}; start the run with torchrun") from None
    return (rank, world, local, local_world) if world > 1 else None


def start(device: torch.device) -> tuple[Dist, torch.device]:
    """Join torchrun's process group when there is one: the Dist and this process's device
    (``cuda:LOCAL_RANK`` on GPUs). Without torchrun: a Dist of size 1 and ``device`` itself."""
    env = torchrun_env()
    if env is None:
        return Dist(), device
    rank, world, local_rank, local_world = env
    import torch.distributed as dist

    if not dist.is_available():
        raise DeviceError("this torch build has no torch.distributed; run without torchrun")
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing and not dist.is_initialized():
        raise ConfigError(f"WORLD_SIZE={world} is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                          f"not; start distributed runs with torchrun")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_world > count:
            raise DeviceError(f"torchrun starts {local_world} processes on this machine but torch sees {count} "
                              f"CUDA device(s); pass --nproc_per_node={count} (one process a GPU) or --device cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if dist.is_initialized():  # train() called inside a job that set the group up itself
        if dist.get_world_size() != world or dist.get_rank() != rank:
            raise ConfigError(f"the process group ({dist.get_rank()} of {dist.get_world_size()}) does not match "
                              f"RANK={rank}, WORLD_SIZE={world}")
        return Dist(rank, world, local_rank, _control_group(device)), device
    if device.type == "cuda":
        if not dist.is_nccl_available():
            raise DeviceError("this torch build has no NCCL for multi-GPU training; use --device cpu (gloo)")
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return Dist(rank, world, local_rank, _control_group(device), owns_group=True), device


def _control_group(device: torch.device):
    """A gloo group for the loop's small CPU-side messages (stop requests, run names, RNG states),
    so they never wait on the GPU stream. On CPU the default (gloo) group serves."""
    if device.type != "cuda":
        return None
    import torch.distributed as dist

    return dist.new_group(backend="gloo")


def weights_digest(*modules: nn.Module | None) -> str:
    """sha256 of the modules' state_dicts (names, dtypes, shapes and bytes): equal digests on two
    ranks mean bit-identical weights and buffers."""
    h = hashlib.sha256()
    for i, module in enumerate(modules):
        if module is None:
            continue
        for name, t in module.state_dict().items():
            t = t.detach().cpu().contiguous()
            h.update(f"{i}.{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
