"""The DCGAN-shaped networks of checkpoints written before the ResNet (`architecture: dcgan`).

The shapes follow DCGAN (Radford et al., 2016): the generator doubles the resolution with 4x4
transposed convolutions from a 4x4 seed, with batch norm and ReLU, the genre embedding
concatenated to the noise; the discriminator halves it with strided, spectrally normalised 4x4
convolutions and LeakyReLU, sees the minibatch standard deviation, and has a genre classifier
head and an optional projection term. Kept so that older checkpoints load, generate and train on;
new models use `gan.models.resnet`, whose 3x3 convolutions after upsampling avoid the
checkerboard texture that 4x4 transposed convolutions with stride 2 leave.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.config import ModelConfig
from gan.models.common import Discriminator, Generator, embed_genres, minibatch_stddev
from gan.models.genre_heads import build_genre_head


def _stage_channels(config: ModelConfig) -> list[int]:
    """Channels at 4x4, 8x8, ... up to half the output resolution, widest first."""
    stages = int(math.log2(config.resolution)) - 2  # number of 2x upsamplings from 4x4
    return [config.width * min(8, 2 ** (stages - 1 - i)) for i in range(stages)]


class DCGANGenerator(Generator):
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
            blocks += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1), nn.Tanh())
        self.apply(_dcgan_init)

    def forward_embedded(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        return self.to_rgb(self.blocks(self._seed(noise, embedding)))

    def _seed(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        x = noise if embedding is None else torch.cat([noise, embedding.to(noise.dtype)], dim=1)
        return self.seed(x[:, :, None, None])

    def first_features(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        return self._seed(noise, embedding).flatten(1)


class DCGANDiscriminator(Discriminator):
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
        self.genre_head = build_genre_head(config, feature_size)
        self.genre_projection = (spectral_norm(nn.Embedding(config.num_genres, feature_size))
                                 if config.num_genres and config.projection else None)

    def forward(self, images: torch.Tensor, genres: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = minibatch_stddev(self.features(images), self.stddev_group).flatten(1)
        realness = self.adversarial_head(features).squeeze(1)
        if self.genre_projection is not None:
            if genres is None:
                raise ValueError("a projection discriminator needs the genre of each image")
            realness = realness + (embed_genres(self.genre_projection, genres) * features).sum(1)
        genre_output = self.genre_head(features) if self.genre_head is not None else None
        return realness, genre_output


def _dcgan_init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
