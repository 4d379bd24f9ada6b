"""Colour character per genre: brightness, contrast, saturation, colourfulness, hue and palette.

Definitions (images as RGB in [0, 1]):
* brightness: mean luma Y' = 0.299 R + 0.587 G + 0.114 B;
* contrast: standard deviation of luma over the image;
* saturation: mean HSV saturation (max - min) / max (0 for black pixels);
* colourfulness: Hasler & Suesstrunk (2003) on the 0-255 scale, sigma_rgyb + 0.3 mu_rgyb with
  rg = R - G and yb = (R + G) / 2 - B (0 for grey images; about 100 for very colourful ones);
* hue histogram: HSV hue of pixels with saturation >= 0.15 and value >= 0.1, 12 bins of 30 degrees,
  normalised to sum 1 (all zeros when no pixel is coloured);
* palette: k-means (scikit-learn) centres of a pixel sample, ordered by share.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

from gan.sampling import CoverGenerator

METRICS = ("brightness", "contrast", "saturation", "colourfulness")
HUE_BINS = 12
MIN_SATURATION, MIN_VALUE = 0.15, 0.1


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image brightness, contrast, saturation and colourfulness of uint8 (N, H, W, 3) images."""
    x = images.astype(np.float32) / 255
    luma = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    high, low = x.max(axis=3), x.min(axis=3)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-12), 0)
    rgb = images.astype(np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourfulness = (np.sqrt(rg.std(axis=(1, 2)) ** 2 + yb.std(axis=(1, 2)) ** 2)
                     + 0.3 * np.sqrt(rg.mean(axis=(1, 2)) ** 2 + yb.mean(axis=(1, 2)) ** 2))
    return {"brightness": luma.mean(axis=(1, 2)), "contrast": luma.std(axis=(1, 2)),
            "saturation": saturation.mean(axis=(1, 2)), "colourfulness": colourfulness}


def hue_histogram(images: np.ndarray, bins: int = HUE_BINS) -> np.ndarray:
    """Share of coloured pixels per hue bin (bin 0 starts at red, 0 degrees)."""
    x = images.reshape(-1, 3).astype(np.float32) / 255
    high, low = x.max(axis=1), x.min(axis=1)
    delta = high - low
    coloured = (high >= MIN_VALUE) & (delta >= MIN_SATURATION * np.maximum(high, 1e-12)) & (delta > 0)
    x, high, delta = x[coloured], high[coloured], delta[coloured]
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    hue = np.where(high == r, ((g - b) / delta) % 6, np.where(high == g, (b - r) / delta + 2, (r - g) / delta + 4))
    counts = np.bincount(np.minimum((hue / 6 * bins).astype(int), bins - 1), minlength=bins).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts


def dominant_palette(images: np.ndarray, k: int = 5, seed: int = 0, sample: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """k dominant colours (uint8 (k, 3)) and their pixel shares, largest first."""
    pixels = images.reshape(-1, 3)
    rng = np.random.default_rng(seed)
    if len(pixels) > sample:
        pixels = pixels[rng.choice(len(pixels), sample, replace=False)]
    k = min(k, len(np.unique(pixels, axis=0)))
    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(pixels.astype(np.float32))
    shares = np.bincount(model.labels_, minlength=k) / len(pixels)
    order = np.argsort(-shares)
    return np.clip(model.cluster_centers_[order].round(), 0, 255).astype(np.uint8), shares[order]


@dataclass
class ColourGroup:
    genre: str
    source: str
    stats: dict[str, np.ndarray]
    hue: np.ndarray
    palette: np.ndarray
    palette_shares: np.ndarray

    def summary(self) -> dict:
        return {"genre": self.genre, "source": self.source, "images": int(len(self.stats["brightness"])),
                **{f"{m}_mean": float(self.stats[m].mean()) for m in METRICS},
                **{f"{m}_std": float(self.stats[m].std()) for m in METRICS},
                "hue_histogram": [round(float(v), 6) for v in self.hue],
                "palette": ["#%02x%02x%02x" % tuple(int(c) for c in colour) for colour in self.palette],
                "palette_shares": [round(float(v), 6) for v in self.palette_shares]}


def colour_group(images: np.ndarray, genre: str, source: str, seed: int = 0, palette_size: int = 5) -> ColourGroup:
    palette, shares = dominant_palette(images, palette_size, seed)
    return ColourGroup(genre, source, image_statistics(images), hue_histogram(images), palette, shares)


def evaluate_colour(generator: CoverGenerator, n: int = 500, seed: int = 0,
                    real: dict[str, np.ndarray] | None = None, genres: list[str] | None = None) -> list[ColourGroup]:
    genres = genres or generator.genres or ["unconditional"]
    noise = generator.sample_noise(n, seed)
    groups = []
    for genre in genres:
        fake = generator.generate(noise, None if genre == "unconditional" else genre)
        groups.append(colour_group(fake, genre, "generated", seed))
        if real and genre in real:
            groups.append(colour_group(real[genre], genre, "real", seed))
    return groups


def write_colour(groups: list[ColourGroup], out: Path, settings: dict | None = None) -> dict[str, Path]:
    """colour_stats.csv (one row per image), colour_summary.json, colour.html (figures)."""
    from gan.eval.figures import colour_figures, figures_html

    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "colour_stats.csv", "json": out / "colour_summary.json", "html": out / "colour.html"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["genre", "source", "index", *METRICS])
        for g in groups:
            for index in range(len(g.stats["brightness"])):
                writer.writerow([g.genre, g.source, index, *(f"{g.stats[m][index]:.6f}" for m in METRICS)])
    paths["json"].write_text(json.dumps({"settings": settings or {}, "groups": [g.summary() for g in groups]},
                                        indent=2))
    paths["html"].write_text(figures_html("Colour statistics", colour_figures(groups)))
    return paths
