"""Pairwise MS-SSIM speed: our engine against pytorch-msssim on the same 64 px images and pairs.

Both compute the same numbers (checked here too, and in tests/test_eval_msssim.py); ours
computes each image's pyramid, means and variances once and filters only the cross product
per pair, with a shifted-slice Gaussian filter.

    python benchmarks/msssim_speed.py [--images 200] [--pairs 4000] [--all-pairs-images 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
from pytorch_msssim import ms_ssim

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.data.demo import demo_covers  # noqa: E402
from gan.eval.msssim import PairwiseMsssim, all_pairs, random_pairs, settings_for  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--all-pairs-images", type=int, default=1000,
                        help="also score all pairs of this many images and report time and peak memory (0: skip)")
    args = parser.parse_args()
    settings = settings_for(64)
    if args.all_pairs_images:  # first, so that the peak memory is this part's alone
        many, _ = demo_covers(per_genre=max(2, args.all_pairs_images // 8), size=64, seed=1)
        ai, aj = all_pairs(len(many))
        start = time.perf_counter()
        PairwiseMsssim(many, settings)(ai, aj, args.batch_size)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"all {len(ai)} pairs of {len(many)} images: {seconds:.1f} s, peak memory of this process {peak:.2f} GiB")

    images, _ = demo_covers(per_genre=max(2, args.images // 8), size=64)
    i, j = random_pairs(len(images), args.pairs, seed=0)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()

    def reference():
        return torch.cat([ms_ssim(x[i[s:s + args.batch_size]], x[j[s:s + args.batch_size]], data_range=255,
                                  size_average=False, win_size=settings.win_size)
                          for s in range(0, len(i), args.batch_size)])

    def ours():
        return PairwiseMsssim(images, settings)(i, j, args.batch_size)  # includes the per-image work

    ref_seconds, our_seconds = [], []
    for _ in range(args.repeats):  # alternate, and keep the best of each: the least disturbed run
        for timings, run in ((ref_seconds, reference), (our_seconds, ours)):
            start = time.perf_counter()
            result = run()
            timings.append(time.perf_counter() - start)
            if run is reference:
                expected = result
            else:
                difference = float((result - expected).abs().max())
    ref_best, our_best = min(ref_seconds), min(our_seconds)
    print(f"{len(images)} images of 64 px, {len(i)} pairs, {torch.get_num_threads()} threads, "
          f"window {settings.win_size}; max |difference| {difference:.2e}; best of {args.repeats}")
    print(f"pytorch-msssim  {len(i) / ref_best:9.0f} pairs/s")
    print(f"ours            {len(i) / our_best:9.0f} pairs/s   {ref_best / our_best:.1f}x")


if __name__ == "__main__":
    main()
