"""Multi-process training with `torchrun`: process group, batch norm across ranks, sync checks.

`torchrun --nproc_per_node N -m gan train ...` sets RANK, WORLD_SIZE and LOCAL_RANK; a plain
`python -m gan train` is a world of one and none of this costs anything. Backends: NCCL on
GPUs, gloo on CPUs (which is what the tests use).

Design: every rank runs the same loop on its slice of each global batch (see
`gan.data.batches`); DistributedDataParallel averages the gradients, so all ranks hold the same
weights, optimiser state and random-number streams, and only rank 0 writes the run folder.
"""

from __future__ import annotations

import datetime
import functools
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import nn

from gan.errors import GanError


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def current_world() -> World:
    """The world this process belongs to (a world of one outside torchrun)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return World()


def init_from_environment(device_request: str) -> World:
    """Join the process group torchrun describes in the environment, once per process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World()
    if dist.is_initialized():
        return current_world()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_request != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return current_world()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """Batch norm with statistics over the global batch, on any backend.

    torch.nn.SyncBatchNorm does this on GPUs only; this version (two differentiable all-reduces
    per layer) serves CPU runs, so the generator normalises exactly as a single process would.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.shape[0] * x.shape[2] * x.shape[3]], dtype=torch.float32, device=x.device)
        count = _sum_over_ranks(count)
        xf = x.float()
        mean = _sum_over_ranks(xf.sum(dims)) / count
        centred = xf - mean[None, :, None, None]
        var = _sum_over_ranks(centred.square().sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """All-reduce that gradients flow back through (the functional collectives have autograd)."""
    return funcol.wait_tensor(funcol.all_reduce(tensor, "sum", dist.group.WORLD))


def convert_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm2d normalise over the global batch: SyncBatchNorm on CUDA, else ours."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                            child.track_running_stats).to(device)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement)
        else:
            convert_batchnorm(child, device)
    return module


def all_mean(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean over ranks of each scalar (every rank gets the same numbers, so every rank makes
    the same decisions, e.g. to stop on a diverged loss)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1) or not values:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].float() for k in keys])
    dist.all_reduce(stacked)
    stacked /= dist.get_world_size()
    return dict(zip(keys, stacked))


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on at least one (a stop request that reached one
    process stops all of them at the same step).

    Called every step, so it runs on the CPU over gloo: an NCCL all-reduce would make the host
    wait for the GPU each step.
    """
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_cpu_group())
    return bool(value.item())


@functools.cache
def _cpu_group():
    """A gloo group over all ranks for small host-side agreements (the world group itself under gloo)."""
    return dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


def weights_digest(*modules: nn.Module) -> torch.Tensor:
    """Two float64 numbers that differ when any parameter or buffer differs (in practice)."""
    total = torch.zeros(2, dtype=torch.float64)
    for module in modules:
        for i, tensor in enumerate(list(module.parameters()) + list(module.buffers())):
            t = tensor.detach().double().flatten().cpu()
            weights = torch.arange(1, t.numel() + 1, dtype=torch.float64).mul_(1e-6).add_(i + 1)
            total += torch.stack([t.sum(), (t * weights).sum()])
    return total


def check_in_sync(step: int, *modules: nn.Module) -> None:
    """Raise on every rank if the ranks' weights have drifted apart (they never should)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return
    digest = weights_digest(*modules)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    gathered = [torch.empty_like(digest, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, digest.to(device))
    if any(not torch.equal(g.cpu(), gathered[0].cpu()) for g in gathered):
        raise GanError(f"step {step}: the {len(gathered)} training processes hold different weights "
                       f"(digests {[g.tolist() for g in gathered]}); this is a bug, please report it")

