"""Covers of two genres at once: does a cover asked for "jazz+electronic" look like both?

For each tag pair the training data holds (`DataConfig.tag_pairs`), covers generated for the equal
mix of the pair are compared with real covers that carry exactly that pair:

* top-two accuracy: the share of covers whose two genres rated highest by a judge are exactly the
  pair. The judge is a `gan.eval.judge` network trained on real covers with their tag sets (target
  probabilities shared among a cover's tags), since one trained on single genres rates a real
  pair's second genre no higher than any other (24% top-two on real demo pairs, measured). The same
  share of the real pair covers is printed beside it: the judge's ceiling.
* realism: Frechet distance in that judge's features between generated and real pair covers,
  over the floor (two disjoint draws of real pair covers), as `gan.eval.realism` does per genre;
* within-pair diversity: mean MS-SSIM of random distinct pairs of covers, generated and real.

The issue's targets count pairs with at least `TARGET_MIN_COVERS` covers in the data; the others
are measured and shown all the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from gan.errors import GanError
from gan.eval.judge import Judge, tags_found
from gan.eval.msssim import ms_ssim_pairs, random_pairs, settings_for
from gan.eval.realism import frechet_distance, write_scores
from gan.sampling import CoverGenerator
from gan.tags import pair_name

TARGET_MIN_COVERS = 50
TOP_TWO_TARGET = 0.70
PAIR_REALISM_TARGET = 3.0
DEMO_JUDGE_SINGLES_PER_GENRE = 500  # as the single-genre demo judge
DEMO_JUDGE_COVERS_PER_PAIR = 100  # covers of each pair added, so that every pair is seen often enough
DEMO_JUDGE_STEPS = 800  # JudgeConfig's default


@dataclass
class PairScore:
    pair: str
    covers_in_data: int  # training covers carrying the pair
    n: int  # generated covers (and real covers in each of the reference and floor draws)
    top_two: float
    real_top_two: float
    frechet: float
    frechet_floor: float
    msssim_generated: float
    msssim_real: float

    @property
    def ratio(self) -> float:
        return self.frechet / self.frechet_floor if self.frechet_floor > 0 else float("inf")

    @property
    def counted(self) -> bool:
        """Whether the targets apply: the pair has at least TARGET_MIN_COVERS covers in the data."""
        return self.covers_in_data >= TARGET_MIN_COVERS

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "counted": self.counted}


@dataclass
class PairReport:
    scores: list[PairScore]
    settings: dict

    def rows(self) -> list[dict]:
        return [s.to_dict() for s in self.scores]

    def failures(self) -> list[str]:
        """The targets missed by pairs they apply to."""
        missed = []
        for s in (s for s in self.scores if s.counted):
            if s.top_two < TOP_TWO_TARGET:
                missed.append(f"{s.pair}: top-two accuracy {s.top_two:.0%} < {TOP_TWO_TARGET:.0%}")
            if s.ratio > PAIR_REALISM_TARGET:
                missed.append(f"{s.pair}: realism {s.ratio:.2f} > {PAIR_REALISM_TARGET}")
        return missed


def data_pairs(generator: CoverGenerator) -> dict[tuple[str, str], int]:
    """The tag pairs a checkpoint's training data held, with their cover counts, in genre order."""
    data = generator.info.get("data")
    counts = data.tag_pairs if data is not None else {}
    pairs = {(a, b): counts.get(pair_name(a, b, generator.genres), 0) for a, b in combinations(generator.genres, 2)}
    return {pair: count for pair, count in pairs.items() if count}


def mean_msssim(images: np.ndarray, pairs: int, seed: int) -> float:
    i, j = random_pairs(len(images), pairs, seed)
    return float(ms_ssim_pairs(images, i, j, settings_for(images.shape[1])).mean())


def pair_quality(generator: CoverGenerator, judge: Judge, reference: dict[tuple[str, str], np.ndarray],
                 floor: dict[tuple[str, str], np.ndarray], covers_in_data: dict[tuple[str, str], int],
                 n: int = 200, seed: int = 0, msssim_pairs: int = 300) -> PairReport:
    """Score the equal mix of each pair in `reference` (real covers of the pair, uint8 (N, R, R, 3);
    `floor`: another, disjoint draw) with `n` generated covers (noise `seed`)."""
    if not reference:
        raise GanError("no tag pairs to measure: the checkpoint's training data has no covers of two genres")
    noise = generator.sample_noise(n, seed)
    judge = judge.to(generator.device)
    scores = []
    for (a, b), real in reference.items():
        count = min(n, len(real), len(floor[(a, b)]))
        if count < 2:
            raise GanError(f"pair {a}+{b}: needs at least 2 real covers in each draw, got {count}")
        fake = generator.generate(noise[:count], {a: 1.0, b: 1.0})
        tags = np.zeros((count, len(judge.genres)))
        tags[:, [judge.genres.index(a), judge.genres.index(b)]] = 1
        (fake_features, fake_logits), (real_features, real_logits), (floor_features, _) = (
            judge.features_and_logits(images[:count]) for images in (fake, real, floor[(a, b)]))
        scores.append(PairScore(
            pair_name(a, b, generator.genres), covers_in_data.get((a, b), 0), count,
            top_two=float(tags_found(fake_logits, tags).mean()),
            real_top_two=float(tags_found(real_logits, tags).mean()),
            frechet=frechet_distance(fake_features, real_features),
            frechet_floor=frechet_distance(floor_features, real_features),
            msssim_generated=mean_msssim(fake, msssim_pairs, seed),
            msssim_real=mean_msssim(real[:count], msssim_pairs, seed)))
    return PairReport(scores, {"n": n, "seed": seed, "msssim_pairs": msssim_pairs,
                               "checkpoint": str(generator.checkpoint), "judge": judge.info,
                               "target_min_covers": TARGET_MIN_COVERS})


def demo_pair_judge_and_covers(genres: list[str], pairs: list[tuple[str, str]], resolution: int, n: int = 200,
                               training_seed: int = 0, size: int | None = None,
                               device: torch.device | str = "cpu"
                               ) -> tuple[Judge, dict[tuple[str, str], np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """For checkpoints trained on demo covers: a judge of tag sets trained on demo covers of another
    seed (every genre's covers with their tags, plus covers of every pair), and two disjoint held-out
    draws of `n` real covers per pair (reference and floor), with the seeds `gan.eval.realism` uses."""
    from gan.data.demo import DEMO_GENRES, demo_covers_as_loaded, demo_pair_covers, demo_tag_weights
    from gan.eval.judge import JudgeConfig, cached_judge

    size = size or resolution
    judge_seed, *draw_seeds = [s for s in (3, 2, 4, 5) if s != training_seed][:3]
    images, _ = demo_covers_as_loaded(genres, DEMO_JUDGE_SINGLES_PER_GENRE, size, judge_seed, resolution)
    tags = [demo_tag_weights(genres, DEMO_JUDGE_SINGLES_PER_GENRE, judge_seed)]
    images = [images]
    for a, b in combinations([g for g in genres if g in DEMO_GENRES], 2):
        images.append(demo_pair_covers((a, b), DEMO_JUDGE_COVERS_PER_PAIR, size, judge_seed, resolution))
        pair_tags = np.zeros((DEMO_JUDGE_COVERS_PER_PAIR, len(genres)), np.float32)
        pair_tags[:, [genres.index(a), genres.index(b)]] = 1
        tags.append(pair_tags)
    judge = cached_judge(np.concatenate(images), np.concatenate(tags),
                         JudgeConfig(resolution=resolution, genres=list(genres), steps=DEMO_JUDGE_STEPS), device=device)
    reference, floor = ({pair: demo_pair_covers(pair, n, size, seed, resolution) for pair in pairs}
                        for seed in draw_seeds)
    return judge, reference, floor


def real_pair_judge_and_covers(images: np.ndarray, tags: np.ndarray, genres: list[str], pairs: list[tuple[str, str]],
                               n: int = 200, seed: int = 0, device: torch.device | str = "cpu"
                               ) -> tuple[Judge, dict[tuple[str, str], np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """From real covers with their tag sets (uint8 (N, R, R, 3), multi-hot (N, len(genres))): each pair's
    covers split at random into a reference and a floor of `n` each (a third each when there are under
    3n), and a judge of tag sets trained on all the other covers."""
    from gan.data.real import three_way_split
    from gan.eval.judge import JudgeConfig, cached_judge

    rng = np.random.default_rng(seed)
    carried = tags > 0
    held = np.zeros(len(images), dtype=bool)
    reference, floor = {}, {}
    for a, b in pairs:
        want = np.zeros(len(genres), dtype=bool)
        want[[genres.index(a), genres.index(b)]] = True
        rows = np.flatnonzero((carried == want).all(axis=1))
        if len(rows) < 6:
            raise GanError(f"pair {a}+{b}: {len(rows)} real covers carry exactly these two genres; at least 6 "
                           "are needed (a reference, a floor and the judge's share)")
        reference_rows, floor_rows, _ = three_way_split(rng.permutation(rows), n)
        reference[(a, b)], floor[(a, b)] = images[reference_rows], images[floor_rows]
        held[reference_rows] = held[floor_rows] = True
    judge = cached_judge(images[~held], tags[~held].astype(np.float32),
                         JudgeConfig(resolution=images.shape[1], genres=list(genres)), device=device)
    return judge, reference, floor


def evaluate_pairs(generator: CoverGenerator, n: int = 200, seed: int = 0, real: str | Path | None = None
                   ) -> PairReport:
    """Pair quality of a checkpoint for each pair its training data held: against `real` covers with
    their tag sets (a labelled folder with tags.csv, a CSV with a genres column, or a pack), or, given
    none, against held-out demo covers when it was trained on demo covers."""
    from gan.data.demo import demo_origin

    pairs = data_pairs(generator)
    if not pairs:
        raise GanError("no tag pairs to measure: the checkpoint's training data has no covers of two genres")
    if real is not None:
        from gan.data.real import real_tagged_covers

        images, tags = real_tagged_covers(real, generator.resolution, generator.genres)
        judge, reference, floor = real_pair_judge_and_covers(images, tags, generator.genres, list(pairs), n, seed,
                                                             generator.device)
        report = pair_quality(generator, judge, reference, floor, pairs, n, seed)
        report.settings["real"] = f"real covers given ({real})"
        return report
    origin = demo_origin(generator.info.get("data"))
    if origin is None:
        raise GanError("pair quality needs real covers of the pairs: give --real (a folder with tags.csv, a CSV "
                       "with a genres column, or a pack); only checkpoints trained on demo covers have a default")
    judge, reference, floor = demo_pair_judge_and_covers(generator.genres, list(pairs), generator.resolution, n,
                                                         origin.seed, origin.size, generator.device)
    report = pair_quality(generator, judge, reference, floor, pairs, n, seed)
    report.settings["real"] = f"held-out demo covers (training used seed {origin.seed})"
    return report


def write_pairs(report: PairReport, out: Path) -> dict[str, Path]:
    """pairs.csv (one row per pair), pairs.json and pairs.html (top-two accuracy and realism per pair)."""
    from gan.eval.figures import pairs_figure

    rows = report.rows()
    return write_scores(out, "pairs", rows, {"settings": report.settings, "scores": rows,
                                             "failures": report.failures()}, pairs_figure(report))
