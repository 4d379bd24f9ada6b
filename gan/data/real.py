"""Real covers by genre, for comparing generated covers with: baselines of diversity, colour and realism."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan.data.folders import load_dataset
from gan.errors import GanError


def real_images_by_genre(folder: str | Path, resolution: int, max_per_genre: int | None = None,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Real covers of a labelled folder or CSV as uint8 (N, R, R, 3) per genre (a random subset if capped)."""
    data = load_dataset(folder, resolution, labelled=True)
    rng = np.random.default_rng(seed)
    by_genre = {}
    for index, genre in enumerate(data.genres):
        rows = np.flatnonzero(data.labels == index)
        if max_per_genre and len(rows) > max_per_genre:
            rows = rows[np.sort(rng.choice(len(rows), max_per_genre, replace=False))]
        # Index rows first: from a memory-mapped pack only the chosen covers are read.
        by_genre[genre] = np.ascontiguousarray(data.images[rows].transpose(0, 2, 3, 1))
    return by_genre


def real_tagged_covers(path: str | Path, resolution: int, genres: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The covers of a labelled folder, CSV or pack with their tag sets, for measuring covers of two
    genres: uint8 (N, R, R, 3) and multi-hot float32 (N, len(genres)) in the order of `genres` (a
    model's); tags the model does not know are left out, and covers left with none are dropped."""
    data = load_dataset(path, resolution, labelled=True)
    tags = data.tags if data.tags is not None else np.eye(len(data.genres), dtype=bool)[data.labels]
    known = [g for g in data.genres if g in genres]
    if len(known) < 2:
        raise GanError(f"{path}: fewer than 2 of the model's genres ({', '.join(genres)}) among its covers")
    weights = np.zeros((len(data.images), len(genres)), dtype=np.float32)
    for column, genre in enumerate(data.genres):
        if genre in genres:
            weights[:, genres.index(genre)] = tags[:, column]
    rows = np.flatnonzero(weights.any(axis=1))
    return np.ascontiguousarray(data.images[rows].transpose(0, 2, 3, 1)), weights[rows]


def three_way_split(order: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shuffled index `order` as (reference, floor, rest): `n` each for the first two, fewer when
    there are under 3n (a third each), so that the rest (the judge's share) is never empty."""
    take = min(n, len(order) // 3)
    return order[:take], order[take:2 * take], order[2 * take:]


def split_for_realism(real: dict[str, np.ndarray], n: int, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split each genre's real covers at random into three disjoint parts: a reference draw and a floor
    draw of `n` covers each (fewer when a genre has under 3n: a third each), and the rest, on which
    the judge trains. Returns (judge images, judge labels, reference, floor)."""
    rng = np.random.default_rng(seed)
    judge_images, judge_labels, reference, floor = [], [], {}, {}
    for index, (genre, images) in enumerate(real.items()):
        if len(images) < 6:
            raise GanError(f"genre {genre!r}: {len(images)} real covers; realism needs at least 6 per genre")
        reference_rows, floor_rows, judge_rows = three_way_split(rng.permutation(len(images)), n)
        reference[genre], floor[genre] = images[reference_rows], images[floor_rows]
        judge_images.append(images[judge_rows])
        judge_labels.append(np.full(len(judge_rows), index))
    return np.concatenate(judge_images), np.concatenate(judge_labels), reference, floor
