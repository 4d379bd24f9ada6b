"""Training speed: our training step against a plain fp32 loop of the same architecture.

The reference is the loop of pytorch/examples' DCGAN: fp32, contiguous tensors, BCE loss, D's
weight gradients computed during the G step too. Ours is `PhaseTrainer.train_step` with the
settings `python -m gan train` would use on this machine (and the variants below). Both run
here, one after the other, on the same model config and batch; the ratio is printed.

    python benchmarks/train_speed.py [--device cpu|cuda] [--resolution 64] [--batch-size 64] [--width 64]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.config import DataConfig, ModelConfig, TrainConfig  # noqa: E402
from gan.data.folders import ImageSet  # noqa: E402
from gan.models import build_discriminator, build_generator  # noqa: E402
from gan.train.device import resolve_device, resolve_precision  # noqa: E402
from gan.train.loop import PhaseTrainer  # noqa: E402
from gan.train.run import RunFolder  # noqa: E402


def time_steps(step, warmup: int, seconds: float, device: torch.device) -> float:
    """Seconds per step: median of timed steps after warm-up, at least 5 steps or `seconds`."""
    for _ in range(warmup):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def reference_step_fn(model: ModelConfig, batch: int, device: torch.device):
    torch.manual_seed(0)
    model = dataclasses.replace(model, projection=False)  # pytorch/examples' AC-GAN: a genre-blind realness head
    G, D = build_generator(model).to(device), build_discriminator(model).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 3, model.resolution, model.resolution, device=device) * 2 - 1
    labels = torch.randint(model.num_genres, (batch,), device=device)
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def step():
        noise = torch.randn(batch, model.latent_dim, device=device)
        fake_labels = torch.randint(model.num_genres, (batch,), device=device)
        D.zero_grad()
        real_score, real_logits = D(real)
        loss_real = F.binary_cross_entropy_with_logits(real_score, ones) + F.cross_entropy(real_logits, labels)
        loss_real.backward()
        fake = G(noise, fake_labels)
        fake_score, _ = D(fake.detach())
        F.binary_cross_entropy_with_logits(fake_score, zeros).backward()
        opt_d.step()
        G.zero_grad()
        score, logits = D(fake)
        (F.binary_cross_entropy_with_logits(score, ones) + F.cross_entropy(logits, fake_labels)).backward()
        opt_g.step()

    return step


def our_step_fn(model: ModelConfig, train: TrainConfig, run_dir: Path):
    rng = np.random.default_rng(0)
    n = 512
    images = rng.integers(0, 256, (n, 3, model.resolution, model.resolution), dtype=np.uint8)
    labels = rng.integers(0, model.num_genres, n)
    data = ImageSet(images, labels, model.genres, DataConfig(path="synthetic", kind="benchmark", num_images=n))
    trainer = PhaseTrainer(RunFolder(run_dir), model, train, data, progress=False)
    trainer.nets.generator.train()
    trainer.nets.discriminator.train()
    return lambda: trainer.train_step(*trainer.next_batch())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="time per variant")
    parser.add_argument("--variants", default="default,fp32-contiguous,fp32-channels-last,compile",
                        help="comma-separated: default, fp32-contiguous, fp32-channels-last, bf16, compile, graphs "
                             "(compiled with mode reduce-overhead: CUDA graphs on a GPU)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model = ModelConfig(resolution=args.resolution, width=args.width, genres=[f"g{i}" for i in range(8)])
    auto_dtype = resolve_precision("auto", device, args.batch_size)
    print(f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{args.resolution} px, batch {args.batch_size}, width {args.width}; "
          f"--precision auto resolves to {auto_dtype or 'fp32'}")

    ref = args.batch_size / time_steps(reference_step_fn(model, args.batch_size, device), 3, args.seconds, device)
    print(f"{'reference (pytorch/examples DCGAN loop, fp32)':48s} {ref:8.1f} img/s   1.00x")
    variants = {
        "default": {},
        "fp32-contiguous": {"precision": "fp32", "channels_last": False},
        "fp32-channels-last": {"precision": "fp32", "channels_last": True},
        "bf16": {"precision": "bf16"},
        "compile": {"compile": True},
        "graphs": {"compile": True, "compile_mode": "reduce-overhead"},  # CUDA graphs on a GPU
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants.split(","):
            train = TrainConfig(batch_size=args.batch_size, device=str(device), **variants[name])
            try:
                step = our_step_fn(model, train, Path(tmp) / name)
                ours = args.batch_size / time_steps(step, 5 if train.compile else 3, args.seconds, device)
            except Exception as error:  # a variant this machine cannot run (no compiler, say) is reported
                print(f"{'ours: ' + name:48s} failed: {type(error).__name__}: {str(error).splitlines()[0][:80]}")
                continue
            label = f"ours: {name} ({resolve_precision(train.precision, device, args.batch_size) or 'fp32'}"
            label += f"{', channels_last' if train.channels_last else ''}{', compiled' if train.compile else ''}"
            label += f"{', ' + train.compile_mode if train.compile and train.compile_mode != 'default' else ''})"
            print(f"{label:48s} {ours:8.1f} img/s   {ours / ref:.2f}x")


if __name__ == "__main__":
    main()
