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
import torch
from sklearn.cluster import KMeans

from gan.sampling import CoverGenerator

METRICS = ("brightness", "contrast", "saturation", "colourfulness")
HUE_BINS = 12
MIN_SATURATION, MIN_VALUE = 0.15, 0.1


def image_statistics(images: np.ndarray, device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """Per-image brightness, contrast, saturation and colourfulness of uint8 (N, H, W, 3) images.

    Computed on `device` (where the generator runs), in chunks so that memory stays bounded.
    """
    parts: dict[str, list[torch.Tensor]] = {m: [] for m in METRICS}
    luma_weights = torch.tensor([0.299, 0.587, 0.114], device=device)
    for chunk in _chunks(images, device):
        rgb = chunk.float()  # (n, H, W, 3) on the 0-255 scale
        x = rgb / 255
        luma = x @ luma_weights
        high, low = x.amax(dim=3), x.amin(dim=3)
        saturation = torch.where(high > 0, (high - low) / high.clamp_min(1e-12), torch.zeros_like(high))
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        spread = torch.sqrt(rg.std(dim=(1, 2), correction=0) ** 2 + yb.std(dim=(1, 2), correction=0) ** 2)
        parts["brightness"].append(luma.mean(dim=(1, 2)))
        parts["contrast"].append(luma.std(dim=(1, 2), correction=0))
        parts["saturation"].append(saturation.mean(dim=(1, 2)))
        parts["colourfulness"].append(spread + 0.3 * torch.sqrt(rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2))
    return {m: torch.cat(v).cpu().numpy() if v else np.zeros(0, np.float32) for m, v in parts.items()}


def hue_histogram(images: np.ndarray, bins: int = HUE_BINS, device: torch.device | str = "cpu") -> np.ndarray:
    """Share of coloured pixels per hue bin (bin 0 starts at red, 0 degrees), counted on `device`."""
    counts = torch.zeros(bins, dtype=torch.long, device=device)
    for chunk in _chunks(images, device):
        x = chunk.reshape(-1, 3).float() / 255
        high, low = x.amax(dim=1), x.amin(dim=1)
        delta = high - low
        coloured = (high >= MIN_VALUE) & (delta >= MIN_SATURATION * high.clamp_min(1e-12)) & (delta > 0)
        x, high, delta = x[coloured], high[coloured], delta[coloured]
        r, g, b = x[:, 0], x[:, 1], x[:, 2]
        hue = torch.where(high == r, torch.remainder((g - b) / delta, 6),
                          torch.where(high == g, (b - r) / delta + 2, (r - g) / delta + 4))
        counts += torch.bincount((hue / 6 * bins).long().clamp_max(bins - 1), minlength=bins)
    total = counts.sum()
    return (counts / total if total else counts).double().cpu().numpy()


def _chunks(images: np.ndarray, device: torch.device | str, size: int = 256):
    """uint8 images as tensors on `device`, a few hundred at a time (the float copies are 16x larger)."""
    for start in range(0, len(images), size):
        yield torch.from_numpy(np.ascontiguousarray(images[start:start + size])).to(device)


def dominant_palette(images: np.ndarray, k: int = 5, seed: int = 0,
                     sample: int = 20000) -> tuple[np.ndarray, np.ndarray]:
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


def colour_group(images: np.ndarray, genre: str, source: str, seed: int = 0, palette_size: int = 5,
                 device: torch.device | str = "cpu") -> ColourGroup:
    """Statistics and hue histogram computed on `device`; the palette's k-means (a 20,000-pixel
    sample) runs on the CPU with scikit-learn."""
    palette, shares = dominant_palette(images, palette_size, seed)
    return ColourGroup(genre, source, image_statistics(images, device), hue_histogram(images, device=device),
                       palette, shares)


def evaluate_colour(generator: CoverGenerator, n: int = 500, seed: int = 0,
                    real: dict[str, np.ndarray] | None = None, genres: list[str] | None = None) -> list[ColourGroup]:
    genres = genres or generator.genres or ["unconditional"]
    noise = generator.sample_noise(n, seed)
    groups = []
    for genre in genres:
        fake = generator.generate(noise, None if genre == "unconditional" else genre)
        # Computed where the generator runs, as the diversity scores are.
        groups.append(colour_group(fake, genre, "generated", seed, device=generator.device))
        if real and genre in real:
            groups.append(colour_group(real[genre], genre, "real", seed, device=generator.device))
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
