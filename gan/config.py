"""Configuration dataclasses, one per concern, serialised to JSON in every run folder and checkpoint.

A checkpoint rebuilds its model from `ModelConfig` alone, so there is no second place where
the architecture is described.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gan.errors import GanError

SUPPORTED_RESOLUTIONS = (32, 64, 128)
PHASES = ("pretrain", "finetune")
PRECISIONS = ("auto", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTATIONS = ("translation", "cutout")  # see gan.train.augment


@dataclass
class ModelConfig:
    """Architecture of the generator and discriminator.

    `genres` empty means an unconditional model (pre-training): no genre embedding in G and
    no auxiliary classifier head in D.
    """

    resolution: int = 64
    latent_dim: int = 128
    width: int = 64
    genre_embedding_dim: int = 64
    genres: list[str] = field(default_factory=list)
    projection: bool = False  # genre-aware realness in D (projection discriminator); see gan.models

    def validate(self) -> None:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise GanError(f"--resolution must be one of {SUPPORTED_RESOLUTIONS}, got {self.resolution}")
        if not 1 <= self.latent_dim <= 4096:
            raise GanError(f"--latent-dim must be between 1 and 4096, got {self.latent_dim}")
        if not 4 <= self.width <= 1024:
            raise GanError(f"--width must be between 4 and 1024, got {self.width}")
        if self.genre_embedding_dim < 1:
            raise GanError(f"genre_embedding_dim must be positive, got {self.genre_embedding_dim}")
        if len(set(self.genres)) != len(self.genres):
            raise GanError(f"genre names must be unique, got {self.genres}")

    @property
    def num_genres(self) -> int:
        return len(self.genres)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training phase."""

    phase: str = "finetune"
    steps: int = 2000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    genre_loss_weight: float = 1.0
    mode_seeking_weight: float = 0.0  # MSGAN's diversity term; see gan.train.loop.mode_seeking_ratio
    ema_decay: float = 0.999
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    sample_rows: int = 8
    # Differentiable augmentation of D's inputs: "none" or a comma-separated subset of
    # gan.train.augment.AUGMENTATIONS ("translation,cutout").
    augment: str = "none"
    # A loss this large means the run has diverged even when it is still finite.
    max_loss: float = 1e4

    @property
    def augment_policy(self) -> tuple[str, ...]:
        """'translation,cutout' -> ('translation', 'cutout'); 'none' -> ()."""
        return tuple(name for name in (part.strip() for part in self.augment.split(",")) if name and name != "none")

    def validate(self) -> None:
        if self.phase not in PHASES:
            raise GanError(f"phase must be one of {PHASES}, got {self.phase!r}")
        for name in ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every",
                     "keep_checkpoints", "sample_rows"):
            if getattr(self, name) < 1:
                raise GanError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise GanError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        for name in ("beta1", "beta2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise GanError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if self.mode_seeking_weight < 0:
            raise GanError(f"--mode-seeking-weight must not be negative, got {self.mode_seeking_weight}")
        if self.genre_loss_weight < 0:
            raise GanError(f"--genre-loss-weight must not be negative, got {self.genre_loss_weight}")
        unknown = [name for name in self.augment_policy if name not in AUGMENTATIONS]
        if unknown:
            raise GanError(f"--augment: unknown augmentation(s) {unknown}; use 'none' or a comma-separated "
                           f"subset of {','.join(AUGMENTATIONS)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise GanError(f"--device must be one of {DEVICES} or cuda:N, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise GanError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass
class DataConfig:
    """Where a phase's images came from, as recorded in the run folder and checkpoints."""

    path: str = ""
    kind: str = ""  # "labelled-folder", "unlabelled-folder" or "csv-manifest"
    num_images: int = 0
    num_skipped: int = 0
    genres: list[str] = field(default_factory=list)
    images_per_genre: dict[str, int] = field(default_factory=dict)
    # Set when the images are procedural demo covers (`python -m gan demo-data` leaves a marker):
    # {"seed": S, "size": P}, so a held-out draw of the same covers can serve as the real baseline.
    demo_covers: dict[str, int] = field(default_factory=dict)


T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Build a dataclass from JSON data, naming the source and the field when it does not fit."""
    if not isinstance(data, dict):
        raise GanError(f"{source}: expected a JSON object for {cls.__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise GanError(f"{source}: unknown field(s) {unknown} in {cls.__name__}")
    try:
        return cls(**data)
    except TypeError as error:
        raise GanError(f"{source}: {cls.__name__}: {error}") from None
