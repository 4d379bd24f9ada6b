"""The judge: a small CNN genre classifier trained on real covers, whose features the realism
measure compares (`gan.eval.realism`).

Inception features (FID) need downloaded ImageNet weights, which this project never fetches,
and they know nothing of album covers. A network trained to tell a dataset's genres apart
learns what matters in that dataset (palettes, motifs, layouts), so real and generated covers
are compared where the genres differ. It is trained once per set of real covers and cached as
a folder anyone can open: `config.json` (JudgeConfig, with the accuracy it reached on held-out
covers) and `judge.safetensors`.

The network: four (or five, at 128 px) stages of two 3x3 conv + batch norm + ReLU layers and a
2x2 max-pool, widths 32 to 256, then a global average pool to `feature_dim` features and a linear
genre head. Trained with Adam and random shifts (real covers are not always centred); no flips or
colour changes, since layout and colour are part of a genre's look.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan.atomic import write_folder_atomically
from gan.checkpoint import load_weights, read_json
from gan.config import from_dict
from gan.errors import GanError

log = logging.getLogger(__name__)
JUDGE_FORMAT = "covergan-judge"
JUDGE_WEIGHTS = "judge.safetensors"
CACHE_ENV = "COVERGAN_CACHE_DIR"


@dataclass
class JudgeConfig:
    """How a judge is built and trained; with `genres`, `resolution` and the data fingerprint it
    names the cache entry, so a change to any of them trains a new judge."""

    resolution: int = 64
    genres: list[str] = field(default_factory=list)
    feature_dim: int = 256
    steps: int = 800
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    held_out_share: float = 0.1

    def validate(self) -> None:
        if self.resolution < 16 or self.resolution & (self.resolution - 1):
            raise GanError(f"judge: resolution must be a power of two of at least 16, got {self.resolution}")
        if len(self.genres) < 2:
            raise GanError(f"judge: needs real covers of at least 2 genres, got {self.genres}")
        for name, low, high in (("feature_dim", 1, 4096), ("steps", 1, 10**6), ("batch_size", 1, 4096)):
            if not low <= getattr(self, name) <= high:
                raise GanError(f"judge: {name} must be between {low} and {high}, got {getattr(self, name)}")
        if not 0 < self.held_out_share < 1:
            raise GanError(f"judge: held_out_share must be between 0 and 1, got {self.held_out_share}")


class JudgeNet(nn.Module):
    def __init__(self, config: JudgeConfig):
        super().__init__()
        # A strided stem halves the resolution first: the full-resolution layers would cost most of
        # the time and add little that the next stage does not see.
        stem = 32
        layers: list[nn.Module] = [nn.Conv2d(3, stem, 4, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        stages = int(math.log2(config.resolution)) - 3  # from half resolution down to 4x4
        c_in = stem
        for i in range(stages):
            c_out = min(64 * 2**i, config.feature_dim)
            for c in (c_in, c_out):
                layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            layers.append(nn.MaxPool2d(2))
            c_in = c_out
        layers += [nn.Conv2d(c_in, config.feature_dim, 1, bias=False), nn.BatchNorm2d(config.feature_dim),
                   nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(config.feature_dim, len(config.genres))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, R, R) in [-1, 1] -> features (N, feature_dim)."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(self.features(x), 0.2, self.training))


def _as_input(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, R, R, 3) -> float (N, 3, R, R) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1)


@contextlib.contextmanager
def full_fp32():
    """No TF32 inside: on a GPU, convolutions and matrix products keep float32's precision, so the
    judge's features match the CPU's to about 1e-5 (TF32 keeps 10 mantissa bits: about 1e-3)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class Judge:
    """A trained judge: `features(images)` and `classify(images)` on uint8 (N, R, R, 3) covers.

    It computes where its network is (`to(device)`); covers come in and results go out as numpy.
    """

    def __init__(self, net: JudgeNet, config: JudgeConfig, info: dict | None = None):
        self.net, self.config, self.info = net.eval(), config, info or {}

    @property
    def genres(self) -> list[str]:
        return list(self.config.genres)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> Judge:
        self.net.to(device)
        return self

    def features_and_predictions(self, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """float64 features (N, feature_dim) and the genre index the judge assigns to each cover (N,)."""
        features, logits = self.features_and_logits(images, batch_size)
        return features, logits.argmax(1)

    @torch.inference_mode()
    def features_and_logits(self, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """float64 features (N, feature_dim) and genre logits (N, num_genres)."""
        if images.ndim != 4 or images.shape[1:] != (self.config.resolution, self.config.resolution, 3):
            raise GanError(f"judge: expected covers of {self.config.resolution} px as (N, R, R, 3), "
                           f"got shape {images.shape}")
        features, logits = [], []
        with full_fp32():
            for start in range(0, len(images), batch_size):
                f = self.net.features(_as_input(images[start:start + batch_size]).to(self.device))
                features.append(f.double())
                logits.append(self.net.head(f))
        if not features:
            return np.empty((0, self.config.feature_dim)), np.empty((0, len(self.genres)))
        return torch.cat(features).cpu().numpy(), torch.cat(logits).cpu().numpy()

    def features(self, images: np.ndarray) -> np.ndarray:
        return self.features_and_predictions(images)[0]

    def classify(self, images: np.ndarray) -> np.ndarray:
        return self.features_and_predictions(images)[1]


def _random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift a batch by up to 1/16 of the side, the border filled by reflection."""
    reach = max(1, x.shape[-1] // 16)
    padded = F.pad(x, (reach,) * 4, mode="reflect")
    dy, dx = torch.randint(0, 2 * reach + 1, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + x.shape[-2], dx:dx + x.shape[-1]]


def train_judge(images: np.ndarray, labels: np.ndarray, config: JudgeConfig,
                device: torch.device | str = "cpu") -> Judge:
    """Train a judge on real covers: uint8 (N, R, R, 3) and genre indices (N,), or covers' tag weights
    (N, num_genres) (several genres per cover, see `gan.tags`; its genre loss then takes them as
    target probabilities), on `device`.

    The weights' initialisation and the batches' draws are the CPU's random streams on any device,
    so a GPU trains the same judge up to float rounding."""
    config.validate()
    if len(images) != len(labels) or len(images) < 4 * len(config.genres):
        raise GanError(f"judge: needs at least 4 real covers per genre, got {len(images)} for "
                       f"{len(config.genres)} genres")
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(images))
    held = max(len(config.genres), int(len(images) * config.held_out_share))
    test, train = order[:held], order[held:]
    torch.manual_seed(config.seed)
    net = JudgeNet(config).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.steps)
    tagged = labels.ndim == 2
    y_train = torch.from_numpy(labels[train]).to(device)
    y_train = (y_train / y_train.sum(1, keepdim=True)).float() if tagged else y_train.long()
    x_train = _as_input(images[train]).to(device)
    draw = torch.Generator().manual_seed(config.seed)
    net.train()
    for _ in range(config.steps):
        batch = torch.randint(len(train), (config.batch_size,), generator=draw).to(device)
        loss = F.cross_entropy(net(_random_shift(x_train[batch], draw)), y_train[batch])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    judge = Judge(net, config)
    accuracy = float(tags_found(judge.features_and_logits(images[test])[1], labels[test]).mean()) if tagged else \
        float((judge.classify(images[test]) == labels[test]).mean())
    judge.info = {"held_out_accuracy": round(accuracy, 4), "trained_on": int(len(train)),
                  "held_out": int(len(test)), "trained_on_device": torch.device(device).type}
    log.info("judge trained on %d real covers: %.1f%% of %d held-out covers classified right",
             len(train), 100 * accuracy, len(test))
    return judge


def tags_found(logits: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Per cover, whether the judge's top k genres (by its `logits`, (N, num_genres)) are exactly the
    cover's k tags (`tags`: (N, num_genres), non-zero where a cover carries a genre)."""
    carried = tags > 0
    ranked = np.argsort(-logits, axis=1, kind="stable")
    found = np.zeros(len(logits), dtype=bool)
    for k in np.unique(carried.sum(1)):
        rows = np.flatnonzero(carried.sum(1) == k)
        found[rows] = np.take_along_axis(carried[rows], ranked[rows, :k], axis=1).all(1)
    return found


def save_judge(judge: Judge, folder: Path) -> None:
    write_folder_atomically(folder, {
        "config.json": {"format": JUDGE_FORMAT, "config": asdict(judge.config), **judge.info},
        JUDGE_WEIGHTS: judge.net.state_dict(),
    })


def load_judge(folder: Path) -> Judge:
    data = read_json(folder / "config.json", "judge config")
    if not isinstance(data, dict) or data.get("format") != JUDGE_FORMAT or not isinstance(data.get("config"), dict):
        raise GanError(f"{folder / 'config.json'}: not a CoverGAN judge")
    config = from_dict(JudgeConfig, data["config"], str(folder / "config.json"), "config.")
    net = JudgeNet(config)
    load_weights(net, folder / JUDGE_WEIGHTS, "judge weights")
    return Judge(net, config, {k: v for k, v in data.items() if k not in ("format", "config")})


def cache_dir() -> Path:
    """Where trained judges are kept: $COVERGAN_CACHE_DIR, else $XDG_CACHE_HOME/covergan, else ~/.cache/covergan."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "covergan"


def fingerprint(images: np.ndarray, labels: np.ndarray, config: JudgeConfig) -> str:
    """A name for the judge of these covers and this config (the pixels themselves are hashed)."""
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    # Genre indices as int64, tag weights as float64 (a judge of tags is another judge).
    digest.update(np.ascontiguousarray(labels, dtype=np.float64 if labels.ndim == 2 else np.int64).tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()[:20]


def cached_judge(images: np.ndarray, labels: np.ndarray, config: JudgeConfig, cache: Path | None = None,
                 device: torch.device | str = "cpu") -> Judge:
    """The judge for these real covers, on `device`: loaded from the cache, or trained there once and
    cached (one cache entry whichever device trained it)."""
    folder = (cache or cache_dir()) / "judges" / fingerprint(images, labels, config)
    if (folder / JUDGE_WEIGHTS).is_file():
        try:
            return load_judge(folder).to(device)
        except GanError as error:  # a damaged cache entry is rebuilt, not fatal
            log.warning("rebuilding the cached judge: %s", error)
    judge = train_judge(images, labels, config, device)
    try:
        save_judge(judge, folder)
    except OSError as error:  # a read-only cache only costs the next run a retraining
        log.warning("could not cache the judge in %s: %s", folder, error)
    return judge
