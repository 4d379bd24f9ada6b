"""Device and precision choices: fast by default, fp32 on request or where bf16 would be emulated."""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path

import torch

from gan.errors import GanError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    if name in ("auto", "cuda") and torch.cuda.is_available():
        # The current GPU, with its index: under torchrun each process has picked its own (LOCAL_RANK).
        return torch.device("cuda", torch.cuda.current_device())
    if name == "auto":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GanError(f"--device {name}: no CUDA GPU is available to this PyTorch; use --device cpu")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GanError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) found")
        return device
    return torch.device(name)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 in hardware (AMX or AVX512-BF16).

    Elsewhere (AVX2-only CPUs, for example) PyTorch emulates bf16 and autocast makes training
    an order of magnitude slower, so `--precision auto` stays in fp32 there.
    """
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


# Below this many images per process a CUDA step is a few hundred small kernels, bound by their
# launches: bf16 autocast adds a cast kernel before most of them and costs more than it saves.
# Measured on an H200 (width 64, 64 px): at batch 64 fp32 ran 1.30x the reference loop and bf16
# 0.93x; at batch 1024 bf16 ran 1.21x. Where between the two bf16 starts to pay was not measured
# (benchmarks/gpu_check.py times 256); 512 sits between the measured points.
CUDA_BF16_MIN_BATCH = 512


def resolve_precision(name: str, device: torch.device, batch_size: int | None = None) -> torch.dtype | None:
    """The autocast dtype to train in, or None for plain fp32.

    `auto`: on a GPU, bf16 where it is supported and the per-process batch is at least
    CUDA_BF16_MIN_BATCH (or not given); on the CPU, bf16 where the CPU computes it natively.
    """
    if name == "fp32":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            if name == "bf16":
                raise GanError("--precision bf16: this GPU does not support bf16; use --precision fp32")
            return None
        if name == "auto" and batch_size is not None and batch_size < CUDA_BF16_MIN_BATCH:
            return None
        return torch.bfloat16
    if name == "bf16" and not cpu_has_native_bf16():
        log.warning("this CPU has no native bf16 (no AMX or AVX512-BF16): bf16 will be emulated and slow")
    return torch.bfloat16 if name == "bf16" or cpu_has_native_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
