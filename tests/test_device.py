"""`--precision auto` per device: what each machine computes fastest (see gan.train.device)."""

import pytest
import torch

from gan.errors import GanError
from gan.train import device as device_module
from gan.train.device import CUDA_BF16_MIN_BATCH, resolve_precision

CUDA = torch.device("cuda", 0)  # a device object only: nothing runs on it


def test_auto_on_a_gpu_is_fp32_for_launch_bound_batches_and_bf16_for_large_ones(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", CUDA, 64) is None
    assert resolve_precision("auto", CUDA, CUDA_BF16_MIN_BATCH - 1) is None
    assert resolve_precision("auto", CUDA, CUDA_BF16_MIN_BATCH) is torch.bfloat16
    assert resolve_precision("auto", CUDA) is torch.bfloat16  # no batch given: the large-batch choice
    assert resolve_precision("bf16", CUDA, 64) is torch.bfloat16  # asked for: always honoured
    assert resolve_precision("fp32", CUDA, 4096) is None


def test_a_gpu_without_bf16_trains_in_fp32_and_refuses_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", CUDA, 4096) is None
    with pytest.raises(GanError, match="this GPU does not support bf16"):
        resolve_precision("bf16", CUDA, 4096)


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_the_cpu_follows_native_bf16_whatever_the_batch(monkeypatch, native):
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")
    expected = torch.bfloat16 if native else None
    assert resolve_precision("auto", cpu, 8) is expected
    assert resolve_precision("auto", cpu, 4096) is expected
    assert resolve_precision("fp32", cpu, 64) is None
