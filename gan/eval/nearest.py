"""Memorisation check: how close is each generated cover to its nearest training cover?

Distance: pixel L2 between 16x16 thumbnails (RGB in [0, 1], so at most sqrt(768) ~ 27.7), which
finds candidates fast over large training sets; the closest few candidates are then scored by
MS-SSIM (higher = more alike) for the side-by-side view.

Per genre we compare each generated cover's nearest-training distance with the distances of
training covers to their nearest *other* training cover. A generator that samples new covers
from the data distribution has about as many generated covers below the 5th percentile of the
training-to-training distances as that percentile says (5%); one that copies has many more.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gan.eval.msssim import PairwiseMsssim, settings_for
from gan.sampling import CoverGenerator

THUMBNAIL = 16
PERCENTILE = 5.0


def thumbnails(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return F.adaptive_avg_pool2d(x, THUMBNAIL).flatten(1)


def nearest(queries: torch.Tensor, pool: torch.Tensor, k: int, exclude_self: bool = False,
            chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices (Q, k) of the k nearest pool rows to each query row, by L2."""
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start:start + chunk], pool)
        if exclude_self:
            rows = torch.arange(start, min(start + chunk, len(queries)))
            d[rows - start, rows] = float("inf")
        values, index = d.topk(min(k, pool.shape[0]), largest=False)
        distances.append(values)
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


@dataclass
class NearestGroup:
    genre: str
    generated: np.ndarray  # uint8 (N, R, R, 3)
    training: np.ndarray  # uint8 (M, R, R, 3)
    distances: np.ndarray  # (N, k) thumbnail L2, nearest first
    indices: np.ndarray  # (N, k) into training
    msssim: np.ndarray  # (N, k) MS-SSIM of each candidate pair
    training_nn: np.ndarray  # (M,) each training cover's distance to its nearest other training cover

    def summary(self) -> dict:
        threshold = float(np.percentile(self.training_nn, PERCENTILE))
        nearest_distance = self.distances[:, 0]
        return {"genre": self.genre, "generated": int(len(self.generated)), "training": int(len(self.training)),
                "threshold": threshold, "threshold_percentile": PERCENTILE,
                "share_closer_than_training": float((nearest_distance < threshold).mean()),
                "median_nearest_distance": float(np.median(nearest_distance)),
                "median_training_nn_distance": float(np.median(self.training_nn)),
                "max_msssim": float(self.msssim.max()),
                "closest": [{"generated": int(g), "training": int(self.indices[g, 0]),
                             "distance": float(nearest_distance[g]), "msssim": float(self.msssim[g, 0])}
                            for g in np.argsort(nearest_distance)[:5]]}


def nearest_group(generated: np.ndarray, training: np.ndarray, genre: str, k: int = 3) -> NearestGroup:
    gen_thumbs, train_thumbs = thumbnails(generated), thumbnails(training)
    distances, indices = nearest(gen_thumbs, train_thumbs, k)
    training_nn, _ = nearest(train_thumbs, train_thumbs, 1, exclude_self=True)
    both = np.concatenate([generated, training])
    engine = PairwiseMsssim(both, settings_for(generated.shape[1]))
    i = np.repeat(np.arange(len(generated)), indices.shape[1])
    j = len(generated) + indices.numpy().reshape(-1)
    msssim = engine(i, j).numpy().reshape(indices.shape)
    return NearestGroup(genre, generated, training, distances.numpy(), indices.numpy(), msssim,
                        training_nn[:, 0].numpy())


def evaluate_nearest(generator: CoverGenerator, training: dict[str, np.ndarray], n: int = 200, seed: int = 0,
                     k: int = 3) -> list[NearestGroup]:
    noise = generator.sample_noise(n, seed)
    groups = []
    for genre, images in training.items():
        if generator.genres:
            generator.genre_index(genre)
        fake = generator.generate(noise, genre if generator.genres else None)
        groups.append(nearest_group(fake, images, genre, k))
    return groups


def write_nearest(groups: list[NearestGroup], out: Path, settings: dict | None = None) -> dict[str, Path]:
    """nearest_summary.json and nearest.html (the closest generated/training pairs per genre)."""
    from gan.eval.figures import figures_html, png_data_uri

    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "nearest_summary.json", "html": out / "nearest.html"}
    summaries = [g.summary() for g in groups]
    paths["json"].write_text(json.dumps({"settings": {**(settings or {}), "distance": f"L2 on {THUMBNAIL}x{THUMBNAIL}"
                                                      " thumbnails, RGB in [0, 1]"}, "groups": summaries}, indent=2))
    sections = []
    for g, s in zip(groups, summaries):
        cells = "".join(
            f"<td><img class='grid' width=96 src='{png_data_uri(g.generated[c['generated']])}'>"
            f"<img class='grid' width=96 src='{png_data_uri(g.training[c['training']])}'><br>"
            f"L2 {c['distance']:.2f}, MS-SSIM {c['msssim']:.2f}</td>" for c in s["closest"])
        sections.append((f"{g.genre}: {s['share_closer_than_training']:.1%} of generated covers closer to a training "
                         f"cover than {100 - PERCENTILE:.0f}% of training covers are to each other",
                         f"<table><tr>{cells}</tr></table>"))
    paths["html"].write_text(figures_html("Nearest training covers", [], sections))
    return paths
