"""Differentiable augmentation of what the discriminator sees (DiffAugment, Zhao et al., 2020).

With a few thousand covers per genre the discriminator soon memorises the real ones: its
realness score is then much higher on training covers than on unseen covers of the same kind,
and its gradient tells the generator "be these covers" rather than "be covers like these". We
shift and cut out every image D sees, real and fake alike, in D's step and in G's step, so D
cannot memorise and G cannot win by producing augmented-looking covers (the augmentations are
differentiable, so G is trained through them). Only geometry is augmented: colour is what sets
the genres apart, and D's genre heads must keep seeing it unchanged.

Random draws are made for the global batch and sliced per rank, like the noise, so N processes
augment exactly as one process would.
"""

from __future__ import annotations

import torch

from gan.config import AUGMENTATIONS


def translate(images: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor, reach: int) -> torch.Tensor:
    """Shift each image by whole pixels (N,) x (N,), at most `reach` either way, filling the
    uncovered border with zeros (mid-grey).

    The padding is the bound `reach`, not the largest shift drawn: reading that from the tensors
    would wait for the GPU at every call, three times per training step.
    """
    n, _, h, w = images.shape
    if reach == 0:
        return images
    padded = torch.nn.functional.pad(images, (reach, reach, reach, reach))
    rows = torch.arange(h, device=images.device)[None, :] + reach - shift_y[:, None]  # (N, H)
    cols = torch.arange(w, device=images.device)[None, :] + reach - shift_x[:, None]  # (N, W)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # Advanced indexing on dims 0, 2, 3 puts them first: (N, H, W, C) -> back to (N, C, H, W).
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def cut_out(images: torch.Tensor, centre_y: torch.Tensor, centre_x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero a size x size square around each image's centre (N,) x (N,); squares may overhang the edge."""
    _, _, h, w = images.shape
    y = torch.arange(h, device=images.device)[None, :] - centre_y[:, None]  # (N, H)
    x = torch.arange(w, device=images.device)[None, :] - centre_x[:, None]
    inside_y = (y >= -(size // 2)) & (y < size - size // 2)
    inside_x = (x >= -(size // 2)) & (x < size - size // 2)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])  # (N, H, W)
    return images * keep[:, None].to(images.dtype)


class DiffAugment:
    """Applies a policy to batches; each call draws fresh parameters from `rng` for the global batch."""

    def __init__(self, policy: tuple[str, ...], rng: torch.Generator, global_batch: int, local: slice):
        assert set(policy) <= set(AUGMENTATIONS), policy  # TrainConfig.validate names the bad ones
        self.policy, self.rng, self.global_batch, self.local = policy, rng, global_batch, local

    def _draw(self, low: int, high: int) -> torch.Tensor:
        """Integers in [low, high) for the whole global batch; this rank's slice of them."""
        device = self.rng.device
        return torch.randint(low, high, (self.global_batch,), generator=self.rng, device=device)[self.local]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        _, _, h, w = images.shape
        if "translation" in self.policy:  # up to 1/8 of the side, as in DiffAugment
            reach = min(h, w) // 8
            shift_y, shift_x = self._draw(-reach, reach + 1), self._draw(-reach, reach + 1)
            images = translate(images, shift_y.to(images.device), shift_x.to(images.device), reach)
        if "cutout" in self.policy:  # a square of half the side, anywhere
            centre_y, centre_x = self._draw(0, h), self._draw(0, w)
            images = cut_out(images, centre_y.to(images.device), centre_x.to(images.device), h // 2)
        return images
