"""Random training batches from decoded images: in memory, or memory-mapped from a pack.

Every step draws the indices of the *global* batch from one seeded generator that all ranks
share, and each rank takes its own contiguous slice. So a run on N processes sees exactly the
batches a single process would (the data is sharded per step, never duplicated), and resuming
on a different number of processes continues the same stream.
"""

from __future__ import annotations

import numpy as np
import torch

from gan.errors import GanError

# Sets up to this size move to the GPU whole; bigger ones (packs of real data) stay in host
# memory or on disk, and each batch's rows are gathered there and copied over.
DEVICE_RESIDENT_BYTES = 2 << 30


class RandomBatches:
    """Uniform random batches (with replacement across steps), as float in [-1, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, batch_size: int, seed: int,
                 device: torch.device, rank: int = 0, world_size: int = 1, channels_last: bool = False):
        if batch_size % world_size:
            raise GanError(f"--batch-size {batch_size} (the global batch) must be a multiple of the "
                           f"{world_size} training processes")
        self.batch_size, self.device, self.channels_last = batch_size, device, channels_last
        self.local = slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels) if labels is not None else None
        on_host = isinstance(images, np.memmap) or images.nbytes > DEVICE_RESIDENT_BYTES
        if device.type == "cuda" and not on_host:  # avoids a host copy per step
            self.images = self.images.to(device)
            self.labels = self.labels.to(device) if self.labels is not None else None
        self.rng = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = torch.randint(len(self.images), (self.batch_size,), generator=self.rng)[self.local]
        # index_select copies whole rows; advanced indexing of uint8 images is ~30x slower.
        real = torch.index_select(self.images, 0, index.to(self.images.device))
        real = real.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        labels = (torch.index_select(self.labels, 0, index.to(self.labels.device)).to(self.device)
                  if self.labels is not None else None)
        return real, labels
