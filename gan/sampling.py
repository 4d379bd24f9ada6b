"""Inference: a trained generator wrapped for the app, the CLI and evaluation.

Needs only the model and checkpoint modules, never the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Union

import numpy as np
import torch
from PIL import Image

from gan.checkpoint import GENERATOR_FILE, check_weights, load_weights, read_checkpoint_config, resolve_checkpoint
from gan.config import ModelConfig
from gan.errors import GanError
from gan.models import Generator, build_generator
from gan.tags import mix_name, mix_weights, normalise_mix, parse_mix

# One image's genre: a name, an index, a mix written as text ("jazz+electronic") or a dict {genre: weight}.
Genre = Union[str, int, Mapping[str, float]]
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"


class CoverGenerator:
    """A generator ready to sample: `.genres`, `.latent_dim`, `.resolution`, `.sample_noise`, `.generate`."""

    def __init__(self, model: Generator, checkpoint: Path | None = None, info: dict | None = None):
        self.model = model.eval()
        self.config: ModelConfig = model.config
        self.checkpoint = checkpoint
        self.info = info or {}

    @property
    def genres(self) -> list[str]:
        return list(self.config.genres)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def sample_noise(self, n: int, seed: int = 0) -> torch.Tensor:
        """Standard normal noise (n, latent_dim), the same for the same seed on every machine."""
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.latent_dim, generator=generator)

    def genre_index(self, genre: str | int) -> int:
        if isinstance(genre, int):
            if not 0 <= genre < len(self.genres):
                raise GanError(f"genre index {genre} out of range: this model has {len(self.genres)} genres")
            return genre
        if genre not in self.genres:
            known = ", ".join(self.genres) if self.genres else "none (an unconditional model)"
            raise GanError(f"unknown genre {genre!r}; this model knows: {known}")
        return self.genres.index(genre)

    def genre_mix(self, genre: Genre) -> int | dict[str, float]:
        """One image's genre as the model takes it: an index, or a mix {genre: weight} summing to 1.

        A genre is a name or index; a mix is written `jazz+electronic` (equal weights) or
        `jazz:0.7,electronic:0.3`, or given as a dict {genre: weight} (see `gan.tags`).
        """
        if isinstance(genre, Mapping):
            mix = normalise_mix(genre, self.genres)
        elif isinstance(genre, str) and genre not in self.genres and self.genres:
            mix = parse_mix(genre, self.genres)
        else:
            return self.genre_index(genre)
        return self.genres.index(next(iter(mix))) if len(mix) == 1 else mix

    def _genre_tensor(self, genres: Genre | Sequence[Genre] | None, n: int) -> torch.Tensor | None:
        """Genre indices (n,), or weight rows (n, num_genres) when some image asks for a mix."""
        if not self.genres:
            return None
        if genres is None:
            raise GanError(f"choose a genre: {', '.join(self.genres)}")
        if isinstance(genres, (str, int, Mapping)):
            genres = [genres] * n
        if len(genres) != n:
            raise GanError(f"got {len(genres)} genres for {n} noise vectors")
        resolved = [self.genre_mix(g) for g in genres]
        if all(isinstance(g, int) for g in resolved):
            return torch.tensor(resolved, dtype=torch.long)
        return torch.stack([mix_weights(g, self.genres) if isinstance(g, dict) else
                            torch.nn.functional.one_hot(torch.tensor(g), len(self.genres)).float() for g in resolved])

    @torch.inference_mode()
    def generate_tensor(self, noise: torch.Tensor, genres=None, embedding: torch.Tensor | None = None,
                        batch_size: int = 256) -> torch.Tensor:
        """Images as float (N, 3, R, R) in [0, 1]. `embedding` overrides `genres` (genre blends)."""
        noise = noise.to(self.device, torch.float32)
        if embedding is None:
            labels = self._genre_tensor(genres, len(noise))
            embedding = self.model.embed(labels.to(self.device), len(noise)) if labels is not None else None
        outputs = []
        for start in range(0, len(noise), batch_size):
            chunk = embedding[start:start + batch_size] if embedding is not None else None
            outputs.append(self.model.forward_embedded(noise[start:start + batch_size], chunk))
        return (torch.cat(outputs).float().cpu() + 1) / 2

    def generate(self, noise: torch.Tensor, genres=None, output: Literal["uint8", "pil"] = "uint8",
                 embedding: torch.Tensor | None = None):
        """Noise (N, latent_dim) and a genre or mix for all, or one per image -> uint8 (N, R, R, 3) or
        PIL images. A genre is a name or an index; a mix is `"jazz+electronic"`,
        `"jazz:0.7,electronic:0.3"` or `{"jazz": 0.7, "electronic": 0.3}` (see `genre_mix`).

        `embedding` (N, genre_embedding_dim) replaces the genres: any point of the genre embedding space.
        """
        images = self.generate_tensor(noise, genres, embedding=embedding)
        pixels = to_uint8(images)
        if output == "pil":
            return [Image.fromarray(p) for p in pixels]
        return pixels

    def describe(self) -> dict[str, str]:
        """What a person wants to know about this generator: genres, size and what trained it."""
        data = self.info.get("data")
        return {"checkpoint": str(self.checkpoint), "genres": ", ".join(self.genres) or "none (unconditional)",
                "resolution": f"{self.resolution} px", "latent size": str(self.latent_dim),
                "training": f"{self.info.get('phase', '?')} step {self.info.get('step', '?')}",
                "data": f"{data.num_images} images from {data.path}" if data else "?"}

    def genre_embedding(self, genre: Genre) -> torch.Tensor:
        """The embedding of a genre (the learned one) or of a mix (its genres' weighted mean), for
        blending in latent space."""
        if self.model.genre_embedding is None:
            raise GanError("an unconditional model has no genre embeddings")
        with torch.no_grad():
            return self.model.embed(self._genre_tensor(genre, 1).to(self.device), 1)[0].detach().clone()

    def genre_label(self, genre: Genre) -> str:
        """A genre's or mix's name for a caption: `jazz`, `jazz+electronic`, `jazz 70%+electronic 30%`."""
        resolved = self.genre_mix(genre)
        return self.genres[resolved] if isinstance(resolved, int) else mix_name(resolved)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float images in [0, 1], (N, 3, H, W) or (3, H, W), as uint8 (N, H, W, 3) or (H, W, 3)."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).numpy()


def load_generator(path: str | os.PathLike | None = None, device: str = "cpu", best: bool = False) -> CoverGenerator:
    """Load a generator from a checkpoint folder or a run folder (its newest checkpoint, or with
    `best` its best by the quality tracked during training); defaults to the bundled demo."""
    folder = resolve_checkpoint(path if path is not None else DEFAULT_CHECKPOINT, best=best)
    config = read_checkpoint_config(folder)
    # A config may describe gigabytes of weights: compare the shapes it implies (a model on the meta
    # device allocates nothing) with the weight file's header before building the model for real.
    # Built again rather than materialised with to_empty(), which would leave any buffer that is
    # not in the state dict uninitialised.
    with torch.device("meta"):
        expected = build_generator(config["model"]).state_dict()
    check_weights(folder / GENERATOR_FILE, expected, "generator weights")
    model = build_generator(config["model"])
    load_weights(model, folder / GENERATOR_FILE, "generator weights")
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as error:
        raise GanError(f"cannot use device {device!r}: {error}") from None
    return CoverGenerator(model, folder, config)


def save_images(images: np.ndarray, folder: Path, start: int = 0) -> list[Path]:
    """Write uint8 (N, R, R, 3) images as `folder/<index>.png`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, pixels in enumerate(images, start=start):
        path = folder / f"{i:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def genre_grid(generator: CoverGenerator, rows: int = 4, seed: int = 0, genres: Sequence[str] | None = None,
               padding: int = 2) -> np.ndarray:
    """A fixed-noise grid as one uint8 image: rows are noise vectors (seeded), columns are genres.

    The same noise in every column shows what the genre alone changes.
    """
    from torchvision.utils import make_grid

    genres = list(genres) if genres is not None else generator.genres
    noise = generator.sample_noise(rows, seed)
    if not generator.genres:
        images = generator.generate_tensor(noise)
        columns = 1
    else:
        if not genres:
            raise GanError("choose at least one genre")
        images = generator.generate_tensor(noise.repeat_interleave(len(genres), 0), list(genres) * rows)
        columns = len(genres)
    grid = make_grid(images, nrow=columns, padding=padding, pad_value=1.0)
    return to_uint8(grid)
