"""AC-GAN generator and discriminator for 32, 64 and 128 px covers.

The shapes follow DCGAN (Radford et al., 2016): the generator doubles the resolution with
4x4 transposed convolutions from a 4x4 seed, with batch norm and ReLU; the discriminator
halves it with strided 4x4 convolutions and LeakyReLU. Two changes for stability:

* every discriminator layer is spectrally normalised (Miyato et al., 2018), which bounds
  its Lipschitz constant and lets us train with the hinge loss without batch norm in D;
* the discriminator sees the spread of its batch (the minibatch standard deviation of ProGAN,
  Karras et al., 2018), so a generator that gives one image per genre whatever the noise is
  easy to catch: this is what keeps AC-GAN's genres from collapsing;
* the genre enters the generator as a learned embedding concatenated to the noise, so the
  same noise across genres keeps its layout while the genre changes the style (as in the
  AC-GAN of Odena et al., 2017, and the cover-art work this project follows);
* with `projection` on, the discriminator's realness score also depends on the genre: the
  inner product of a learned genre embedding with its features is added to the score (the
  projection discriminator of Miyato & Koyama, 2018). AC-GAN's realness alone is genre-blind,
  so a generator may settle on a few covers per genre that pass as real *somewhere* and that
  the classifier head files correctly; the projection term lets D judge each genre's covers
  against that genre's real ones. The classifier head stays (it is still an AC-GAN). Off by
  default: on the demo covers it did not help (see the README's training choices).

An unconditional model (no genres, used for pre-training) has the same layers minus the
embedding and the classifier head, so its weights carry over into a conditional one.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.config import ModelConfig


def _stage_channels(config: ModelConfig) -> list[int]:
    """Channels at 4x4, 8x8, ... up to half the output resolution, widest first."""
    stages = int(math.log2(config.resolution)) - 2  # number of 2x upsamplings from 4x4
    return [config.width * min(8, 2 ** (stages - 1 - i)) for i in range(stages)]


class Generator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = _stage_channels(config)
        embedding_dim = config.genre_embedding_dim if config.num_genres else 0
        self.genre_embedding = nn.Embedding(config.num_genres, embedding_dim) if config.num_genres else None
        if self.genre_embedding is not None:
            # Small initial embeddings: a fine-tuned model starts close to its pre-trained self.
            nn.init.normal_(self.genre_embedding.weight, std=0.02)
        self.seed = nn.Sequential(
            nn.ConvTranspose2d(config.latent_dim + embedding_dim, channels[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:]):
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1), nn.Tanh())
        self.apply(_dcgan_init)

    def forward(self, noise: torch.Tensor, genres: torch.Tensor | None = None) -> torch.Tensor:
        """Noise (N, latent_dim) and genre indices (N,) -> images (N, 3, R, R) in [-1, 1]."""
        return self.forward_embedded(noise, self.embed(genres, noise.shape[0]))

    def embed(self, genres: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.genre_embedding is None:
            return None
        if genres is None:
            raise ValueError("a conditional generator needs genre indices")
        return self.genre_embedding(genres.expand(n) if genres.dim() == 0 else genres)

    def forward_embedded(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        """Like forward, with genre embeddings given directly (blends of genres, for example)."""
        x = noise if embedding is None else torch.cat([noise, embedding.to(noise.dtype)], dim=1)
        x = self.seed(x[:, :, None, None])
        return self.to_rgb(self.blocks(x))


class Discriminator(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = list(reversed(_stage_channels(config)))
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(3, channels[0], 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        for c_in, c_out in zip(channels, channels[1:]):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        feature_size = (channels[-1] + 1) * 4 * 4  # +1: the minibatch standard deviation channel
        self.adversarial_head = spectral_norm(nn.Linear(feature_size, 1))
        # The classifier head is not spectrally normalised: it is trained with cross-entropy,
        # which needs logits free to grow, and it does not feed the adversarial gradient.
        self.genre_head = nn.Linear(feature_size, config.num_genres) if config.num_genres else None
        self.genre_projection = (spectral_norm(nn.Embedding(config.num_genres, feature_size))
                                 if config.num_genres and config.projection else None)

    def forward(self, images: torch.Tensor, genres: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (and, for a projection discriminator, the genre each is judged as) ->
        (realness score (N,), genre logits (N, num_genres) or None)."""
        features = minibatch_stddev(self.features(images)).flatten(1)
        realness = self.adversarial_head(features).squeeze(1)
        if self.genre_projection is not None:
            if genres is None:
                raise ValueError("a projection discriminator needs the genre of each image")
            realness = realness + (self.genre_projection(genres) * features).sum(1)
        genre_logits = self.genre_head(features) if self.genre_head is not None else None
        return realness, genre_logits


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the feature standard deviation across groups of images, averaged.

    Real covers of a batch differ from each other; a collapsed generator's fakes do not, and
    this channel lets the discriminator see it.
    """
    n, c, h, w = x.shape
    group = min(group_size, n)
    while n % group:  # a batch size that is not a multiple of 4 still works
        group -= 1
    # Groups are runs of consecutive images, so a rank's slice of a global batch (a multiple of
    # the group size) forms the same groups as in one process. Batches are random, so which
    # images share a group does not matter otherwise.
    y = x.float().reshape(n // group, group, c, h, w)
    y = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // group,)
    y = y.repeat_interleave(group).reshape(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


def _dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


# Tensors with one row per genre (first dimension num_genres, rows in the order of
# ModelConfig.genres). Carrying weights between models whose genres differ (--init-from) moves
# these rows by genre name. A new per-genre table in the models must be listed here.
PER_GENRE_TENSORS = (
    "genre_embedding.weight",  # G: the genre's learned embedding
    "genre_head.weight", "genre_head.bias",  # D: the classifier's logit for the genre
    "genre_projection.parametrizations.weight.original",  # D: the projection embedding
    "genre_projection.parametrizations.weight.0._u",  # its spectral norm's power-iteration vector
)


def carry_over_weights(target: nn.Module, source_state: dict[str, torch.Tensor],
                       genre_rows: list[int | None] | None = None) -> list[str]:
    """Copy every tensor whose name and shape match; return the names left freshly initialised.

    This is how pre-trained (unconditional) weights seed a conditional model: all layers
    match except the genre embedding, the first layer's noise+embedding input and the
    classifier head. `genre_rows[i]` is the row of the target's genre i in the source's
    per-genre tensors (`PER_GENRE_TENSORS`), or None for a genre the source does not know,
    whose rows stay fresh; without it per-genre tensors carry over only when their shapes match.
    """
    own = target.state_dict()
    fresh = []
    for name, tensor in own.items():
        incoming = source_state.get(name)
        if (name in PER_GENRE_TENSORS and genre_rows is not None and incoming is not None
                and incoming.shape[1:] == tensor.shape[1:]):
            for row, source_row in enumerate(genre_rows):
                if source_row is not None and source_row < incoming.shape[0]:
                    tensor[row].copy_(incoming[source_row])
            new = [row for row, source_row in enumerate(genre_rows) if source_row is None]
            if new:
                fresh.append(f"{name}{new}")
        elif incoming is not None and incoming.shape == tensor.shape:
            tensor.copy_(incoming)
        elif (name == "seed.0.weight" and incoming is not None and incoming.shape[0] < tensor.shape[0]
              and incoming.shape[1:] == tensor.shape[1:]):
            # The first layer's input rows for the noise carry over; the embedding rows stay fresh.
            tensor[: incoming.shape[0]].copy_(incoming)
            fresh.append(f"{name}[{incoming.shape[0]}:]")
        else:
            fresh.append(name)
    return fresh
