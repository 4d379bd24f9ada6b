"""Quality of a checkpoint trained on the demo covers: realism, genre fidelity and within-genre diversity.

* Realism (the headline): Frechet distance in the feature space of our judge, a CNN genre
  classifier trained on real demo covers that training never saw (seed 3; training uses seed 0),
  between generated covers and real ones (seed 2), divided by the same distance between two
  disjoint draws of real covers (seeds 2 and 4): the floor. Per genre and over all genres; KID
  beside it, and the spread (generated covers' feature variance over real covers': below 1, less
  varied in the judge's eyes). Targets: ratio at most 2.0 over all genres and 3.0 in the worst. See
  gan/eval/realism.py and gan/eval/judge.py. With `--judges K`, K-1 more judges trained on the
  same covers with other seeds of their own give second opinions (targets stay on the first):
  how far a figure depends on one judge's view.
* Genre fidelity: a logistic-regression classifier on colour and edge features, trained on real
  demo covers of seed 1, labels generated covers; target: at least 90% of each genre's generated
  covers assigned to the genre they were asked for. Its accuracy on further real covers (seed 2)
  is printed beside it, as the ceiling. (A second opinion from another kind of model than the judge.)
* Diversity: mean MS-SSIM of random distinct pairs within a genre, generated against real
  (seed 2); target: generated no higher than real + 0.03 (higher means more alike: mode collapse).
  MS-SSIM at 64 px: pytorch-msssim with a 3x3 Gaussian window (sigma 1.5) and its five default
  scales, since its default 11x11 window needs images larger than 160 px.
* Nearest (no target): the median distance from each generated cover to its nearest real cover of
  the genre (16x16 thumbnails, the seed-1 covers), divided by the same for further real covers
  (seed 2); about 1 for covers as close to real ones as real ones are.
* Genre pairs, for checkpoints whose training covers carried two genres (gan/eval/pairs.py): per pair,
  top-two accuracy of covers of the equal mix by a judge of tag sets (real covers' beside it),
  realism against held-out real covers of the pair, within-pair MS-SSIM. Targets (pairs with at
  least 50 covers in the data): top-two at least 70%, realism at most 3.0.

    python benchmarks/demo_quality.py [--checkpoint checkpoints/demo] [--n 200] [--pairs 300] [--seed 0] [--judges 1]
                                      [--json FILE]

Exits with status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan import load_generator  # noqa: E402
from gan.data.demo import demo_covers  # noqa: E402
from gan.eval.judge import Judge  # noqa: E402
from gan.eval.nearest import nearest, thumbnails  # noqa: E402
from gan.eval.pairs import data_pairs, evaluate_pairs  # noqa: E402
from gan.eval.realism import OVERALL, RealismReport, demo_judge_and_real_covers, evaluate_realism  # noqa: E402

MSSSIM_WINDOW = 3
FIDELITY_TARGET = 0.90
DIVERSITY_MARGIN = 0.03
REALISM_TARGET_OVERALL = 2.0
REALISM_TARGET_WORST = 3.0


def features(images: np.ndarray) -> np.ndarray:
    """What tells the demo genres apart: a thumbnail, colour statistics, a joint colour histogram
    (4 levels per channel) and a histogram of edge orientations weighted by edge strength."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    thumb = F.adaptive_avg_pool2d(x, 16).flatten(1)
    luma = (x * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1)
    saturation = x.amax(1) - x.amin(1)
    stats = torch.stack([luma.mean((1, 2)), luma.std((1, 2)), saturation.mean((1, 2)), saturation.std((1, 2))], 1)
    levels = (x * 3.999).long()
    colour_hist = F.one_hot((levels[:, 0] * 16 + levels[:, 1] * 4 + levels[:, 2]).flatten(1), 64).float().mean(1)
    dx = (luma[:, :-1, 1:] - luma[:, :-1, :-1]).flatten(1)
    dy = (luma[:, 1:, :-1] - luma[:, :-1, :-1]).flatten(1)
    magnitude = (dx**2 + dy**2).sqrt()
    bins = ((torch.atan2(dy, dx) + np.pi) / (2 * np.pi) * 7.999).long()
    orientation = (F.one_hot(bins, 8).float() * magnitude[..., None]).sum(1)
    orientation = orientation / (orientation.sum(1, keepdim=True) + 1e-6)
    return torch.cat([thumb, stats, colour_hist, orientation, magnitude.mean(1, keepdim=True)], 1).numpy()


def mean_pairwise_msssim(images: np.ndarray, pairs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    n = len(images)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n  # distinct from i
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    scores = ms_ssim(x[i], x[j], data_range=255, size_average=False, win_size=MSSSIM_WINDOW)
    return float(scores.mean())


def median_nearest_distance(images: np.ndarray, pool: torch.Tensor) -> float:
    distances, _ = nearest(thumbnails(images), pool, k=1)
    return float(distances.median())


def second_opinions(generator, args: argparse.Namespace, reference: dict, floor: dict, first: RealismReport,
                    first_judge: Judge) -> list[dict]:
    """Realism by judges 0..K-1 (`--judges K`): the same covers, each judge trained with its own seed;
    judge 0 is the one the targets use (`first`, already measured)."""
    print(f"\nrealism by {args.judges} judges (same covers, each judge trained with its own seed)")
    print(f"{'judge':>5s} {'accuracy':>9s} {'all genres':>11s} {'mean':>6s} {'worst':>16s}")
    opinions = []
    for judge_seed in range(args.judges):
        judge, report = first_judge, first
        if judge_seed:
            judge, _, _ = demo_judge_and_real_covers(generator.genres, generator.resolution, n=args.n,
                                                     judge_seed=judge_seed)
            report = evaluate_realism(generator, judge, reference, floor, args.n, args.seed)
        per_genre = [s for s in report.scores if s.genre != OVERALL]
        worst = max(per_genre, key=lambda s: s.ratio)
        opinion = {"judge_seed": judge_seed, "held_out_accuracy": judge.info.get("held_out_accuracy"),
                   "overall": next(s.ratio for s in report.scores if s.genre == OVERALL),
                   "mean": float(np.mean([s.ratio for s in per_genre])), "worst": worst.ratio,
                   "worst_genre": worst.genre}
        print(f"{judge_seed:5d} {opinion['held_out_accuracy']:9.1%} {opinion['overall']:11.2f} {opinion['mean']:6.2f} "
              f"{worst.ratio:7.2f} ({worst.genre})")
        opinions.append(opinion)
    for key in ("overall", "mean", "worst"):
        values = [o[key] for o in opinions]
        print(f"{key:>10s}: {np.mean(values):.2f} on average, {min(values):.2f} to {max(values):.2f}")
    return opinions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="checkpoint or run folder (default: checkpoints/demo)")
    parser.add_argument("--n", type=int, default=200, help="generated and real covers per genre")
    parser.add_argument("--pairs", type=int, default=300, help="MS-SSIM pairs per genre and source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judges", type=int, default=1,
                        help="judges of realism, each trained with its own seed; the targets use the first")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.judges < 1:
        parser.error(f"--judges must be at least 1, got {args.judges}")

    generator = load_generator(args.checkpoint)
    genres = generator.genres
    size = generator.resolution
    train_images, train_labels = demo_covers(genres, per_genre=400, size=size, seed=1)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.05))
    classifier.fit(features(train_images), train_labels)
    real_images, real_labels = demo_covers(genres, per_genre=args.n, size=size, seed=2)
    real_predicted = classifier.predict(features(real_images))

    judge, reference, floor = demo_judge_and_real_covers(genres, size, n=args.n)
    realism_report = evaluate_realism(generator, judge, reference, floor, args.n, args.seed)
    realism = {s.genre: s for s in realism_report.scores}

    noise = generator.sample_noise(args.n, seed=args.seed)
    rows, failures = [], []
    print(f"checkpoint {generator.checkpoint}, {args.n} covers per genre, {args.pairs} MS-SSIM pairs; "
          f"judge: {100 * judge.info.get('held_out_accuracy', float('nan')):.1f}% on held-out real covers")
    print(f"{'genre':12s} {'realism':>8s} {'FD':>7s} {'floor':>6s} {'KID':>7s} {'spread':>6s} {'fidelity':>9s} "
          f"{'(real)':>7s} {'MS-SSIM gen':>12s} {'real':>6s} {'nearest':>8s}")
    for index, genre in enumerate(genres):
        fake = generator.generate(noise, genre)
        fidelity = float((classifier.predict(features(fake)) == index).mean())
        real_fidelity = float((real_predicted[real_labels == index] == index).mean())
        gen_msssim = mean_pairwise_msssim(fake, args.pairs, args.seed)
        real_msssim = mean_pairwise_msssim(real_images[real_labels == index], args.pairs, args.seed)
        pool = thumbnails(train_images[train_labels == index])
        nearest_ratio = (median_nearest_distance(fake, pool)
                         / median_nearest_distance(real_images[real_labels == index], pool))
        score = realism[genre]
        rows.append({"genre": genre, "realism": score.ratio, "frechet": score.frechet,
                     "frechet_floor": score.frechet_floor, "kid": score.kid, "kid_floor": score.kid_floor,
                     "judge_accuracy": score.judge_accuracy, "spread": score.spread,
                     "fidelity": fidelity, "real_fidelity": real_fidelity, "msssim_generated": gen_msssim,
                     "msssim_real": real_msssim, "nearest": nearest_ratio})
        print(f"{genre:12s} {score.ratio:8.2f} {score.frechet:7.3f} {score.frechet_floor:6.3f} {score.kid:7.4f} "
              f"{score.spread:6.2f} {fidelity:9.1%} {real_fidelity:7.1%} {gen_msssim:12.3f} {real_msssim:6.3f} "
              f"{nearest_ratio:8.2f}")
        if fidelity < FIDELITY_TARGET:
            failures.append(f"{genre}: fidelity {fidelity:.1%} < {FIDELITY_TARGET:.0%}")
        if gen_msssim > real_msssim + DIVERSITY_MARGIN:
            failures.append(f"{genre}: MS-SSIM {gen_msssim:.3f} > real {real_msssim:.3f} + {DIVERSITY_MARGIN}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "genre"}
    overall = realism[OVERALL]
    worst = max(rows, key=lambda r: r["realism"])
    print(f"{'mean':12s} {mean['realism']:8.2f} {'':7s} {'':6s} {'':7s} {mean['spread']:6.2f} "
          f"{mean['fidelity']:9.1%} {mean['real_fidelity']:7.1%} {mean['msssim_generated']:12.3f} "
          f"{mean['msssim_real']:6.3f} {mean['nearest']:8.2f}")
    print(f"{'all genres':12s} {overall.ratio:8.2f} {overall.frechet:7.3f} {overall.frechet_floor:6.3f} "
          f"{overall.kid:7.4f} {overall.spread:6.2f}")
    if overall.ratio > REALISM_TARGET_OVERALL:
        failures.append(f"realism over all genres {overall.ratio:.2f} > {REALISM_TARGET_OVERALL}")
    if worst["realism"] > REALISM_TARGET_WORST:
        failures.append(f"realism of {worst['genre']} {worst['realism']:.2f} > {REALISM_TARGET_WORST}")
    opinions = second_opinions(generator, args, reference, floor, realism_report, judge) if args.judges > 1 else []
    tag_pairs = None
    if data_pairs(generator):
        tag_pairs = evaluate_pairs(generator, args.n, args.seed)
        found = tag_pairs.settings["judge"].get("held_out_accuracy", float("nan"))
        print(f"\ngenre pairs ({found:.1%} of held-out real covers' tag sets found by the judge of tag sets; "
              "* fewer covers in the data than the targets count)")
        print(f"{'pair':24s} {'covers':>6s} {'top two':>8s} {'(real)':>7s} {'realism':>8s} {'MS-SSIM gen':>12s} "
              f"{'real':>6s}")
        for p in tag_pairs.scores:
            print(f"{p.pair + ('' if p.counted else ' *'):24s} {p.covers_in_data:6d} {p.top_two:8.1%} "
                  f"{p.real_top_two:7.1%} {p.ratio:8.2f} {p.msssim_generated:12.3f} {p.msssim_real:6.3f}")
        mean_pairs = {k: float(np.mean([getattr(p, k) for p in tag_pairs.scores]))
                      for k in ("top_two", "real_top_two", "ratio", "msssim_generated", "msssim_real")}
        print(f"{'mean':24s} {'':6s} {mean_pairs['top_two']:8.1%} {mean_pairs['real_top_two']:7.1%} "
              f"{mean_pairs['ratio']:8.2f} {mean_pairs['msssim_generated']:12.3f} {mean_pairs['msssim_real']:6.3f}")
        failures += tag_pairs.failures()
    print("all targets met" if not failures else "targets missed: " + "; ".join(failures))
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": str(generator.checkpoint), "n": args.n,
                                               "pairs": args.pairs, "seed": args.seed,
                                               "msssim_win_size": MSSSIM_WINDOW, "judge": judge.info,
                                               "overall": overall.to_dict(), "genres": rows, "mean": mean,
                                               "genre_pairs": tag_pairs.rows() if tag_pairs else None,
                                               "judges": opinions,
                                               "failures": failures}, indent=2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
