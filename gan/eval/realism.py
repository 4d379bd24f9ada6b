"""How far generated covers lie from real ones: Frechet distance and KID in a judge's feature space,
always beside their floor.

* Frechet distance (Heusel et al., 2017): Gaussians fitted to the two feature sets,
  |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). Biased upwards by finite samples, so alone it
  says little.
* The floor: the same distance between two disjoint draws of real covers of the same size. The
  ratio generated / floor is the headline: about 1 means generated covers sit among real ones as
  closely as another draw of real covers would; 6 means six times farther.
* Spread: the generated covers' total feature variance (the trace of their covariance) over the
  real reference covers'. The Frechet distance does not say whether generated covers sit off the
  real ones or vary less than they do; below 1 means less varied in the judge's eyes (a genre whose
  covers differ in layout but share one palette and motif), however different their pixels are.
* KID (Binkowski et al., 2018): the unbiased estimate of the squared MMD with the polynomial kernel
  k(x, y) = (x.y / d + 1)^3. Unbiased, so its floor is about 0 and differences of a few 1e-3 are
  within noise; it backs the Frechet ratio rather than replacing it.

Per genre (generated covers of genre g against real covers of g) and overall (all genres pooled).
The features come from `gan.eval.judge`: a CNN trained on real covers of the same dataset.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from gan.errors import GanError
from gan.eval.judge import Judge
from gan.sampling import CoverGenerator

OVERALL = "all genres"


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, d) and b (M, d)."""
    if len(a) < 2 or len(b) < 2:
        raise GanError(f"Frechet distance needs at least 2 covers per set, got {len(a)} and {len(b)}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mean_gap = a.mean(0) - b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD matrix:
    # stable where scipy's general sqrtm of the non-symmetric product is not (rank-deficient covariances).
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(max(0.0, mean_gap @ mean_gap + np.trace(cov_a) + np.trace(cov_b) - 2 * cross))


def feature_spread(a: np.ndarray, b: np.ndarray) -> float:
    """Total variance of feature set a (N, d) over that of b (M, d): below 1, a varies less than b."""
    if len(a) < 2 or len(b) < 2:
        raise GanError(f"feature spread needs at least 2 covers per set, got {len(a)} and {len(b)}")
    spread_b = np.asarray(b, np.float64).var(0, ddof=1).sum()
    return float(np.asarray(a, np.float64).var(0, ddof=1).sum() / spread_b) if spread_b > 0 else float("inf")


def kernel_inception_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel (KID); may be slightly negative."""
    if len(a) < 2 or len(b) < 2:
        raise GanError(f"KID needs at least 2 covers per set, got {len(a)} and {len(b)}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    return float((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
                 - 2 * k_ab.mean())


@dataclass
class RealismScore:
    """One genre's (or all genres') distances: generated vs reference, and the real floor."""

    genre: str
    n: int
    frechet: float
    frechet_floor: float
    kid: float
    kid_floor: float
    judge_accuracy: float | None = None  # share of generated covers the judge files under their genre
    spread: float | None = None  # generated covers' feature variance over the reference's (feature_spread)

    @property
    def ratio(self) -> float:
        """Frechet distance of generated covers over the floor: the headline (1 = as close as real)."""
        return self.frechet / self.frechet_floor if self.frechet_floor > 0 else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class RealismReport:
    scores: list[RealismScore]  # one per genre, then OVERALL
    settings: dict

    @property
    def overall(self) -> RealismScore:
        return next(s for s in self.scores if s.genre == OVERALL)

    @property
    def genres(self) -> list[RealismScore]:
        return [s for s in self.scores if s.genre != OVERALL]

    @property
    def worst(self) -> RealismScore:
        return max(self.genres, key=lambda s: s.ratio)

    def rows(self) -> list[dict]:
        return [s.to_dict() for s in self.scores]


def compare_features(generated: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                     floor: dict[str, np.ndarray]) -> list[RealismScore]:
    """Per-genre and pooled scores from feature arrays keyed by genre (same genres in all three)."""
    scores = []
    for genre in generated:
        g, r, f = generated[genre], reference[genre], floor[genre]
        scores.append(RealismScore(genre, len(g), frechet_distance(g, r), frechet_distance(f, r),
                                   kernel_inception_distance(g, r), kernel_inception_distance(f, r),
                                   spread=feature_spread(g, r)))
    pooled = [np.concatenate(list(d.values())) for d in (generated, reference, floor)]
    scores.append(RealismScore(OVERALL, len(pooled[0]), frechet_distance(pooled[0], pooled[1]),
                               frechet_distance(pooled[2], pooled[1]), kernel_inception_distance(pooled[0], pooled[1]),
                               kernel_inception_distance(pooled[2], pooled[1]),
                               spread=feature_spread(pooled[0], pooled[1])))
    return scores


def realism_of_images(judge: Judge, generated: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                      floor: dict[str, np.ndarray]) -> RealismReport:
    """Realism of generated covers (uint8 (N, R, R, 3) per genre) against real `reference` covers,
    with `floor` (other real covers, disjoint from the reference) as the baseline.

    Every genre compares equal numbers of covers in the three sets (the smallest count), since the
    Frechet distance's bias depends on the sample size.
    """
    missing = [g for g in generated if g not in reference or g not in floor]
    if missing:
        raise GanError(f"no real covers of genre(s) {missing} to compare generated covers with")
    n = min(min(len(d[g]) for d in (generated, reference, floor)) for g in generated)
    if n < 2:
        raise GanError(f"realism needs at least 2 covers per genre in every set, got {n}")
    judged = {g: judge.features_and_predictions(generated[g][:n]) for g in generated}
    features = [{g: judged[g][0] for g in generated},
                *({g: judge.features(d[g][:n]) for g in generated} for d in (reference, floor))]
    scores = compare_features(*features)
    for score in scores:
        if score.genre in judge.genres:
            score.judge_accuracy = float((judged[score.genre][1] == judge.genres.index(score.genre)).mean())
    return RealismReport(scores, {"n_per_genre": n, "judge": {**asdict(judge.config), **judge.info}})


def evaluate_realism(generator: CoverGenerator, judge: Judge, reference: dict[str, np.ndarray],
                     floor: dict[str, np.ndarray], n: int = 200, seed: int = 0,
                     genres: list[str] | None = None) -> RealismReport:
    """Generate `n` covers per genre (noise `seed`, the same noise for every genre) and score their
    realism against real covers: `reference` and `floor` map genre -> uint8 (N, R, R, 3), disjoint."""
    for genre in genres or []:
        generator.genre_index(genre)  # an unknown name fails here, with the known list
    genres = [g for g in (genres or generator.genres) if g in reference]
    if not genres:
        raise GanError("no genre of this checkpoint has real covers to compare with")
    noise = generator.sample_noise(n, seed)
    generated = {genre: generator.generate(noise, genre) for genre in genres}
    report = realism_of_images(judge.to(generator.device), generated, {g: reference[g] for g in genres},
                               {g: floor[g] for g in genres})
    report.settings.update({"seed": seed, "checkpoint": str(generator.checkpoint)})
    return report


DEMO_JUDGE_COVERS_PER_GENRE = 500
DEMO_JUDGE_STEPS = 800  # JudgeConfig's default


def demo_judge_and_real_covers(genres: list[str], resolution: int, n: int = 200, training_seed: int = 0,
                               device: torch.device | str = "cpu", size: int | None = None, judge_seed: int = 0
                               ) -> tuple[Judge, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """For checkpoints trained on demo covers of `training_seed` drawn at `size` px (default: the
    model's resolution): a judge trained on demo covers of another seed (on `device`), and two
    disjoint held-out draws of real covers (two more seeds) as reference and floor, each drawn at
    `size` and loaded at `resolution` as training loads them. With the usual training seed 0 these
    are seeds 3 (judge), 2 (reference) and 4 (floor).

    Three draws, where the app's pages need one (`gan.data.demo.held_out_covers`, seed 2 for
    training seed 0, which is the reference here). `judge_seed` seeds the judge's own training
    (weights and batches): another seed is a second opinion on the same covers."""
    from gan.data.demo import demo_covers_as_loaded
    from gan.eval.judge import JudgeConfig, cached_judge

    size = size or resolution
    judge_covers_seed, *draw_seeds = [s for s in (3, 2, 4, 5) if s != training_seed][:3]
    images, labels = demo_covers_as_loaded(genres, DEMO_JUDGE_COVERS_PER_GENRE, size, judge_covers_seed, resolution)
    judge = cached_judge(images, labels, JudgeConfig(resolution=resolution, genres=list(genres),
                                                     steps=DEMO_JUDGE_STEPS, seed=judge_seed), device=device)
    draws = []
    for seed in draw_seeds:
        real, real_labels = demo_covers_as_loaded(genres, n, size, seed, resolution)
        draws.append({g: real[real_labels == i] for i, g in enumerate(genres)})
    return judge, draws[0], draws[1]


def realism_against_real(generator: CoverGenerator, real: dict[str, np.ndarray] | None, n: int = 200,
                         seed: int = 0, genres: list[str] | None = None) -> RealismReport:
    """Realism of a checkpoint's covers: against `real` covers (genre -> uint8 images, split at random
    into a reference, a floor and the judge's training covers), or, given none, against held-out demo
    covers when the checkpoint was trained on demo covers."""
    from gan.data.demo import demo_origin
    from gan.data.real import split_for_realism
    from gan.eval.judge import JudgeConfig, cached_judge

    if real:
        unknown = sorted(set(real) - set(generator.genres))
        if unknown:
            raise GanError(f"real covers of genre(s) {unknown} that the checkpoint does not know")
        images, labels, reference, floor = split_for_realism(real, n, seed)
        judge = cached_judge(images, labels, JudgeConfig(resolution=generator.resolution, genres=list(real)),
                             device=generator.device)
        source = "real covers given"
    else:
        origin = demo_origin(generator.info.get("data"))
        if origin is None:
            raise GanError("realism needs real covers to compare with: give --real (a folder with one sub-folder "
                           "per genre, or a CSV); only checkpoints trained on demo covers have a default")
        judge, reference, floor = demo_judge_and_real_covers(generator.genres, generator.resolution, n, origin.seed,
                                                             generator.device, origin.size)
        source = f"held-out demo covers (training used seed {origin.seed})"
    report = evaluate_realism(generator, judge, reference, floor, n, seed, genres)
    report.settings["real"] = source
    return report


def write_realism(report: RealismReport, out: Path) -> dict[str, Path]:
    """realism.csv (one row per genre and one for all genres), realism.json, realism.html (a bar chart)."""
    from gan.eval.figures import realism_figure

    rows = report.rows()
    return write_scores(out, "realism", rows, {"settings": report.settings, "scores": rows}, realism_figure(report))


def write_scores(out: Path, stem: str, rows: list[dict], summary: dict, figure) -> dict[str, Path]:
    """`out/<stem>.csv` (the rows), `<stem>.json` (the summary) and `<stem>.html` (the figure, self-contained)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / f"{stem}.csv", "json": out / f"{stem}.json", "html": out / f"{stem}.html"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    paths["json"].write_text(json.dumps(summary, indent=2))
    figure.write_html(paths["html"], include_plotlyjs="inline")
    return paths
