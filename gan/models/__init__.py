"""The AC-GAN's networks: a generator (noise + genre -> cover) and a discriminator (cover -> realness
and genre), built from a `ModelConfig`.

Two architectures, chosen by `ModelConfig.architecture`:

* `resnet` (the default; `gan.models.resnet`): residual up- and down-sampling blocks with 3x3
  convolutions, the genre entering the generator through conditional batch norm, and a
  discriminator with a projection term beside its genre classifier (the BigGAN / SNGAN family, as
  PyTorch-StudioGAN configures it for conditional generation).
* `dcgan` (`gan.models.dcgan`): the transposed-convolution networks that checkpoints written
  before the ResNet existed use; they still load and train.

An unconditional model (no genres, used for pre-training) has the same layers minus the genre
parts, so its weights carry over into a conditional one (`carry_over_weights`).
"""

from __future__ import annotations

from torch import nn

from gan.config import ModelConfig
from gan.models.common import (
    PER_GENRE_TENSORS,
    Discriminator,
    Generator,
    carry_over_weights,
    describe_fresh,
    minibatch_stddev,
)

__all__ = ["PER_GENRE_TENSORS", "Discriminator", "Generator", "build_discriminator", "build_generator",
           "carry_over_weights", "describe_fresh", "minibatch_stddev"]


def build_generator(config: ModelConfig) -> Generator:
    from gan.models import dcgan, resnet

    return {"resnet": resnet.ResNetGenerator, "dcgan": dcgan.DCGANGenerator}[config.architecture](config)


def build_discriminator(config: ModelConfig) -> Discriminator:
    from gan.models import dcgan, resnet

    return {"resnet": resnet.ResNetDiscriminator, "dcgan": dcgan.DCGANDiscriminator}[config.architecture](config)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

