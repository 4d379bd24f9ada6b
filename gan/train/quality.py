"""Quality tracked during fine-tuning: every `--eval-every` steps, a fixed small sample is scored
and logged to `metrics.jsonl` (rows with `"kind": "eval"`), and the best checkpoint is kept.

What is measured, on the EMA generator with fixed noise (`eval_covers` covers per genre):

* realism: Frechet distance in the judge's feature space (`gan.eval.realism`), generated covers
  against real covers of the training data, over the floor (another draw of real covers of the
  same size): per genre, their mean (`realism_mean`), the worst genre (`realism_worst`) and all
  genres pooled (`realism_ratio`). The judge is trained on the training data once (cached).
* fidelity: the share of each genre's covers that the judge files under that genre
  (`fidelity_min`, `fidelity_mean`);
* within-genre diversity: mean MS-SSIM of random pairs, generated minus real
  (`msssim_gap_max`: the largest excess over real; above 0 means less varied than real covers).

**The score** that picks the best checkpoint is `realism_ratio`, the Frechet ratio of all genres'
covers pooled. A genre's ratio on its own rests on `eval_covers` covers (100) and divides by the
floor of two such draws, which is smallest, so noisiest, where real covers are nearly one image
(classical, metal): the mean of per-genre ratios follows those genres' sampling noise. Pooled, the
distance rests on every genre's covers at once. It replaced the per-genre mean (`realism_mean`)
after both were checked against three held-out judges (README, "Choosing the best checkpoint").
Fidelity and diversity are logged beside it.
The best checkpoint so far is written to `checkpoints/best` (a complete checkpoint, never
pruned); its config.json carries the evaluation row under "quality".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from gan.data.real import three_way_split
from gan.eval.judge import Judge, JudgeConfig, cached_judge
from gan.eval.msssim import PairwiseMsssim, random_pairs
from gan.eval.realism import compare_features
from gan.models import Generator
from gan.sampling import to_uint8

log = logging.getLogger(__name__)
SCORE = "realism_ratio"
JUDGE_COVERS_PER_GENRE = 500
JUDGE_STEPS = JudgeConfig.steps
MSSSIM_PAIRS = 100
MIN_COVERS_PER_GENRE = 30  # 10 each for the reference, the floor and the judge: fewer measure nothing


def too_few_covers(labels: np.ndarray, genres: list[str]) -> str | None:
    """Why quality cannot be tracked on this data, or None when it can."""
    counts = np.bincount(labels, minlength=len(genres))
    short = [f"{genre} ({count})" for genre, count in zip(genres, counts) if count < MIN_COVERS_PER_GENRE]
    if short:
        return f"genre(s) with fewer than {MIN_COVERS_PER_GENRE} covers: {', '.join(short[:3])}"
    return None


@dataclass
class RealSample:
    """Real covers of one genre: the reference draw, the floor draw (disjoint), and their features."""

    reference: np.ndarray
    floor_features: np.ndarray
    reference_features: np.ndarray
    msssim_real: float


class QualityTracker:
    def __init__(self, images: np.ndarray, labels: np.ndarray, genres: list[str], covers_per_genre: int,
                 seed: int, device: torch.device | str = "cpu"):
        """`images` uint8 (N, 3, R, R) and `labels` (N,): the training data. Each genre's covers are
        split at random into the judge's training set, the reference draw and the floor draw. The
        judge trains and runs on `device` (the generator's)."""
        self.genres = list(genres)
        rng = np.random.default_rng(seed)
        reason = too_few_covers(labels, self.genres)
        if reason:
            raise ValueError(reason)
        judge_rows, draws = [], []
        for index in range(len(genres)):
            reference_rows, floor_rows, rest = three_way_split(rng.permutation(np.flatnonzero(labels == index)),
                                                               covers_per_genre)
            draws.append((reference_rows, floor_rows))
            judge_rows.append(rest[:JUDGE_COVERS_PER_GENRE])
        self.covers_per_genre = min(len(reference) for reference, _ in draws)
        judge_index = np.sort(np.concatenate(judge_rows))
        resolution = images.shape[-1]
        self.judge: Judge = cached_judge(_hwc(images[judge_index]), labels[judge_index],
                                         JudgeConfig(resolution=resolution, genres=self.genres, steps=JUDGE_STEPS),
                                         device=device)
        self.real: list[RealSample] = []
        for k, (reference_rows, floor_rows) in enumerate(draws):
            reference = _hwc(images[np.sort(reference_rows[:self.covers_per_genre])])
            floor = _hwc(images[np.sort(floor_rows[:self.covers_per_genre])])
            self.real.append(RealSample(reference, self.judge.features(floor), self.judge.features(reference),
                                        _mean_msssim(reference, seed + k)))
        self.seed = seed

    @torch.no_grad()
    def evaluate(self, generator: Generator) -> dict[str, float]:
        """Score the (EMA) generator; returns the eval row's numbers (see the module docstring)."""
        started = time.perf_counter()
        device = next(generator.parameters()).device
        n = self.covers_per_genre
        noise = torch.randn(n, generator.config.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        was_training = generator.training
        generator.eval()
        generated, predictions, msssim_gaps = {}, {}, []
        for index, genre in enumerate(self.genres):
            labels = torch.full((n,), index, dtype=torch.long, device=device)
            images = to_uint8((generator(noise.to(device), labels).float().cpu() + 1) / 2)
            generated[genre], predictions[genre] = self.judge.features_and_predictions(images)
            msssim_gaps.append(_mean_msssim(images, self.seed + index) - self.real[index].msssim_real)
        generator.train(was_training)
        scores = compare_features(generated, {g: r.reference_features for g, r in zip(self.genres, self.real)},
                                  {g: r.floor_features for g, r in zip(self.genres, self.real)})
        per_genre = [s.ratio for s in scores[:-1]]
        fidelity = [float((predictions[g] == i).mean()) for i, g in enumerate(self.genres)]
        row = {"realism_ratio": scores[-1].ratio, "realism_mean": float(np.mean(per_genre)),
               "realism_worst": float(np.max(per_genre)), "fidelity_min": min(fidelity),
               "fidelity_mean": float(np.mean(fidelity)), "msssim_gap_max": float(np.max(msssim_gaps)),
               "eval_covers": n, "eval_seconds": time.perf_counter() - started}
        return {k: round(v, 5) if isinstance(v, float) else v for k, v in row.items()}


def _hwc(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))


def _mean_msssim(images: np.ndarray, seed: int) -> float:
    i, j = random_pairs(len(images), MSSSIM_PAIRS, seed)
    return float(PairwiseMsssim(images)(i, j).mean())
