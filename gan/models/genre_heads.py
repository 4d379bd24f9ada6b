"""The discriminator's genre classifier, in two kinds (`ModelConfig.genre_classifier`).

* `softmax` (AC-GAN): a linear layer gives one logit per genre, trained with cross-entropy. Its
  known weakness (Kang et al., 2021, "Rebooting ACGAN") is that the generator is rewarded for covers
  the classifier finds easy, which pulls a genre's fakes towards one easily classified cover.
* `contrastive` (ReACGAN's data-to-data cross-entropy, D2D-CE): the features are projected to a
  unit-length embedding and compared by cosine with a learned unit-length proxy per genre *and*
  with the other covers of the batch. A cover is pulled towards its genre's proxy only until it is
  close enough (an easy-positive margin), and pushed away from covers of other genres only where
  they are too close (a hard-negative margin), so the classifier stops rewarding covers once they
  are recognised and says more about how covers relate to each other than a logit can.

Both heads take D's pooled features and return what `logits` and `loss` read; `logits` (N, genres)
ranks genres for the accuracy statistics either way.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from gan.config import ModelConfig

# ReACGAN's published settings (the PyTorch-StudioGAN configs): cosine similarities are divided by
# the temperature; a cover within 0.98 cosine of its proxy is no longer pulled towards it, and two
# covers of different genres are pushed apart only while their cosine exceeds 1 - 0.98.
TEMPERATURE = 0.5
POSITIVE_MARGIN = 0.98
NEGATIVE_MARGIN = 1 - POSITIVE_MARGIN


def build_genre_head(config: ModelConfig, features: int) -> SoftmaxGenreHead | ContrastiveGenreHead | None:
    """The head for `config.genre_classifier` on D's pooled features; None for an unconditional model."""
    if not config.num_genres:
        return None
    if config.genre_classifier == "contrastive":
        return ContrastiveGenreHead(features, config.num_genres)
    return SoftmaxGenreHead(features, config.num_genres)


class SoftmaxGenreHead(nn.Linear):
    """One logit per genre (a plain linear layer, so checkpoints keep its `genre_head.weight/bias`).

    Not spectrally normalised: cross-entropy needs logits free to grow, and the head does not feed
    the adversarial gradient."""

    def logits(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def loss(self, output: torch.Tensor, genres: torch.Tensor) -> torch.Tensor:
        """Cross-entropy for genre indices (N,) or tag weights (N, genres)."""
        return F.cross_entropy(output.float(), genres)


class ContrastiveGenreHead(nn.Module):
    """Unit-length embeddings of covers, compared with unit-length genre proxies (ReACGAN's D2D-CE)."""

    def __init__(self, features: int, num_genres: int):
        super().__init__()
        self.embed = nn.Linear(features, features)
        self.proxies = nn.Embedding(num_genres, features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(features).float(), dim=1)

    def logits(self, output: torch.Tensor) -> torch.Tensor:
        return output @ F.normalize(self.proxies.weight.float(), dim=1).T / TEMPERATURE

    def loss(self, output: torch.Tensor, genres: torch.Tensor) -> torch.Tensor:
        if genres.is_floating_point():
            raise ValueError("the contrastive genre classifier takes one genre per cover, not tag weights")
        proxies = F.normalize(self.proxies(genres).float(), dim=1)
        return data_to_data_cross_entropy(output, proxies, genres)


def data_to_data_cross_entropy(embeddings: torch.Tensor, proxies: torch.Tensor, genres: torch.Tensor) -> torch.Tensor:
    """ReACGAN's D2D-CE, averaged over this process's covers.

    For cover i with unit embedding e_i and its genre's unit proxy p_i:
        a_i  = min(e_i . p_i - POSITIVE_MARGIN, 0) / T
        b_ij = max(e_i . e_j - NEGATIVE_MARGIN, 0) / T   for every cover j of another genre
        loss_i = -a_i + log(exp(a_i) + sum_j exp(b_ij))
    The negatives are the covers of the whole global batch: under torchrun the embeddings are
    gathered from every rank (with their gradients), so N ranks train as one process does.
    """
    everyone, everyone_genres = embeddings, genres
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed.nn.functional import all_gather

        everyone = torch.cat(all_gather(embeddings))
        labels = [torch.empty_like(genres) for _ in range(dist.get_world_size())]
        dist.all_gather(labels, genres)
        everyone_genres = torch.cat(labels)
    positive = ((embeddings * proxies).sum(1) - POSITIVE_MARGIN).clamp(max=0) / TEMPERATURE
    negative = ((embeddings @ everyone.T) - NEGATIVE_MARGIN).clamp(min=0) / TEMPERATURE
    # Covers of the same genre are not negatives (nor is the cover itself, which is one of them).
    same_genre = genres[:, None] == everyone_genres[None, :]
    negative = negative.masked_fill(same_genre, float("-inf"))
    return (torch.logsumexp(torch.cat([positive[:, None], negative], dim=1), dim=1) - positive).mean()
