"""Random training batches from decoded images: in memory, or memory-mapped from a pack.

Every step draws the indices of the *global* batch from one seeded generator that all ranks
share, and each rank takes its own contiguous slice. So a run on N processes sees exactly the
batches a single process would (the data is sharded per step, never duplicated), and resuming
on a different number of processes continues the same stream.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from gan.errors import GanError

# Sets up to this size move to the GPU whole; bigger ones (packs of real data) stay in host
# memory or on disk, and each batch's rows are gathered there and copied over.
DEVICE_RESIDENT_BYTES = 2 << 30


def rank_slice(batch_size: int, rank: int, world_size: int) -> slice:
    """Which rows of each global batch this rank trains on."""
    if batch_size % world_size:
        raise GanError(f"--batch-size {batch_size} (the global batch) must be a multiple of the "
                       f"{world_size} training processes")
    return slice(rank * batch_size // world_size, (rank + 1) * batch_size // world_size)


def tag_weights(tags: np.ndarray) -> np.ndarray:
    """Multi-hot tag sets (N, G) -> weights (N, G) float32 that share 1 equally among each cover's tags."""
    weights = tags.astype(np.float32)
    return weights / weights.sum(axis=1, keepdims=True)


class RandomBatches:
    """Uniform random batches (with replacement across steps), as float in [-1, 1], with each
    cover's genre: its index, or with `tags` (multi-tag data, see `gan.tags`) its tag set as a row
    of weights over the genres that share 1 equally, which the networks and the genre loss (as
    target probabilities) take as they are.

    With `group_size` g > 1 (and labels), the batch is drawn as runs of g covers of one genre: each
    run's first cover is drawn uniformly (so genres come as often as in the data) and the other
    g - 1 uniformly among the covers of its genre. The discriminator's minibatch statistics are
    taken over such runs (`gan.models.common.minibatch_stddev`), so they compare how much real
    covers of a genre vary with how much the generator's do.

    On a GPU, a set that does not fit there (a pack of real covers) is gathered on the host one
    batch ahead, in a background thread, into pinned memory and copied asynchronously, so that
    reading the next batch's rows from disk overlaps the current step. `prefetch` forces that on
    or off (None: on exactly then). The random stream `rng` always stands after the batches handed
    out, prefetching or not, so checkpoints and resumes see the same stream either way.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, batch_size: int, seed: int,
                 device: torch.device, rank: int = 0, world_size: int = 1, channels_last: bool = False,
                 prefetch: bool | None = None, group_size: int = 1, tags: np.ndarray | None = None):
        self.batch_size, self.device, self.channels_last = batch_size, device, channels_last
        self.local = rank_slice(batch_size, rank, world_size)
        self.images = torch.from_numpy(images)
        self.labels = None
        if labels is not None:
            self.labels = torch.from_numpy(tag_weights(tags) if tags is not None else labels)
        self.group_size = group_size if labels is not None and group_size > 1 else 1
        if batch_size % self.group_size:
            raise GanError(f"--batch-size {batch_size} must be a multiple of the genre groups' size {self.group_size}")
        if self.group_size > 1:  # each cover's main genre and each genre's rows, on the host where indices are drawn
            self.genre_of = torch.from_numpy(labels)
            self.by_genre = torch.from_numpy(np.argsort(labels, kind="stable"))
            counts = np.bincount(labels)
            self.genre_start = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
            self.genre_count = torch.from_numpy(counts)
        on_host = isinstance(images, np.memmap) or images.nbytes > DEVICE_RESIDENT_BYTES
        if device.type == "cuda" and not on_host:  # avoids a host copy per step
            self.images = self.images.to(device)
            self.labels = self.labels.to(device) if self.labels is not None else None
        self.pin = device.type == "cuda" and on_host
        self.rng = torch.Generator().manual_seed(seed)
        prefetch = self.pin if prefetch is None else prefetch
        self.prefetcher = ThreadPoolExecutor(1, thread_name_prefix="batches") if prefetch else None
        self.pending: tuple[torch.Tensor, Future] | None = None  # the next batch's indices and its rows

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = self._draw(self.rng)
        if self.pending is not None and torch.equal(self.pending[0], index):
            real, labels = self.pending[1].result()
        else:  # no prefetching, the first batch, or the stream was set back (a resume)
            real, labels = self._gather(index)
        if self.prefetcher is not None:
            lookahead = torch.Generator().set_state(self.rng.get_state())
            following = self._draw(lookahead)
            self.pending = following, self.prefetcher.submit(self._gather, following)
        real = real.float().div_(127.5).sub_(1)
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        return real, labels

    def _draw(self, rng: torch.Generator) -> torch.Tensor:
        """This rank's rows of the next global batch."""
        if self.group_size == 1:
            return torch.randint(len(self.images), (self.batch_size,), generator=rng)[self.local]
        first = torch.randint(len(self.images), (self.batch_size // self.group_size, 1), generator=rng)
        genre = self.genre_of[first]
        offset = (torch.rand(len(first), self.group_size - 1, generator=rng) * self.genre_count[genre]).long()
        rest = self.by_genre[self.genre_start[genre] + offset.clamp_max(self.genre_count[genre] - 1)]
        return torch.cat([first, rest], dim=1).flatten()[self.local]

    def _gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The rows' uint8 images and their labels, on the training device."""
        # index_select copies whole rows; advanced indexing of uint8 images is ~30x slower.
        real = torch.index_select(self.images, 0, index.to(self.images.device))
        if self.pin:
            real = real.pin_memory()
        real = real.to(self.device, non_blocking=True)
        labels = (torch.index_select(self.labels, 0, index.to(self.labels.device)).to(self.device)
                  if self.labels is not None else None)
        return real, labels

    def close(self) -> None:
        """Stop the prefetching thread (it also ends with the process)."""
        if self.prefetcher is not None:
            self.prefetcher.shutdown(wait=True, cancel_futures=True)
            self.prefetcher, self.pending = None, None
