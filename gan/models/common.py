"""What every architecture shares: the generator and discriminator interfaces, the minibatch
standard deviation, and carrying weights over from one model into another."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from gan.config import ModelConfig

if TYPE_CHECKING:
    from gan.models.genre_heads import ContrastiveGenreHead, SoftmaxGenreHead


def embed_genres(table: nn.Embedding, genres: torch.Tensor) -> torch.Tensor:
    """A per-genre table's rows for genre indices (N,), or for tag weights (N, num_genres) the
    weighted mean of the tags' rows: a cover of "jazz + electronic" is conditioned on the mean of
    the two genres' embeddings, and a single genre (a one-hot row) on exactly its own."""
    if not genres.is_floating_point():
        return table(genres)
    weights = genres / genres.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return weights.to(table.weight.dtype) @ table.weight


class Generator(nn.Module):
    """Noise (N, latent_dim) and genres -> covers (N, 3, R, R) in [-1, 1].

    Genres are indices (N,) or tag weights (N, num_genres) (several genres per cover, see
    `embed_genres`), embedded by `genre_embedding`; `forward_embedded` takes embeddings directly, so
    any blend of genres' embeddings can be drawn too.
    """

    config: ModelConfig
    genre_embedding: nn.Embedding | None

    def forward(self, noise: torch.Tensor, genres: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_embedded(noise, self.embed(genres, noise.shape[0]))

    def embed(self, genres: torch.Tensor | None, n: int) -> torch.Tensor | None:
        if self.genre_embedding is None:
            return None
        if genres is None:
            raise ValueError("a conditional generator needs genre indices or tag weights")
        if genres.dim() == (1 if genres.is_floating_point() else 0):  # one genre or mix for all n covers
            genres = genres.expand(n, *genres.shape)
        return embed_genres(self.genre_embedding, genres)

    def forward_embedded(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def first_features(self, noise: torch.Tensor, embedding: torch.Tensor | None) -> torch.Tensor:
        """The first layer's output (N, features): where GANSpace looks for principal directions."""
        raise NotImplementedError


class Discriminator(nn.Module):
    """Covers (N, 3, R, R) (and, with a projection term, the genres each is judged as: indices or
    tag weights, as the generator takes them) -> (realness (N,), the genre head's output or None).

    The genre head's output is what `genre_head.logits` ranks genres by and `genre_head.loss`
    trains on (see gan.models.genre_heads)."""

    config: ModelConfig
    genre_head: SoftmaxGenreHead | ContrastiveGenreHead | None
    # Images per minibatch-stddev group; the trainer sets it from the global batch (see `minibatch_stddev`).
    stddev_group: int = 4


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the feature standard deviation across groups of images, averaged.

    Real covers of a batch differ from each other; a collapsed generator's fakes do not, and
    this channel lets the discriminator see it (ProGAN, Karras et al., 2018). Groups are runs of
    `group_size` consecutive images, so a rank's slice of a global batch (a multiple of the group
    size: the trainer checks) forms the same groups as in one process. A batch that is not a
    multiple of the group size (a last, smaller batch at evaluation) uses the largest divisor.
    """
    n, c, h, w = x.shape
    group = min(group_size, n)
    while n % group:
        group -= 1
    y = x.float().reshape(n // group, group, c, h, w)
    y = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // group,)
    y = y.repeat_interleave(group).reshape(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


# Tensors with one row per genre (first dimension num_genres, rows in the order of
# ModelConfig.genres), in either architecture. Carrying weights between models whose genres differ
# (--init-from) moves these rows by genre name. A new per-genre table in the models must be listed here.
PER_GENRE_TENSORS = (
    "genre_embedding.weight",  # G: the genre's learned embedding
    "genre_head.weight", "genre_head.bias",  # D: the classifier's logit for the genre
    "genre_head.proxies.weight",  # D: the contrastive classifier's proxy for the genre
    "genre_projection.parametrizations.weight.original",  # D: the projection embedding
    "genre_projection.parametrizations.weight.0._u",  # its spectral norm's power-iteration vector
)


def carry_over_weights(target: nn.Module, source_state: dict[str, torch.Tensor],
                       genre_rows: list[int | None] | None = None) -> list[str]:
    """Copy every tensor whose name and shape match; return the names left freshly initialised.

    This is how pre-trained (unconditional) weights seed a conditional model: all layers match
    except the genre parts (embedding, conditional batch-norm projections, classifier and
    projection heads) and, in the DCGAN generator, the first layer's embedding input rows.
    `genre_rows[i]` is the row of the target's genre i in the source's per-genre tensors
    (`PER_GENRE_TENSORS`), or None for a genre the source does not know, whose rows stay fresh;
    without it per-genre tensors carry over only when their shapes match.
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
            # DCGAN: the first layer's input rows for the noise carry over; the embedding rows stay fresh.
            tensor[: incoming.shape[0]].copy_(incoming)
            fresh.append(f"{name}[{incoming.shape[0]}:]")
        else:
            fresh.append(name)
    return fresh


def describe_fresh(names: list[str]) -> str:
    """`carry_over_weights`'s fresh tensor names for a log line, the conditional batch norm's many
    per-layer projections (of the genre, and of the noise) counted rather than listed."""
    groups = {"genre": (".gain.weight", ".shift.weight"), "noise": (".noise_gain.weight", ".noise_shift.weight")}
    rest, counted = list(names), []
    for source, suffixes in groups.items():
        found = [n for n in rest if n.endswith(suffixes)]
        rest = [n for n in rest if n not in found]
        if found:
            counted.append(f"the {source} gains and shifts of {len(found) // 2} conditional batch norms")
    return ", ".join(rest + counted) or "none"
