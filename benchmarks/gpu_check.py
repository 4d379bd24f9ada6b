"""One check of the GPU path, printed as one table; exits 1 if any part fails.

On a machine with a GPU, in one call (a few minutes):

    python benchmarks/gpu_check.py                  # --device cuda
    python benchmarks/gpu_check.py --device cpu --tiny   # the same parts at toy sizes: a self-check here

Parts, each run as its own process so that one failure does not hide the others:

* speed: `benchmarks/train_speed.py` at batch 64, 256 and 1024 (reference loop, our default step,
  fp32 and bf16, our compiled step, and the compiled step replayed as CUDA graphs), img/s and the
  ratio to the reference;
* train: `python -m gan train` with pre-training and fine-tuning on demo covers, on the device;
* torchrun: the same fine-tuning under `torchrun --nproc_per_node 1` (NCCL on a GPU, gloo on the
  CPU), with the global batch norm;
* msssim: our pairwise MS-SSIM engine on the device against pytorch-msssim on the device: largest
  difference of the scores and pairs/s of each;
* judge: the realism judge trained on the device, its features there against the CPU's (the
  largest difference relative to the largest feature, at most 1e-5);
* colour: brightness, contrast, saturation, colourfulness and the hue histogram computed on the
  device against the CPU's (largest difference, at most 1e-5 of each statistic's scale);
* resume: a run trained on the CPU resumed on the device (and its final checkpoint written).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {  # what each part trains and measures, at full and at toy size
    "full": {"batches": (64, 256, 1024), "width": 64, "resolution": 64, "seconds": 4, "per_genre": 200,
             "unlabelled": 1000, "steps": 200, "covers": 1000},
    "tiny": {"batches": (8,), "width": 8, "resolution": 32, "seconds": 0.3, "per_genre": 12,
             "unlabelled": 24, "steps": 2, "covers": 12},
}


class Check:
    def __init__(self, device: str, sizes: dict, work: Path, variants: str):
        self.device, self.sizes, self.work, self.variants = device, sizes, work, variants
        self.rows: list[tuple[str, bool, str]] = []
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "COVERGAN_CACHE_DIR": str(work / "cache")}

    def run(self, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout)

    def part(self, name: str, function) -> None:
        start = time.perf_counter()
        try:
            ok, detail = function()
        except Exception as error:  # a part that breaks is reported as failed, and the others still run
            ok, detail = False, f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:160]}"
        self.rows.append((name, ok, f"{detail} ({time.perf_counter() - start:.0f} s)"))

    @staticmethod
    def failed(result: subprocess.CompletedProcess) -> tuple[bool, str]:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        return False, f"exit {result.returncode}: {lines[-1][:160]}"

    def speed(self, batch: int) -> tuple[bool, str]:
        s = self.sizes
        result = self.run([sys.executable, str(ROOT / "benchmarks" / "train_speed.py"), "--device", self.device,
                           "--batch-size", str(batch), "--width", str(s["width"]), "--resolution",
                           str(s["resolution"]), "--seconds", str(s["seconds"]), "--variants", self.variants])
        if result.returncode:
            return self.failed(result)
        figures = re.findall(r"^(reference|ours: \w+).*?([\d.]+) img/s\s+([\d.]+)x", result.stdout, re.M)
        failures = re.findall(r"^ours: (\w+)\s+failed: (.*)$", result.stdout, re.M)
        detail = "; ".join(f"{name} {float(rate):,.0f} img/s ({ratio}x)" for name, rate, ratio in figures)
        detail += "".join(f"; {name} failed: {why[:100]}" for name, why in failures)
        return not failures and len(figures) == 1 + len(self.variants.split(",")), detail

    def demo_data(self) -> Path:
        out = self.work / "demo-data"
        if not out.exists():
            s = self.sizes
            result = self.run([sys.executable, "-m", "gan", "demo-data", "--out", str(out), "--per-genre",
                               str(s["per_genre"]), "--unlabelled", str(s["unlabelled"]), "--size",
                               str(s["resolution"])])
            if result.returncode:
                raise RuntimeError(result.stderr.strip().splitlines()[-1])
        return out

    def train_args(self, out: str, device: str) -> list[str]:
        s = self.sizes
        return ["train", "--out", out, "--resolution", str(s["resolution"]), "--width", str(s["width"]),
                "--batch-size", str(s["batches"][0]), "--device", device, "--no-progress",
                "--eval-every", str(s["steps"]), "--eval-covers", "30", "--checkpoint-every", str(s["steps"])]

    def train(self) -> tuple[bool, str]:
        data, steps = self.demo_data(), str(self.sizes["steps"])
        start = time.perf_counter()
        result = self.run([sys.executable, "-m", "gan", *self.train_args("runs/train", self.device),
                           "--pretrain-data", str(data / "unlabelled"), "--pretrain-steps", steps,
                           "--data", str(data / "labelled"), "--steps", steps])
        if result.returncode:
            return self.failed(result)
        final = self.work / "runs" / "train" / "checkpoints" / f"finetune-{int(steps):07d}"
        return final.is_dir(), f"{steps} + {steps} steps in {time.perf_counter() - start:.0f} s, {final.name}"

    def torchrun(self) -> tuple[bool, str]:
        data = self.demo_data()
        result = self.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
                           "-m", "gan", *self.train_args("runs/torchrun", self.device),
                           "--data", str(data / "labelled"), "--steps", str(self.sizes["steps"])])
        if result.returncode:
            return self.failed(result)
        backend = "nccl" if self.device.startswith("cuda") else "gloo"
        return True, f"1 process ({backend}), final checkpoint written"

    def msssim(self) -> tuple[bool, str]:
        import numpy as np
        import torch
        from pytorch_msssim import ms_ssim

        from gan.data.demo import demo_covers
        from gan.eval.msssim import PairwiseMsssim, all_pairs, settings_for

        genres = ("jazz", "metal", "pop", "rock")
        images, _ = demo_covers(genres, per_genre=self.sizes["covers"] // len(genres), size=64, seed=5)
        i, j = all_pairs(len(images))
        settings = settings_for(64)
        device = torch.device(self.device)

        def synced(function):
            start = time.perf_counter()
            value = function()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return value, time.perf_counter() - start

        ours, ours_seconds = synced(lambda: PairwiseMsssim(images, settings, device)(i, j))
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().to(device)
        ti, tj = torch.as_tensor(i, device=device), torch.as_tensor(j, device=device)
        chunk = 4096 if device.type == "cuda" else 256
        theirs, theirs_seconds = synced(lambda: torch.cat([
            ms_ssim(x[ti[s:s + chunk]], x[tj[s:s + chunk]], data_range=255, size_average=False,
                    win_size=settings.win_size).cpu() for s in range(0, len(i), chunk)]))
        difference = float((ours - theirs).abs().max())
        detail = (f"{len(i):,} pairs: ours {len(i) / ours_seconds:,.0f} pairs/s, pytorch-msssim "
                  f"{len(i) / theirs_seconds:,.0f} pairs/s; largest difference {difference:.1e}")
        return bool(np.isfinite(difference) and difference <= 1e-5), detail

    def judge(self) -> tuple[bool, str]:
        """The realism judge trained on the device, then its features there against the CPU's."""
        import numpy as np
        import torch

        from gan.data.demo import demo_covers
        from gan.eval.judge import JudgeConfig, train_judge

        genres = ["jazz", "metal", "pop", "rock"]
        images, labels = demo_covers(genres, per_genre=max(8, self.sizes["covers"] // len(genres)), size=64, seed=6)
        config = JudgeConfig(resolution=64, genres=genres, steps=self.sizes["steps"])
        start = time.perf_counter()
        judge = train_judge(images, labels, config, device=self.device)
        trained = time.perf_counter() - start
        start = time.perf_counter()
        there = judge.features(images)
        measured = time.perf_counter() - start
        here = judge.to("cpu").features(images)
        difference = float(np.abs(there - here).max() / max(np.abs(here).max(), 1e-12))
        detail = (f"trained {config.steps} steps in {trained:.1f} s; features of {len(images)} covers in "
                  f"{measured:.2f} s; largest difference from the CPU {difference:.1e} of the largest feature")
        return bool(np.isfinite(difference) and difference <= 1e-5 and torch.device(self.device).type
                    == judge.info["trained_on_device"]), detail

    def colour(self) -> tuple[bool, str]:
        """Colour statistics on the device against the CPU's."""
        import numpy as np

        from gan.data.demo import DEMO_GENRES, demo_covers
        from gan.eval.colour import hue_histogram, image_statistics

        images, _ = demo_covers(DEMO_GENRES, per_genre=max(2, self.sizes["covers"] // len(DEMO_GENRES)), size=64,
                                seed=7)
        start = time.perf_counter()
        there, there_hue = image_statistics(images, self.device), hue_histogram(images, device=self.device)
        measured = time.perf_counter() - start
        here, here_hue = image_statistics(images, "cpu"), hue_histogram(images, device="cpu")
        differences = {m: float(np.abs(there[m] - here[m]).max() / max(1.0, np.abs(here[m]).max())) for m in here}
        differences["hue"] = float(np.abs(there_hue - here_hue).max())
        worst = max(differences, key=differences.get)
        detail = (f"{len(images)} covers in {measured:.2f} s; largest difference from the CPU "
                  f"{differences[worst]:.1e} ({worst})")
        return all(np.isfinite(v) and v <= 1e-5 for v in differences.values()), detail

    def resume(self) -> tuple[bool, str]:
        data, steps = self.demo_data(), self.sizes["steps"]
        common = ["--data", str(data / "labelled")]
        first = self.run([sys.executable, "-m", "gan", *self.train_args("runs/resume", "cpu"), *common,
                          "--steps", str(steps)])
        if first.returncode:
            return self.failed(first)
        second = self.run([sys.executable, "-m", "gan", "train", "--out", "runs/resume", "--resume", "--steps",
                           str(2 * steps), "--device", self.device, "--no-progress"])
        if second.returncode:
            return self.failed(second)
        final = self.work / "runs" / "resume" / "checkpoints" / f"finetune-{2 * steps:07d}"
        return final.is_dir(), f"cpu to step {steps}, {self.device} to step {2 * steps}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks that every part runs, measures nothing")
    parser.add_argument("--variants", default="default,fp32-contiguous,bf16,compile,graphs",
                        help="our training-step variants to time against the reference (train_speed.py's names)")
    args = parser.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device here; use --device cpu for the self-check", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "CPU"
    sizes = SIZES["tiny" if args.tiny else "full"]
    with tempfile.TemporaryDirectory() as tmp:
        check = Check(args.device, sizes, Path(tmp), args.variants)
        for batch in sizes["batches"]:
            check.part(f"speed, batch {batch}", lambda batch=batch: check.speed(batch))
        check.part("train (pre-training + fine-tuning)", check.train)
        check.part("torchrun --nproc_per_node 1", check.torchrun)
        check.part("MS-SSIM engine", check.msssim)
        check.part("realism judge", check.judge)
        check.part("colour statistics", check.colour)
        check.part(f"resume: cpu -> {args.device}", check.resume)
    print(f"\n{name}, torch {torch.__version__}, device {args.device}{' (tiny sizes)' if args.tiny else ''}\n")
    print("| part | result | detail |\n|---|---|---|")
    for part, ok, detail in check.rows:
        print(f"| {part} | {'ok' if ok else 'FAILED'} | {detail} |")
    return 0 if all(ok for _, ok, _ in check.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
