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

from gan.sampling import CoverGenerator


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
    """A genre embedding between two genres: (1 - t) * a + t * b."""
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


def seed_interpolation(generator: CoverGenerator, genre: str | None, seed_a: int, seed_b: int,
                       positions: list[float]) -> np.ndarray:
    """Covers along the spherical path between two seeds' noise: uint8 (len(positions), R, R, 3)."""
    a, b = generator.sample_noise(1, seed_a)[0], generator.sample_noise(1, seed_b)[0]
    return generator.generate(torch.stack([slerp(a, b, t) for t in positions]), genre)


def genre_interpolation(generator: CoverGenerator, seed: int, genre_a: str, genre_b: str,
                        positions: list[float]) -> np.ndarray:
    """One noise vector rendered with blends of two genres' embeddings: uint8 (len(positions), R, R, 3)."""
    noise = generator.sample_noise(1, seed).repeat(len(positions), 1)
    embeddings = torch.stack([blend_genres(generator, genre_a, genre_b, t) for t in positions])
    return generator.generate(noise, embedding=embeddings)
