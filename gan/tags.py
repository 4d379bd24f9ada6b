"""Tag sets: the several genres of one cover, and mixes of genres asked of a generator.

Real music carries several tags: a Spotify artist lists several genres, and an album borrows from
more than one style. Files write a cover's tag set in a manifest's `genres` column as
`jazz;electronic` (its first tag is its main genre: the folder it is filed under, the genre its
quality is measured with). A generation request writes a mix as `jazz+electronic` (equal weights)
or `jazz:0.7,electronic:0.3`. In tensors a tag set is a row of weights over a model's genres, and
the networks condition on the weighted mean of the tags' embeddings (`gan.models.common.embed_genres`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from gan.errors import GanError

TAG_SEPARATOR = ";"  # between the tags of one manifest cell
PAIR_JOINER = "+"  # a tag pair's name, as a mix of equal weights is written: "jazz+electronic"


def split_tags(cell: str) -> list[str]:
    """The tags of a manifest cell (`jazz; electronic`), stripped, empty ones and repeats left out."""
    tags: list[str] = []
    for tag in (t.strip() for t in cell.split(TAG_SEPARATOR)):
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def tag_matrix(tag_sets: Sequence[Sequence[str]], genres: Sequence[str]) -> np.ndarray | None:
    """Multi-hot rows (N, num_genres) bool for covers' tag sets, or None when every cover has one
    tag: single-genre data keeps its plain genre indices, and trains exactly as before tags existed."""
    if all(len(tags) == 1 for tags in tag_sets):
        return None
    column = {genre: i for i, genre in enumerate(genres)}
    matrix = np.zeros((len(tag_sets), len(genres)), dtype=bool)
    for row, tags in enumerate(tag_sets):
        matrix[row, [column[t] for t in tags]] = True
    return matrix


def pair_name(first: str, second: str, genres: Sequence[str]) -> str:
    """A pair's name with its genres in the model's order, so each pair has one name."""
    a, b = sorted((first, second), key=list(genres).index)
    return f"{a}{PAIR_JOINER}{b}"


def tag_pair_counts(tags: np.ndarray | None, genres: Sequence[str]) -> dict[str, int]:
    """Covers per tag pair ("jazz+electronic": 31), each cover counted for every pair of its tags."""
    if tags is None:
        return {}
    together = tags.astype(np.int64).T @ tags.astype(np.int64)  # (G, G): covers carrying both
    return {pair_name(genres[i], genres[j], genres): int(together[i, j])
            for i in range(len(genres)) for j in range(i + 1, len(genres)) if together[i, j]}


def parse_mix(text: str, genres: Sequence[str]) -> dict[str, float]:
    """A genre or a mix, as a user writes it, -> {genre: weight} with weights summing to 1.

    Forms: `jazz`; `jazz+electronic` (equal weights); `jazz:0.7,electronic:0.3` (weights relative
    to each other). A genre whose own name holds "+" is still found whole.
    """
    text = text.strip()
    if text in genres:
        return {text: 1.0}
    if ":" in text or "," in text:
        mix: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",")):
            name, _, weight = part.rpartition(":") if ":" in part else (part, "", "1")
            name = name.strip()
            if name in mix:
                raise GanError(f"genre mix {text!r}: {name!r} appears twice")
            try:
                mix[name] = float(weight)
            except ValueError:
                mix[name] = math.nan
            if not (math.isfinite(mix[name]) and mix[name] > 0):  # named as written
                raise GanError(f"genre mix {text!r}: the weight of {name!r} must be a positive number, "
                               f"got {weight.strip()!r}")
        return normalise_mix(mix, genres, text)
    names = _join_known(text.split(PAIR_JOINER), genres, text)
    if len(set(names)) < len(names):
        raise GanError(f"genre mix {text!r}: a genre appears twice")
    return normalise_mix({name: 1.0 for name in names}, genres, text)


def normalise_mix(mix: Mapping[str, float], genres: Sequence[str], text: str | None = None) -> dict[str, float]:
    """A mix {genre: weight} checked (known genres, positive weights) and scaled to sum to 1."""
    text = text if text is not None else ",".join(f"{name}:{weight}" for name, weight in mix.items())
    if not mix:
        raise GanError("a genre mix needs at least one genre")
    for name, weight in mix.items():
        _check_known(name, text, genres)
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0):
            raise GanError(f"genre mix {text!r}: the weight of {name!r} must be a positive number, got {weight!r}")
    total = sum(mix.values())
    return {name: weight / total for name, weight in mix.items()}


def _join_known(parts: list[str], genres: Sequence[str], text: str) -> list[str]:
    """Split parts joined again where a genre's own name holds the joiner (`r+b+jazz`)."""
    names, pending = [], ""
    for part in parts:
        pending = f"{pending}{PAIR_JOINER}{part}" if pending else part
        if pending.strip() in genres:
            names.append(pending.strip())
            pending = ""
    if pending or not names:
        _check_known((pending or text).strip(), text, genres)
    return names


def _check_known(name: str, text: str, genres: Sequence[str]) -> None:
    if name not in genres:
        known = ", ".join(genres) if genres else "none (an unconditional model)"
        where = f" in the mix {text!r}" if name != text else ""
        raise GanError(f"unknown genre {name!r}{where}; this model knows: {known}")


def mix_weights(mix: Mapping[str, float], genres: Sequence[str]) -> torch.Tensor:
    """A mix as a weight row (num_genres,) in the model's genre order."""
    row = torch.zeros(len(genres))
    for name, weight in mix.items():
        row[list(genres).index(name)] = weight
    return row


def mix_text(mix: Mapping[str, float]) -> str:
    """A mix written so that `parse_mix` reads it back: `jazz`, `jazz+electronic` or `jazz:0.7,electronic:0.3`."""
    weights = list(mix.values())
    if len(mix) == 1 or max(weights) - min(weights) < 1e-6:
        return PAIR_JOINER.join(mix)
    return ",".join(f"{name}:{weight:.4g}" for name, weight in mix.items())


def mix_name(mix: Mapping[str, float]) -> str:
    """A mix's name for a folder or a caption: `jazz+electronic`, or `jazz 70%+electronic 30%`."""
    weights = list(mix.values())
    if len(mix) == 1 or max(weights) - min(weights) < 1e-6:
        return PAIR_JOINER.join(mix)
    return PAIR_JOINER.join(f"{name} {round(100 * weight)}%" for name, weight in mix.items())
