"""Residual generator and discriminator (`architecture: resnet`, the default).

The SNGAN / BigGAN family (Miyato et al., 2018; Brock et al., 2019), as PyTorch-StudioGAN sets it up
for conditional generation, scaled to what trains in an hour on two CPU cores:

* Generator: a linear layer maps the noise to a 4x4 seed; each block doubles the resolution with
  nearest-neighbour (or, with `upsample: bilinear`, bilinear) upsampling and two 3x3 convolutions (a
  residual block; the skip path upsamples and mixes channels with a 1x1 convolution). Upsampling
  before convolving spreads every input pixel evenly over the output, so there is no checkerboard
  texture of the kind 4x4 transposed convolutions with stride 2 leave. The genre enters every batch
  norm (conditional batch norm): its embedding sets a per-channel gain and shift, so it changes
  style at every scale while the noise keeps the layout (the same noise gives the same composition
  in every genre); with `noise_in_norms` the noise adds to that gain and shift too (BigGAN's
  skip-z). With `coordinate_channels`, each block's first convolution also sees every pixel's x and
  y; with `coordinate_frequencies`, sines and cosines of them too, in a frame the noise turns and
  shifts (`ShiftedWaves`); with `generator_spectral_norm`, its layers are spectrally normalised as
  the discriminator's are.
* Discriminator: residual blocks of spectrally normalised 3x3 convolutions with average pooling
  down to 4x4, where the minibatch standard deviation is appended (a collapsed generator's
  batch varies less than a real one), one more 3x3 convolution, and a sum over positions. Two
  heads read those features: realness, which includes a projection term (the inner product of a
  learned genre embedding with the features: Miyato & Koyama, 2018) so that a cover is judged
  real *for its genre*, and the genre classifier, which gives the generator its genre signal
  (AC-GAN's softmax, or ReACGAN's contrastive head: `gan.models.genre_heads`).

Widths: `width` w gives the generator 8w channels at 4x4 and 8x8 halving to w at full resolution,
and the discriminator w at its first block doubling to 8w. `generator_min_channels` puts a floor
under the generator's channels, `discriminator_min_channels` one under the discriminator's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.config import ModelConfig
from gan.models.common import Discriminator, Generator, embed_genres, minibatch_stddev
from gan.models.genre_heads import build_genre_head


def channel_ladder(config: ModelConfig) -> list[int]:
    """Channels at 4x4, 8x8, ... up to full resolution, widest first (8w, 8w, 4w, 2w, w at 64 px)."""
    blocks = int(math.log2(config.resolution)) - 2
    return [config.width * min(8, 2 ** (blocks - i)) for i in range(blocks + 1)]


def generator_channels(config: ModelConfig) -> list[int]:
    """The generator's channels: the ladder, none below `generator_min_channels`."""
    return [max(channels, config.generator_min_channels) for channels in channel_ladder(config)]


def discriminator_channels(config: ModelConfig) -> list[int]:
    """The discriminator's channels, first block first (w, 2w, 4w, 8w at 64 px), none below
    `discriminator_min_channels`."""
    return [max(channels, config.discriminator_min_channels) for channels in reversed(channel_ladder(config)[1:])]


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose gain and shift also depend on a condition vector (the genre embedding) and,
    with `noise_dim`, on the cover's noise vector (`ModelConfig.noise_in_norms`).

    Both contributions start at zero (zero-initialised projections), so a conditional model seeded
    from an unconditional one starts as exactly that model; the plain batch-norm affine parameters
    carry over by name, and so do the noise's projections, which pre-training has too.
    """

    def __init__(self, channels: int, condition_dim: int, noise_dim: int = 0):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.gain = nn.Linear(condition_dim, channels, bias=False) if condition_dim else None
        self.shift = nn.Linear(condition_dim, channels, bias=False) if condition_dim else None
        self.noise_gain = nn.Linear(noise_dim, channels, bias=False) if noise_dim else None
        self.noise_shift = nn.Linear(noise_dim, channels, bias=False) if noise_dim else None
        for layer in self.projections():
            nn.init.zeros_(layer.weight)

    def projections(self) -> list[nn.Linear]:
        """The layers that start at zero: what the genre and the noise add to the gain and shift."""
        return [layer for layer in (self.gain, self.shift, self.noise_gain, self.noise_shift) if layer is not None]

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        gain, shift = [], []
        if self.gain is not None and condition is not None:
            gain.append(self.gain(condition))
            shift.append(self.shift(condition))
        if self.noise_gain is not None:
            gain.append(self.noise_gain(noise))
            shift.append(self.noise_shift(noise))
        if not gain:
            return x
        gain = sum(gain).to(x.dtype)[:, :, None, None]
        shift = sum(shift).to(x.dtype)[:, :, None, None]
        return x * (1 + gain) + shift


class PixelNoise(nn.Module):
    """Per-pixel grain added to a layer's features, its strength learned per channel and per genre.

    Covers carry fine texture (film grain, print noise) that is random pixel by pixel. A generator
    can only make it up from its noise vector through many layers, and blurs it instead; StyleGAN
    (Karras et al., 2019) adds a noise image per layer for exactly this. Ours is not drawn afresh
    on every call, so that the same noise vector always gives the same cover: each cover takes a
    window of a fixed noise field (a buffer saved with the weights), placed by a fixed projection
    of its noise vector. The strength starts at zero: a model seeded from one without grain starts
    as that model.
    """

    def __init__(self, channels: int, resolution: int, latent_dim: int, condition_dim: int):
        super().__init__()
        field_rng = torch.Generator().manual_seed(resolution)
        self.register_buffer("field", torch.randn(2 * resolution, 2 * resolution, generator=field_rng))
        self.register_buffer("placement", torch.randn(latent_dim, 2, generator=field_rng))
        self.strength = nn.Parameter(torch.zeros(channels))
        self.genre_strength = nn.Linear(condition_dim, channels, bias=False) if condition_dim else None
        if self.genre_strength is not None:
            nn.init.zeros_(self.genre_strength.weight)

    def forward(self, x: torch.Tensor, noise: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        n, _, h, w = x.shape
        # Where each cover's window lies: a fixed function of its noise vector, spread evenly. Rounded
        # down, so a last-bit difference in the product can move the window a pixel: float64 keeps the
        # product out of autocast's bf16 (training) and TF32 (GPU), and its rounding far from the edges.
        placed = noise.double() @ self.placement.double()
        offsets = (placed.remainder(1.0) * (self.field.shape[0] - h)).long()
        rows = offsets[:, :1] + torch.arange(h, device=x.device)  # (N, H)
        cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # (N, W)
        grain = self.field[rows[:, :, None], cols[:, None, :]].to(x.dtype)  # (N, H, W)
        strength = self.strength[None, :]
        if self.genre_strength is not None and condition is not None:
            strength = strength + self.genre_strength(condition)
        return x + strength.to(x.dtype)[:, :, None, None] * grain[:, None]


def pixel_coordinates(h: int, w: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's column (1, W) and row (H, 1), from -1 to 1: they broadcast to (H, W)."""
    cols = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype)[None, :]
    rows = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype)[:, None]
    return cols, rows


def with_coordinates(x: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) with two channels appended: each pixel's column and row, from -1 to 1."""
    n, _, h, w = x.shape
    cols, rows = pixel_coordinates(h, w, x.device, x.dtype)
    grid = torch.stack([cols.expand(h, w), rows.expand(h, w)])
    return torch.cat([x, grid.expand(n, 2, h, w)], dim=1)


class ShiftedWaves(nn.Module):
    """Sines and cosines of each pixel's x and y at 1, 2, 4, ... periods across the cover, in a frame
    that each cover turns and shifts as a linear map of its noise vector says.

    Stripes, rings and thin lines are periodic or nearly so, and what tells one such cover from
    another is where the lines fall and which way they run: a phase and an angle. A convolution
    only adds fixed position channels to its features, so from raw coordinates it can draw lines at
    fixed places, and moving or turning them with the noise takes several layers of thresholds. In a
    frame that the noise turns (one angle per cover) and shifts (a phase per wave), the same sine is a
    stripe at whatever angle and offset the noise asks for, in one step: Fourier features with a
    per-cover rotation and translation, as StyleGAN3's input layer (Karras et al., 2021) and CIPS
    (Anokhin et al., 2021) give their generators. With `rings`, waves of the distance from a
    centre the noise places are added too: concentric rings, a disc's edge, a record's grooves,
    which neither raw coordinates nor straight waves make in one step. One module serves every
    block, so the frame is the same at every scale; a block gets only the periods of at least four
    of its pixels (finer ones would alias into a coarse pattern). The map starts at zero: upright,
    unshifted waves, rings about the middle.

    With `condition_dim`, each genre scales each wave (a gain per direction and octave, read off the
    genre's embedding, starting at 1): the waves serve every genre alike otherwise, and a genre whose
    covers hold no stripes or rings (classical's plain fields) gets them anyway, as faint lattices.
    """

    def __init__(self, octaves: int, latent_dim: int, rings: bool = False, condition_dim: int = 0):
        super().__init__()
        self.octaves = octaves
        self.rings = rings
        # Read off the noise: the frame's angle, x's and y's phase per octave, and with rings their
        # centre (x, y) and a phase per octave. Rings come last, so the rest keeps its rows.
        self.pose = nn.Linear(latent_dim, 1 + 2 * octaves + (2 + octaves) * rings, bias=False)
        nn.init.zeros_(self.pose.weight)
        # Rows: x's octaves, y's, then the rings'. Zero: a gain of 1 for every genre, the waves as without it.
        self.genre_gain = nn.Linear(condition_dim, (2 + rings) * octaves, bias=False) if condition_dim else None
        if self.genre_gain is not None:
            nn.init.zeros_(self.genre_gain.weight)

    def octaves_at(self, resolution: int) -> int:
        return sum(1 for k in range(self.octaves) if 4 * 2 ** k <= resolution)

    def channels_at(self, resolution: int) -> int:
        return (4 + 2 * self.rings) * self.octaves_at(resolution)

    def forward(self, x: torch.Tensor, noise: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """x (N, C, H, W) with the waves appended: (N, C + channels_at(H), H, W); `condition` (N, condition_dim)
        is the genre embedding that scales them, if the module has genre gains."""
        n, _, h, w = x.shape
        octaves = self.octaves_at(h)
        # In float32 whatever autocast runs in: a bf16 angle of several radians is off by a pixel's worth.
        with torch.autocast(x.device.type, enabled=False):
            pose = self.pose(noise.float())[:, :, None, None]
            turn = pose[:, 0]
            phase = pose[:, 1:1 + 2 * self.octaves].view(n, 2, self.octaves, 1, 1)[:, :, :octaves]
            cols, rows = (axis[None] for axis in pixel_coordinates(h, w, x.device, torch.float32))
            along = cols * turn.cos() + rows * turn.sin()  # (N, H, W): x in the turned frame
            across = rows * turn.cos() - cols * turn.sin()  # y in it
            frequencies = math.pi * 2.0 ** torch.arange(octaves, device=x.device)[None, :, None, None]
            angles = [frequencies * along[:, None] + phase[:, 0],  # (N, octave, H, W)
                      frequencies * across[:, None] + phase[:, 1]]
            if self.rings:
                ring = pose[:, 1 + 2 * self.octaves:]
                radius = ((cols - ring[:, 0]) ** 2 + (rows - ring[:, 1]) ** 2).sqrt()  # from the centre
                angles.append(frequencies * radius[:, None] + ring[:, 2:2 + octaves])
            waves = torch.cat([part for angle in angles for part in (angle.sin(), angle.cos())], dim=1)
            if self.genre_gain is not None and condition is not None:
                gain = 1.0 + self.genre_gain(condition.float()).view(n, len(angles), 1, self.octaves)
                # The same gain for a wave's sine and cosine, in the order the waves were stacked.
                gain = gain[..., :octaves].expand(n, len(angles), 2, octaves).reshape(n, -1, 1, 1)
                waves = waves * gain
        return torch.cat([x, waves.to(x.dtype)], dim=1)


class UpBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, condition_dim: int, grain: PixelNoise | None = None,
                 coordinates: bool = False, wave_channels: int = 0, noise_dim: int = 0, upsample: str = "nearest"):
        super().__init__()
        self.coordinates = coordinates
        self.upsample = upsample  # ModelConfig.upsample
        self.wave_channels = wave_channels  # the generator's ShiftedWaves at this block's resolution
        # No biases: every convolution here feeds a batch norm (the next one, or to_rgb's), which
        # removes any constant. Such a bias has no gradient but float rounding, and Adam, dividing by
        # its size, would walk it at random by up to a learning rate per step.
        self.norm1 = ConditionalBatchNorm(c_in, condition_dim, noise_dim)
        self.conv1 = nn.Conv2d(c_in + 2 * coordinates + wave_channels, c_out, 3, padding=1, bias=False)
        self.norm2 = ConditionalBatchNorm(c_out, condition_dim, noise_dim)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.grain = grain

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None, noise: torch.Tensor,
                waves: ShiftedWaves | None = None) -> torch.Tensor:
        h = self.double(F.relu(self.norm1(x, condition, noise)))
        if self.coordinates:
            h = with_coordinates(h)
        if self.wave_channels:
            h = waves(h, noise, condition)
        h = self.conv2(F.relu(self.norm2(self.conv1(h), condition, noise)))
        if self.grain is not None:
            h = self.grain(h, noise, condition)
        return h + self.skip(self.double(x))

    def double(self, x: torch.Tensor) -> torch.Tensor:
        """x at twice its height and width."""
        return F.interpolate(x, scale_factor=2.0, mode=self.upsample,
                             align_corners=False if self.upsample == "bilinear" else None)


class ResNetGenerator(Generator):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = generator_channels(config)
        condition_dim = config.genre_embedding_dim if config.num_genres else 0
        self.genre_embedding = nn.Embedding(config.num_genres, condition_dim) if config.num_genres else None
        self.seed = nn.Linear(config.latent_dim, channels[0] * 16, bias=False)  # a batch norm follows
        # Grain at full resolution only: it is texture of single pixels.
        grain = (PixelNoise(channels[-1], config.resolution, config.latent_dim, condition_dim)
                 if config.pixel_noise else None)
        self.waves = (ShiftedWaves(config.coordinate_frequencies, config.latent_dim, config.coordinate_rings,
                                   condition_dim if config.coordinate_genre_gains else 0)
                      if config.coordinate_frequencies else None)
        self.blocks = nn.ModuleList(
            UpBlock(a, b, condition_dim, grain if i == len(channels) - 2 else None, config.coordinate_channels,
                    self.waves.channels_at(8 * 2 ** i) if self.waves is not None else 0,
                    config.latent_dim if config.noise_in_norms else 0, config.upsample)
            for i, (a, b) in enumerate(zip(channels, channels[1:])))
        self.to_rgb = nn.Sequential(nn.BatchNorm2d(channels[-1]), nn.ReLU(),
                                    nn.Conv2d(channels[-1], 3, 3, padding=1), nn.Tanh())
        conditional_parts = {layer for m in self.modules() if isinstance(m, ConditionalBatchNorm)
                             for layer in m.projections()}
        conditional_parts |= {m.genre_strength for m in self.modules() if isinstance(m, PixelNoise)}
        conditional_parts |= {layer for m in self.modules() if isinstance(m, ShiftedWaves)
                              for layer in (m.pose, m.genre_gain) if layer is not None}
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in conditional_parts:  # those start at 0
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if config.generator_spectral_norm:
            # A pass of its own, after every weight is drawn: spectral_norm draws its power-iteration
            # vectors from the same generator, and interleaving them would change every initial weight
            # (and the measured runs of README row 19 with them).
            for module in list(self.modules()):
                if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in conditional_parts:
                    spectral_norm(module)

    def first_features(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        return self.seed(noise)

    def forward_embedded(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        x = self.seed(noise).view(len(noise), -1, 4, 4)
        condition = embedding.to(noise.dtype) if embedding is not None else None
        for block in self.blocks:
            x = block(x, condition, noise, self.waves)
        return self.to_rgb(x)


class DownBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, first: bool):
        super().__init__()
        # The first block sees the image itself: no activation before its first convolution.
        self.first = first
        self.conv1 = spectral_norm(nn.Conv2d(c_in, c_out, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        # Pool before the 1x1 skip convolution on the image (cheaper, same result), after it elsewhere.
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return h + skip


class ResNetDiscriminator(Discriminator):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = discriminator_channels(config)
        self.blocks = nn.Sequential(*(DownBlock(a, b, first=i == 0)
                                      for i, (a, b) in enumerate(zip([3, *channels], channels))))
        features = channels[-1]
        self.last = spectral_norm(nn.Conv2d(features + 1, features, 3, padding=1))  # +1: minibatch stddev
        self.adversarial_head = spectral_norm(nn.Linear(features, 1))
        self.genre_head = build_genre_head(config, features)
        self.genre_projection = (spectral_norm(nn.Embedding(config.num_genres, features))
                                 if config.num_genres and config.projection else None)

    def forward(self, images: torch.Tensor, genres: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = F.relu(self.blocks(images))
        x = F.relu(self.last(minibatch_stddev(x, self.stddev_group)))
        features = x.sum(dim=(2, 3))
        realness = self.adversarial_head(features).squeeze(1)
        if self.genre_projection is not None:
            if genres is None:
                raise ValueError("a projection discriminator needs the genre of each image")
            realness = realness + (embed_genres(self.genre_projection, genres) * features).sum(1)
        genre_output = self.genre_head(features) if self.genre_head is not None else None
        return realness, genre_output
