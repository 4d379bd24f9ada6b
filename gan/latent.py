"""Latent-space tools for exploring a generator: truncation, interpolation, principal directions.

Principal directions follow GANSpace (Haerkonen et al., 2020): sample many noise vectors, take
the generator's first-layer activations, find their principal components with PCA, and map
each component back to a direction in noise space by least squares. Moving the noise along
such a direction changes the image along one of its main modes of variation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from gan.errors import GanError
from gan.sampling import CoverGenerator
from gan.tags import mix_name


@dataclass
class LatentDirections:
    directions: torch.Tensor  # (k, latent_dim), unit length
    scales: torch.Tensor  # (k,) standard deviation of the noise along each direction
    explained_variance_ratio: np.ndarray  # (k,) of the first-layer activations


@torch.inference_mode()
def principal_directions(generator: CoverGenerator, genre: str | None = None, components: int = 8,
                         samples: int = 2000, seed: int = 0) -> LatentDirections:
    """GANSpace directions for one genre (or none, for an unconditional model)."""
    noise = generator.sample_noise(samples, seed)
    model = generator.model
    labels = None
    if generator.genres:
        labels = torch.full((samples,), generator.genre_index(genre if genre is not None else 0), dtype=torch.long)
    embedding = model.embed(labels, samples) if labels is not None else None
    features = model.first_features(noise, embedding).numpy()
    components = min(components, samples, features.shape[1])
    pca = PCA(n_components=components, random_state=seed).fit(features)
    coefficients = pca.transform(features)
    # Least squares: noise ~ coefficients @ basis; each basis row is a component's direction in noise space.
    basis, *_ = np.linalg.lstsq(coefficients, noise.numpy(), rcond=None)
    directions = torch.from_numpy(basis).float()
    directions = directions / directions.norm(dim=1, keepdim=True)
    scales = (noise @ directions.T).std(dim=0)
    return LatentDirections(directions, scales, pca.explained_variance_ratio_)


def truncate(noise: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation trick: pull noise towards the mean (zero) by `psi` in [0, 1]; 1 leaves it as is."""
    return noise * psi


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between noise vectors: keeps the norm typical of Gaussian noise."""
    a_unit, b_unit = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_unit * b_unit).sum().clamp(-1, 1))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def blend_genres(generator: CoverGenerator, genre_a: str, genre_b: str, t: float) -> torch.Tensor:
    """A genre embedding between two genres (or mixes): (1 - t) * a + t * b, the embedding of the mix
    {a: 1 - t, b: t}, which is how a model trained on tag sets sees a cover of both."""
    return (1 - t) * generator.genre_embedding(genre_a) + t * generator.genre_embedding(genre_b)


def edit_noise(noise: torch.Tensor, directions: LatentDirections | None = None,
               component_steps: list[float] | None = None, coordinate_offsets: dict[int, float] | None = None,
               psi: float = 1.0) -> torch.Tensor:
    """One noise vector moved along principal directions (in units of their spread), then along raw
    coordinates, then truncated by `psi`."""
    z = noise.clone().reshape(-1)
    if directions is not None and component_steps:
        for k, step in enumerate(component_steps[: len(directions.directions)]):
            z += step * directions.scales[k] * directions.directions[k]
    for index, offset in (coordinate_offsets or {}).items():
        z[index] += offset
    return truncate(z, psi).reshape(noise.shape)


@dataclass(frozen=True)
class LatentEdit:
    """One cover's place in latent space: a seed's noise moved along principal directions (in units of
    their spread) and raw coordinates, then truncated by `psi`. Hashable, so views can be cached by it."""

    seed: int = 0
    psi: float = 1.0
    steps: tuple[float, ...] = ()  # one per principal direction
    offsets: tuple[tuple[int, float], ...] = ()  # (coordinate, offset) pairs

    def noise(self, generator: CoverGenerator, directions: LatentDirections | None, seed: int | None = None
              ) -> torch.Tensor:
        """The edited noise (1, latent_dim); `seed` applies the same edits to another seed's noise."""
        base = generator.sample_noise(1, self.seed if seed is None else seed)
        return edit_noise(base, directions, list(self.steps), dict(self.offsets), self.psi)

    def moved(self, component: int, by: float) -> LatentEdit:
        """The same edit, `by` further along one principal direction."""
        steps = list(self.steps) + [0.0] * (component + 1 - len(self.steps))
        steps[component] += by
        return LatentEdit(self.seed, self.psi, tuple(steps), self.offsets)

    def changes(self) -> list[tuple[str, str]]:
        """What differs from the plain seed, as (short name, value) pairs."""
        changed = [("psi", f"{self.psi:g}")] if self.psi != 1.0 else []
        changed += [(f"d{k + 1}", f"{v:+g}") for k, v in enumerate(self.steps) if v]
        changed += [(f"z{k}", f"{v:+g}") for k, v in self.offsets if v]
        return changed

    def describe(self, genre: str | None) -> str:
        """A caption: 'jazz, seed 3, ψ 0.7, direction 1 +2, z[0] -0.5'."""
        names = {"psi": "ψ "}
        parts = [genre] if genre else []
        parts.append(f"seed {self.seed}")
        for name, value in self.changes():
            if name.startswith("d"):
                parts.append(f"direction {name[1:]} {value}")
            elif name.startswith("z"):
                parts.append(f"z[{name[1:]}] {value}")
            else:
                parts.append(names[name] + value)
        return ", ".join(parts)

    def file_name(self, genre: str | None) -> str:
        """A PNG name that says what is in it: 'cover-jazz-seed3-psi0.7-d1+2-z0-0.5.png'."""
        parts = ["cover"] + ([_slug(genre)] if genre else []) + [f"seed{self.seed}"]
        parts += [f"{name}{value}" for name, value in self.changes()]
        return "-".join(parts) + ".png"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in text) or "_"


def direction_previews(generator: CoverGenerator, edit: LatentEdit, directions: LatentDirections,
                       genre: str | None, by: float = 2.0) -> np.ndarray:
    """What each principal direction does to this cover: uint8 (k, 2, R, R, 3), the cover `by` spreads
    before and after its current place along direction k (GANSpace's explorer shows the same)."""
    k = len(directions.scales)
    noise = torch.cat([edit.moved(c, sign * by).noise(generator, directions) for c in range(k) for sign in (-1, 1)])
    images = generator.generate(noise, genre)
    return images.reshape(k, 2, *images.shape[1:])


def seed_interpolation(generator: CoverGenerator, genre: str | None, seed_a: int, seed_b: int,
                       positions: list[float]) -> np.ndarray:
    """Covers along the spherical path between two seeds' noise: uint8 (len(positions), R, R, 3)."""
    a, b = generator.sample_noise(1, seed_a)[0], generator.sample_noise(1, seed_b)[0]
    return noise_interpolation(generator, genre, a, b, positions)


def noise_interpolation(generator: CoverGenerator, genre: str | None, a: torch.Tensor, b: torch.Tensor,
                        positions: list[float]) -> np.ndarray:
    """Covers along the spherical path between two noise vectors: uint8 (len(positions), R, R, 3)."""
    a, b = a.reshape(-1), b.reshape(-1)
    return generator.generate(torch.stack([slerp(a, b, t) for t in positions]), genre)


def genre_interpolation(generator: CoverGenerator, seed: int | torch.Tensor, genre_a: str, genre_b: str,
                        positions: list[float]) -> np.ndarray:
    """One noise vector (a seed's, or the given one) rendered with blends of two genres' embeddings:
    uint8 (len(positions), R, R, 3)."""
    noise = generator.sample_noise(1, seed) if isinstance(seed, int) else seed.reshape(1, -1)
    embeddings = torch.stack([blend_genres(generator, genre_a, genre_b, t) for t in positions])
    return generator.generate(noise.repeat(len(positions), 1), embedding=embeddings)


def seed_rows_grid(generator: CoverGenerator, first_seed: int, rows: int, genres: list[str],
                   padding: int = 2, genres_as_rows: bool = False) -> np.ndarray:
    """A grid as one uint8 image: row k is the noise of seed `first_seed + k` (the cover the explorer shows
    for that seed), each column a genre, so the genre alone changes along a row; `genres_as_rows`
    swaps the two (one genre per row)."""
    from torchvision.utils import make_grid

    from gan.sampling import to_uint8

    noise = torch.cat([generator.sample_noise(1, first_seed + k) for k in range(rows)])
    if not generator.genres:
        return to_uint8(make_grid(generator.generate_tensor(noise), nrow=1, padding=padding, pad_value=1.0))
    if not genres:
        raise GanError("choose at least one genre")
    if genres_as_rows:
        images = generator.generate_tensor(noise.repeat(len(genres), 1), [g for g in genres for _ in range(rows)])
    else:
        images = generator.generate_tensor(noise.repeat_interleave(len(genres), 0), list(genres) * rows)
    return to_uint8(make_grid(images, nrow=rows if genres_as_rows else len(genres), padding=padding, pad_value=1.0))


def blend_grid(generator: CoverGenerator, first_seed: int, rows: int, genre_a: str, genre_b: str, steps: int,
               padding: int = 2) -> tuple[np.ndarray, list[str]]:
    """Rows of seeds `first_seed`, `first_seed + 1`, ... drawn from genre A through mixes of A and B to
    genre B in `steps` columns: one uint8 grid image, and the columns' names (`jazz 75%+rock 25%`)."""
    from torchvision.utils import make_grid

    from gan.sampling import to_uint8

    if steps < 2:
        raise GanError(f"a blend needs at least 2 steps, got {steps}")
    positions = [k / (steps - 1) for k in range(steps)]
    noise = torch.cat([generator.sample_noise(1, first_seed + k) for k in range(rows)])
    embeddings = torch.stack([blend_genres(generator, genre_a, genre_b, t) for t in positions])
    images = generator.generate_tensor(noise.repeat_interleave(steps, 0), embedding=embeddings.repeat(rows, 1))
    names = [genre_a if t == 0 else genre_b if t == 1 else mix_name({genre_a: 1 - t, genre_b: t}) for t in positions]
    return to_uint8(make_grid(images, nrow=steps, padding=padding, pad_value=1.0)), names
