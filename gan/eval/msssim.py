"""Pairwise MS-SSIM over one image set, computing each image's share of the work once.

MS-SSIM (Wang et al., 2003) of a pair needs, at every scale, Gaussian-filtered means and
variances of both images and the filtered cross product. Across many pairs of the same set,
the means, variances and pyramids belong to single images: we compute them once per image and
per pair only filter the cross product. The result equals `pytorch_msssim.ms_ssim` (same
window, constants, pooling and ReLU clamping), which the tests check to 1e-5.

Sizes: pytorch-msssim needs a side above (win_size - 1) * 16 for its five scales. We use a 3x3
window at 64 px, a 7x7 window at 128 px and larger, and for smaller images (32 px) upscale
bilinearly to 64 px first; `settings_for` records the choice, and every output records it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gan.errors import GanError

DEFAULT_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class MsssimSettings:
    win_size: int = 3
    win_sigma: float = 1.5
    data_range: float = 255.0
    weights: tuple[float, ...] = DEFAULT_WEIGHTS
    K: tuple[float, float] = (0.01, 0.03)
    upscale_to: int | None = None  # images smaller than this are upscaled (bilinear) first

    def to_dict(self) -> dict:
        return asdict(self)


def settings_for(resolution: int) -> MsssimSettings:
    """The MS-SSIM settings we use for a square image side."""
    if resolution >= 128:
        return MsssimSettings(win_size=7)
    if resolution > 32:
        return MsssimSettings(win_size=3)
    return MsssimSettings(win_size=3, upscale_to=64)


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float) - size // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter along H and W; skips an axis shorter than the window, as pytorch-msssim does.

    Written as a sum of shifted slices: for windows of 3 to 11 taps this is several times faster
    on the CPU than a grouped convolution, and equal to it up to float rounding.
    """
    taps = [float(t) for t in window]
    size = len(taps)
    for axis in (2, 3):
        length = x.shape[axis]
        if length < size:
            continue
        out = x.narrow(axis, 0, length - size + 1) * taps[0]
        for k in range(1, size):
            out.add_(x.narrow(axis, k, length - size + 1), alpha=taps[k])
        x = out
    return x


def prepare(images: np.ndarray | torch.Tensor, settings: MsssimSettings) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (N, 3, H, W), or a list of (H, W, 3) -> float (N, 3, H, W) in [0, data_range]."""
    images = stack_images(images)
    x = torch.as_tensor(images)
    if x.ndim != 4:
        raise GanError(f"expected a batch of images (N, H, W, 3), got shape {tuple(x.shape)}")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    x = x.float()
    if images.dtype == np.uint8 or (isinstance(images, torch.Tensor) and images.dtype == torch.uint8):
        x = x * (settings.data_range / 255.0)
    if settings.upscale_to and min(x.shape[-2:]) < settings.upscale_to:
        x = F.interpolate(x, size=(settings.upscale_to, settings.upscale_to), mode="bilinear", align_corners=False)
    side = min(x.shape[-2:])
    levels = len(settings.weights)
    if side <= (settings.win_size - 1) * 2 ** (levels - 1):
        raise GanError(f"images of {side} px are too small for MS-SSIM with a {settings.win_size}x{settings.win_size} "
                       f"window and {levels} scales")
    return x.contiguous()


def stack_images(images) -> np.ndarray | torch.Tensor:
    """A list of same-sized images as one array; mixed sizes are a user error, named with the sizes."""
    if isinstance(images, (list, tuple)):
        shapes = sorted({tuple(np.shape(im)) for im in images})
        if len(shapes) > 1:
            raise GanError(f"images of mixed sizes {shapes[:4]}: resize them to one size first")
        if not shapes:
            raise GanError("no images given")
        return np.stack([np.asarray(im) for im in images])
    return images


class PairwiseMsssim:
    """MS-SSIM of any pairs (i, j) of one image set, with per-image work done once.

    The work runs on `device` (default: where `images` are, the CPU for arrays); scores come back on
    the CPU, so callers need not know where they were computed.
    """

    def __init__(self, images: np.ndarray | torch.Tensor | list, settings: MsssimSettings | None = None,
                 device: str | torch.device | None = None):
        images = stack_images(images)
        self.device = torch.device(device) if device is not None else (
            images.device if isinstance(images, torch.Tensor) else torch.device("cpu"))
        x = torch.as_tensor(images)
        side = x.shape[1] if x.shape[-1] == 3 and x.shape[1] != 3 else x.shape[-1]
        self.settings = settings or settings_for(int(side))
        x = prepare(images, self.settings).to(self.device)
        self.count = len(x)
        self.window = gaussian_window(self.settings.win_size, self.settings.win_sigma)
        # Per scale: the images, and their local means and variances stacked as (N, 2C, h, w), so that
        # one gather per side fetches both.
        self.levels: list[tuple[torch.Tensor, torch.Tensor]] = []
        for level in range(len(self.settings.weights)):
            mean = _blur(x, self.window)
            variance = _blur(x * x, self.window) - mean.pow(2)
            self.levels.append((x, torch.cat([mean, variance], dim=1).contiguous()))
            if level < len(self.settings.weights) - 1:
                x = F.avg_pool2d(x, kernel_size=2, padding=[s % 2 for s in x.shape[2:]])
        self.weights = torch.tensor(self.settings.weights, device=self.device)

    def __call__(self, i: torch.Tensor | np.ndarray, j: torch.Tensor | np.ndarray,
                 batch_size: int | None = None) -> torch.Tensor:
        """Scores (P,) on the CPU for pairs i[p], j[p]; memory bounded by `batch_size` pairs at a time
        (default 128 on the CPU, where larger batches leave the cache, 4096 elsewhere)."""
        i, j = torch.as_tensor(i, dtype=torch.long).cpu(), torch.as_tensor(j, dtype=torch.long).cpu()
        if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= self.count):
            raise IndexError(f"pair index out of range for {self.count} images")
        batch_size = batch_size or (128 if self.device.type == "cpu" else 4096)
        i, j = i.to(self.device), j.to(self.device)
        return torch.cat([self._score(i[s:s + batch_size], j[s:s + batch_size]).cpu()
                          for s in range(0, len(i), batch_size)] or [torch.empty(0)])

    def _score(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        c1 = (self.settings.K[0] * self.settings.data_range) ** 2
        c2 = (self.settings.K[1] * self.settings.data_range) ** 2
        factors = []
        last = len(self.levels) - 1
        both = torch.cat([i, j])
        for level, (x, stats) in enumerate(self.levels):
            channels = x.shape[1]
            # index_select is several times faster than x[i] on the CPU; in-place ops save allocations.
            stats_i, stats_j = stats.index_select(0, both).chunk(2)
            mu1, variance1 = stats_i[:, :channels], stats_i[:, channels:]
            mu2, variance2 = stats_j[:, :channels], stats_j[:, channels:]
            x_i, x_j = x.index_select(0, both).chunk(2)
            product = x_i.mul_(x_j)
            mu1_mu2 = mu1 * mu2
            numerator = _blur(product, self.window).sub_(mu1_mu2).mul_(2).add_(c2)  # 2 * covariance + C2
            cs_map = numerator.div_(variance1.add_(variance2).add_(c2))
            if level < last:
                factors.append(torch.relu(cs_map.flatten(2).mean(-1)))
            else:  # the luminance term enters at the coarsest scale only
                luminance = mu1_mu2.mul_(2).add_(c1).div_(mu1.pow(2).add_(mu2.pow(2)).add_(c1))
                factors.append(torch.relu(cs_map.mul_(luminance).flatten(2).mean(-1)))
        stacked = torch.stack(factors)  # (levels, pairs, channels)
        return torch.prod(stacked ** self.weights.view(-1, 1, 1), dim=0).mean(1)


def random_pairs(n: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`count` random pairs of distinct indices i < j, without repeats (all pairs if fewer exist)."""
    total = n * (n - 1) // 2
    if n < 2:
        raise GanError(f"need at least 2 images for pairs, got {n}")
    rng = np.random.default_rng(seed)
    if count >= total:
        return all_pairs(n)
    chosen = np.sort(rng.choice(total, size=count, replace=False))
    return _unrank_pairs(n, chosen)


def all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def _unrank_pairs(n: int, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Rank r enumerates (0,1), (0,2), ..., (0,n-1), (1,2), ...: row i starts at i*n - i*(i+1)/2.
    starts = np.arange(n) * n - np.arange(n) * (np.arange(n) + 1) // 2
    i = np.searchsorted(starts, ranks, side="right") - 1
    j = ranks - starts[i] + i + 1
    return i.astype(np.int64), j.astype(np.int64)


def ms_ssim_pairs(images, i, j, settings: MsssimSettings | None = None, batch_size: int | None = None) -> torch.Tensor:
    """MS-SSIM of pairs (i[p], j[p]) of `images`; see `PairwiseMsssim`."""
    return PairwiseMsssim(images, settings)(i, j, batch_size)
