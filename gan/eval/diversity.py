"""Within-genre diversity by MS-SSIM, generated against real, as the AC-GAN paper measures it.

For each genre: N generated covers (and, when given, the real covers of that genre), P random
distinct pairs (or all), and the MS-SSIM of each pair. A high score means two images are
alike; a generator that collapses onto few images scores higher than its real data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gan.errors import GanError
from gan.eval.msssim import PairwiseMsssim, all_pairs, random_pairs, settings_for
from gan.sampling import CoverGenerator

SIMILARITY_THRESHOLD = 0.5  # share of pairs above this is reported: "too alike" pairs
Progress = Callable[[float, str], None]


@dataclass
class PairScores:
    genre: str
    source: str  # "generated" or "real"
    i: np.ndarray
    j: np.ndarray
    scores: np.ndarray
    images: np.ndarray = field(repr=False)  # uint8 (N, R, R, 3): so an outlier pair can be shown

    def summary(self, threshold: float = SIMILARITY_THRESHOLD) -> dict:
        s = self.scores
        q1, median, q3 = (float(v) for v in np.percentile(s, [25, 50, 75]))
        iqr = q3 - q1
        low, high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
        outliers = [{"i": int(a), "j": int(b), "score": round(float(v), 6)}
                    for a, b, v in zip(self.i, self.j, s) if v < low or v > high]
        outliers.sort(key=lambda o: -o["score"])
        return {"genre": self.genre, "source": self.source, "images": int(len(self.images)), "pairs": int(len(s)),
                "mean": float(s.mean()), "median": median, "q1": q1, "q3": q3, "iqr": iqr,
                "whisker_low": float(s[s >= low].min()), "whisker_high": float(s[s <= high].max()),
                "outliers": outliers, "share_above_threshold": float((s > threshold).mean()),
                "threshold": threshold}


@dataclass
class DiversityResult:
    groups: list[PairScores]
    settings: dict

    def summaries(self) -> list[dict]:
        return [g.summary() for g in self.groups]

    def group(self, genre: str, source: str) -> PairScores:
        for g in self.groups:
            if g.genre == genre and g.source == source:
                return g
        raise KeyError((genre, source))


def pair_scores(images: np.ndarray, pairs: int | str, seed: int, genre: str, source: str,
                settings=None, device: torch.device | str | None = None) -> PairScores:
    if len(images) < 2:
        raise GanError(f"genre {genre!r} ({source}): needs at least 2 images for MS-SSIM pairs, has {len(images)}")
    i, j = all_pairs(len(images)) if pairs == "all" else random_pairs(len(images), int(pairs), seed)
    engine = PairwiseMsssim(images, settings, device)
    return PairScores(genre, source, i, j, engine(i, j).numpy(), images)


def evaluate_diversity(generator: CoverGenerator, n: int = 1000, pairs: int | str = 1000, seed: int = 0,
                       real: dict[str, np.ndarray] | None = None, genres: list[str] | None = None,
                       progress: Progress | None = None) -> DiversityResult:
    """MS-SSIM pair scores per genre for generated covers, and for real ones when `real` maps genre -> images."""
    genres = genres or generator.genres or ["unconditional"]
    for genre in genres:
        if generator.genres:
            generator.genre_index(genre)  # unknown names fail here, with the known list
    if real:
        unknown = sorted(set(real) - set(generator.genres))
        if unknown:
            known = ", ".join(generator.genres) or "none: it is unconditional"
            raise GanError(f"real data has genre(s) {unknown} that the checkpoint does not know ({known})")
    settings = settings_for(generator.resolution)
    noise = generator.sample_noise(n, seed)
    groups = []
    steps = len(genres) * (2 if real else 1)
    for k, genre in enumerate(genres):
        if progress:
            progress(len(groups) / steps, f"{genre}: generating and scoring {n} covers")
        images = generator.generate(noise, None if genre == "unconditional" else genre)
        # Scored where the generator runs: a GPU scores pairs an order of magnitude faster.
        groups.append(pair_scores(images, pairs, seed + k, genre, "generated", settings, generator.device))
        if real and genre in real:
            if progress:
                progress(len(groups) / steps, f"{genre}: scoring real covers")
            groups.append(pair_scores(real[genre], pairs, seed + k, genre, "real", settings, generator.device))
    if progress:
        progress(1.0, "done")
    return DiversityResult(groups, {"n": n, "pairs": pairs, "seed": seed, "checkpoint": str(generator.checkpoint),
                                    "msssim": settings.to_dict()})


def write_diversity(result: DiversityResult, out: Path) -> dict[str, Path]:
    """scores.csv (genre, source, i, j, score), summary.json, boxplot.html."""
    from gan.eval.figures import diversity_boxplot

    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "diversity_scores.csv", "json": out / "diversity_summary.json",
             "html": out / "diversity_boxplot.html"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["genre", "source", "i", "j", "score"])
        for g in result.groups:
            writer.writerows((g.genre, g.source, int(a), int(b), f"{v:.6f}") for a, b, v in zip(g.i, g.j, g.scores))
    paths["json"].write_text(json.dumps({"settings": result.settings, "groups": result.summaries()}, indent=2))
    diversity_boxplot(result).write_html(paths["html"], include_plotlyjs="inline")
    return paths
