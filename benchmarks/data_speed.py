"""Images per second delivered to the training loop: a pack against ImageFolder + DataLoader.

Both pipelines read the same JPEG covers (300 px, Spotify's middle size, one folder per genre)
and deliver what `PhaseTrainer` consumes: a float batch in [-1, 1] at 64 px with its labels.

* folder: torchvision ImageFolder (decode, resize, centre-crop, to tensor, normalise) in a
  DataLoader with one worker per core, shuffled, batch 64: the usual PyTorch recipe;
* pack: `python -m gan data pack` once (its time and rate are printed too), then
  `gan.data.batches.RandomBatches` over the memory-mapped pack, as training uses it.

With `--scale N` it also packs N images from a tar archive in a child process and reports
its peak memory against the pack's size: packing streams, so memory stays flat however large
the set (OMACIR's 800k covers are 9.8 GB at 64 px).

    python benchmarks/data_speed.py [--images 2000] [--seconds 5] [--scale 100000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan.data.batches import RandomBatches  # noqa: E402
from gan.data.demo import DEMO_GENRES, demo_covers  # noqa: E402
from gan.data.pack import open_pack, write_pack  # noqa: E402

RESOLUTION, BATCH = 64, 64
PACK_TARGET_RATIO, PACK_TARGET_RATE = 20, 20_000


def write_jpeg_folder(root: Path, images: int, size: int) -> None:
    covers, labels = demo_covers(per_genre=max(1, images // len(DEMO_GENRES)), size=size, seed=5)
    for i, (pixels, label) in enumerate(zip(covers, labels)):
        folder = root / DEMO_GENRES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)


def rate(next_batch, seconds: float) -> float:
    next_batch()  # warm up (workers start, pages mapped)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        real, _ = next_batch()
        count += real.shape[0]
    return count / (time.perf_counter() - start)


def folder_pipeline(root: Path):
    transform = transforms.Compose([transforms.Resize(RESOLUTION), transforms.CenterCrop(RESOLUTION),
                                    transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)])
    loader = DataLoader(datasets.ImageFolder(root, transform), batch_size=BATCH, shuffle=True,
                        num_workers=os.cpu_count() or 1, persistent_workers=True, drop_last=True)
    state = {"it": iter(loader)}

    def next_batch():
        try:
            return next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            return next(state["it"])

    return next_batch


def scale_check(n: int, work: Path) -> None:
    """Pack n images from a tar in a child process; print its peak RSS against the pack size."""
    covers, _ = demo_covers(per_genre=32, size=RESOLUTION * 2, seed=6)
    encoded = []
    for pixels in covers:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
        encoded.append(buffer.getvalue())
    archive = work / "scale.tar"
    with tarfile.open(archive, "w") as tf:  # n members cycling over a few hundred distinct covers
        for i in range(n):
            data = encoded[i % len(encoded)]
            info = tarfile.TarInfo(f"{i // 10000:03d}/{i:07d}.jpg")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    # VmHWM (peak resident memory) starts afresh at exec, unlike ru_maxrss, which a child
    # inherits from its parent. The baseline is the same process right after its imports.
    code = ("import json, re, sys; sys.path.insert(0, sys.argv[3]);"
            "from gan.data.pack import write_pack;"
            "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024;"
            "base = hwm();"
            "info = write_pack(sys.argv[1], sys.argv[2], 64);"
            "print(json.dumps({'count': info.count, 'seconds': info.seconds, 'base_mib': base, 'peak_mib': hwm()}))")
    result = subprocess.run([sys.executable, "-c", code, str(archive), str(work / "scale.pack"), str(ROOT)],
                            capture_output=True, text=True, check=True)
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    size_mib = (work / "scale.pack" / "images.u8").stat().st_size / 2**20
    print(f"scale: packed {stats['count']} images from a tar in {stats['seconds']:.0f} s "
          f"({stats['count'] / stats['seconds']:.0f} images/s); pack {size_mib:.0f} MiB, "
          f"peak memory of the packing process {stats['peak_mib']:.0f} MiB, of which {stats['base_mib']:.0f} MiB "
          f"before packing (Python, PyTorch)")
    data = open_pack(work / "scale.pack", RESOLUTION, labelled=False)
    batches = RandomBatches(data.images, None, BATCH, seed=0, device=torch.device("cpu"), channels_last=True)
    print(f"scale: {rate(batches.next, 3):.0f} images/s delivered from it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="JPEG covers in the folder (default %(default)s)")
    parser.add_argument("--size", type=int, default=300, help="their side in pixels (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=5, help="measuring time per pipeline (default %(default)s)")
    parser.add_argument("--scale", type=int, default=0, help="also pack this many images from a tar (default: skip)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_jpeg_folder(work / "covers", args.images, args.size)
        info = write_pack(work / "covers", work / "covers.pack", RESOLUTION, labelled=True)
        print(f"pack: {info.count} JPEGs at {args.size} px packed at {RESOLUTION} px in {info.seconds:.1f} s "
              f"({info.count / info.seconds:.0f} images/s, {os.cpu_count()} cores)")
        data = open_pack(work / "covers.pack", RESOLUTION, labelled=True)
        batches = RandomBatches(data.images, data.labels, BATCH, seed=0, device=torch.device("cpu"),
                                channels_last=True)
        packed = rate(batches.next, args.seconds)
        folder = rate(folder_pipeline(work / "covers"), args.seconds)
        ratio = packed / folder
        print(f"{'pipeline':<36}{'images/s':>12}")
        print(f"{'ImageFolder + DataLoader':<36}{folder:>12.0f}")
        print(f"{'pack (memory-mapped)':<36}{packed:>12.0f}")
        print(f"ratio {ratio:.1f}x (target >= {PACK_TARGET_RATIO}x); pack {packed:.0f} images/s "
              f"(target >= {PACK_TARGET_RATE})")
        if args.scale:
            scale_check(args.scale, work)
    sys.exit(0 if ratio >= PACK_TARGET_RATIO and packed >= PACK_TARGET_RATE else 1)


if __name__ == "__main__":
    main()
