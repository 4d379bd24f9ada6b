"""Procedural "demo covers": deterministic cover-like images with a genre-dependent style.

The real cover sets cannot be downloaded here, so tests, the bundled checkpoint and first-time
users train on these. Each genre has style rules a person can tell apart; within a genre every
image is drawn from its own random stream, so no two are alike, and a share of images borrows a
palette or a motif from another genre, so genres overlap as real covers do. Such a cover carries
both genres as tags (`demo_cover_tags`; `write_demo_dataset` lists them in `labelled/tags.csv`),
so demo data is multi-tag data as well (see `gan.tags`).

| genre      | palette                          | light    | motif                                     |
|------------|----------------------------------|----------|-------------------------------------------|
| rock       | red, orange, black, off-white    | medium   | bold diagonal stripes, grain              |
| metal      | black, charcoal, blood red       | dark     | jagged spikes, thin white logo strokes    |
| pop        | pink, cyan, yellow, lilac        | bright   | big soft bubbles on a smooth gradient     |
| jazz       | navy, mustard, brown, cream      | muted    | overlapping flat blocks, text-like rows   |
| electronic | near-black with neon cyan/magenta| dark     | concentric glowing rings, grid lines      |
| hip-hop    | black, gold, purple              | medium   | central silhouette, bold title bar        |
| classical  | cream, beige, sepia              | light    | thin frame, small centred text block      |
| folk       | greens, browns, sky blue         | medium   | landscape: sky, horizon, sun, soft grain  |

The unlabelled pool for pre-training mixes these rules freely (background of one genre,
motif of another, palette of a third), a wider style mix than any labelled genre.
Same seed, same pixels: each image's random stream is keyed by (seed, genre, index).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, ImageOps

from gan.atomic import write_csv
from gan.config import DataConfig
from gan.data.sources import FOLDER_TAGS_FILE
from gan.tags import TAG_SEPARATOR

log = logging.getLogger(__name__)

DEMO_GENRES = ("rock", "metal", "pop", "jazz", "electronic", "hip-hop", "classical", "folk")

# Colours as RGB in [0, 1]; each genre draws its colours from its palette with jitter.
# The first BACKGROUND_COLOURS[genre] entries are the genre's background colours; motifs draw
# from the palette as their painter says.
PALETTES = {
    "rock": [(0.08, 0.06, 0.06), (0.80, 0.12, 0.10), (0.95, 0.45, 0.10), (0.92, 0.88, 0.80)],
    "metal": [(0.05, 0.05, 0.06), (0.16, 0.16, 0.18), (0.45, 0.04, 0.04), (0.80, 0.80, 0.84)],
    "pop": [(1.00, 0.45, 0.72), (0.30, 0.85, 0.95), (1.00, 0.90, 0.30), (0.78, 0.62, 1.00)],
    "jazz": [(0.10, 0.16, 0.35), (0.85, 0.65, 0.20), (0.92, 0.86, 0.70), (0.45, 0.28, 0.15)],
    "electronic": [(0.03, 0.03, 0.08), (0.05, 0.95, 0.95), (0.95, 0.10, 0.90), (0.40, 0.20, 1.00)],
    "hip-hop": [(0.04, 0.04, 0.04), (0.45, 0.15, 0.60), (0.95, 0.75, 0.15), (0.70, 0.70, 0.70)],
    "classical": [(0.96, 0.93, 0.85), (0.85, 0.78, 0.65), (0.55, 0.42, 0.30), (0.30, 0.25, 0.20)],
    "folk": [(0.30, 0.55, 0.25), (0.55, 0.40, 0.22), (0.55, 0.75, 0.90), (0.90, 0.80, 0.45)],
}
BACKGROUND_COLOURS = {"rock": 3, "metal": 2, "pop": 4, "jazz": 3, "electronic": 1, "hip-hop": 2,
                      "classical": 2, "folk": 4}
BORROW_PROBABILITY = 0.12  # share of labelled images taking a palette or motif from another genre

Canvas = np.ndarray  # float32 (H, W, 3) in [0, 1]


class _Grid:
    """Pixel-centre coordinates in [0, 1), shared by all images of one size."""

    def __init__(self, size: int):
        axis = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.y, self.x = np.meshgrid(axis, axis, indexing="ij")
        self.size = size


def _colour(rng: np.random.Generator, palette: list, jitter: float = 0.06) -> np.ndarray:
    base = np.asarray(palette[rng.integers(len(palette))], dtype=np.float32)
    return np.clip(base + rng.normal(0, jitter, 3).astype(np.float32), 0, 1)


def _paint(canvas: Canvas, mask: np.ndarray, colour: np.ndarray, alpha: float = 1.0) -> None:
    """Blend `colour` over the canvas where `mask` (boolean, or coverage in [0, 1]) says."""
    if mask.dtype == bool and alpha == 1.0:
        canvas[mask] = colour
        return
    weight = mask.astype(np.float32) * np.float32(alpha)
    canvas += weight[..., None] * (colour - canvas)


def _gradient(g: _Grid, rng, palette) -> Canvas:
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * g.x + np.sin(angle) * g.y
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    a, b = _colour(rng, palette), _colour(rng, palette)
    return a * (1 - t[..., None]) + b * t[..., None]


def _flat(g: _Grid, rng, palette) -> Canvas:
    return np.broadcast_to(_colour(rng, palette), (g.size, g.size, 3)).copy()


def _grain(canvas: Canvas, rng, strength: float) -> None:
    canvas += rng.normal(0, strength, canvas.shape[:2]).astype(np.float32)[..., None]


# Motifs: each paints on the canvas in place.

def _stripes(c: Canvas, g: _Grid, rng, palette) -> None:
    angle = rng.uniform(np.pi / 8, 3 * np.pi / 8) * rng.choice([-1, 1])
    freq = rng.uniform(2.5, 6)
    t = np.cos(angle) * g.x + np.sin(angle) * g.y
    _paint(c, np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3)) > rng.uniform(-0.2, 0.5), _colour(rng, palette))


def _spikes(c: Canvas, g: _Grid, rng, palette) -> None:
    teeth = rng.integers(4, 10)
    base = rng.uniform(0.55, 0.85)
    height = rng.uniform(0.25, 0.5)
    saw = np.abs(((g.x * teeth + rng.uniform(0, 1)) % 1.0) - 0.5) * 2  # 0 at a tip, 1 between
    _paint(c, g.y > base - height * (1 - saw), _colour(rng, palette[1:3]))
    for _ in range(rng.integers(1, 3)):  # thin bright "logo" strokes
        y0 = rng.uniform(0.12, 0.35)
        slope = rng.uniform(-0.4, 0.4)
        _paint(c, np.abs(g.y - (y0 + slope * (g.x - 0.5))) < 0.012 + 0.01 * rng.random(), np.array([0.9, 0.9, 0.92]))


def _bubbles(c: Canvas, g: _Grid, rng, palette) -> None:
    for _ in range(rng.integers(2, 6)):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.35)
        d = np.sqrt((g.x - cx) ** 2 + (g.y - cy) ** 2) / r
        _paint(c, np.clip(1.5 - 1.5 * d, 0, 1), _colour(rng, palette), alpha=rng.uniform(0.6, 0.95))


def _blocks(c: Canvas, g: _Grid, rng, palette) -> None:
    for _ in range(rng.integers(2, 5)):
        x0, y0 = rng.uniform(-0.1, 0.7, 2)
        w, h = rng.uniform(0.2, 0.6, 2)
        _paint(c, (g.x > x0) & (g.x < x0 + w) & (g.y > y0) & (g.y < y0 + h), _colour(rng, palette))
    _text_rows(c, g, rng, rows=rng.integers(2, 4), colour=_colour(rng, palette))


def _rings(c: Canvas, g: _Grid, rng, palette) -> None:
    cx, cy = rng.uniform(0.3, 0.7, 2)
    r = np.sqrt((g.x - cx) ** 2 + (g.y - cy) ** 2)
    freq = rng.uniform(4, 9)
    glow = np.clip(np.cos(2 * np.pi * freq * r) * 1.6 - 0.6, 0, 1) * np.exp(-r * rng.uniform(1, 3))
    _paint(c, glow, _colour(rng, palette[1:]))
    if rng.random() < 0.6:  # perspective-free grid lines
        spacing = rng.uniform(0.08, 0.16)
        lines = (np.abs((g.x % spacing) - spacing / 2) < 0.006) | (np.abs((g.y % spacing) - spacing / 2) < 0.006)
        _paint(c, lines & (g.y > rng.uniform(0.5, 0.8)), _colour(rng, palette[1:]), alpha=0.7)


def _silhouette(c: Canvas, g: _Grid, rng, palette) -> None:
    cx = rng.uniform(0.38, 0.62)
    head_y, head_r = rng.uniform(0.32, 0.45), rng.uniform(0.1, 0.15)
    colour = _colour(rng, palette[2:])
    _paint(c, (g.x - cx) ** 2 + (g.y - head_y) ** 2 < head_r ** 2, colour)
    shoulders = ((g.x - cx) / rng.uniform(0.28, 0.4)) ** 2 + ((g.y - 1.0) / rng.uniform(0.35, 0.5)) ** 2 < 1
    _paint(c, shoulders, colour)
    bar_y = rng.choice([rng.uniform(0.04, 0.12), rng.uniform(0.82, 0.9)])
    _paint(c, (g.y > bar_y) & (g.y < bar_y + 0.1), _colour(rng, palette[2:3]))


def _frame(c: Canvas, g: _Grid, rng, palette) -> None:
    m = rng.uniform(0.05, 0.1)
    t = rng.uniform(0.008, 0.018)
    outer = (g.x > m) & (g.x < 1 - m) & (g.y > m) & (g.y < 1 - m)
    inner = (g.x > m + t) & (g.x < 1 - m - t) & (g.y > m + t) & (g.y < 1 - m - t)
    colour = _colour(rng, palette[2:])
    _paint(c, outer & ~inner, colour)
    _text_rows(c, g, rng, rows=rng.integers(1, 3), colour=colour, centred=True, scale=0.6)


def _landscape(c: Canvas, g: _Grid, rng, palette) -> None:
    horizon = rng.uniform(0.45, 0.7) + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * g.x + rng.uniform(0, 6.3))
    sky = np.asarray(palette[2], dtype=np.float32) + rng.normal(0, 0.05, 3).astype(np.float32)
    _paint(c, g.y < horizon, np.clip(sky, 0, 1), alpha=0.85)
    sun_x, sun_y, sun_r = rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.35), rng.uniform(0.06, 0.12)
    _paint(c, (g.x - sun_x) ** 2 + (g.y - sun_y) ** 2 < sun_r ** 2, _colour(rng, palette[3:]))
    _paint(c, g.y >= horizon, _colour(rng, palette[:2]))


def _text_rows(c: Canvas, g: _Grid, rng, rows: int, colour, centred: bool = False, scale: float = 1.0) -> None:
    """Rows of short bars that read as a title and an artist name."""
    height = 0.035 * scale
    y = rng.uniform(0.7, 0.85) if not centred else rng.uniform(0.42, 0.5)
    for _ in range(rows):
        width = rng.uniform(0.25, 0.6) * scale
        x0 = (1 - width) / 2 if centred else rng.uniform(0.06, 0.2)
        _paint(c, (g.x > x0) & (g.x < x0 + width) & (g.y > y) & (g.y < y + height), colour)
        y += height * 1.8


# Per genre: background painter, motif, light level (added), contrast (scale), saturation, grain.
_STYLE: dict[str, tuple[Callable, Callable, float, float, float, float]] = {
    "rock": (_flat, _stripes, 0.0, 1.25, 1.1, 0.06),
    "metal": (_flat, _spikes, -0.06, 1.3, 0.5, 0.05),
    "pop": (_gradient, _bubbles, 0.12, 0.8, 1.2, 0.0),
    "jazz": (_flat, _blocks, -0.02, 0.9, 0.75, 0.02),
    "electronic": (_flat, _rings, -0.02, 1.2, 1.4, 0.015),
    "hip-hop": (_gradient, _silhouette, -0.03, 1.15, 1.0, 0.02),
    "classical": (_flat, _frame, 0.05, 0.7, 0.45, 0.01),
    "folk": (_gradient, _landscape, 0.0, 0.9, 0.9, 0.04),
}


def _finish(canvas: Canvas, light: float, contrast: float, saturation: float) -> np.ndarray:
    grey = canvas.mean(axis=2, keepdims=True)
    canvas = grey + (canvas - grey) * saturation
    canvas = (canvas - 0.5) * contrast + 0.5 + light
    return (np.clip(canvas, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_cover(genre: str, rng: np.random.Generator, size: int = 64, grid: _Grid | None = None) -> np.ndarray:
    """One cover of `genre` as a uint8 (size, size, 3) array."""
    if genre not in _STYLE:
        raise ValueError(f"unknown demo genre {genre!r}; known: {', '.join(DEMO_GENRES)}")
    g = grid or _Grid(size)
    background, motif, light, contrast, saturation, grain = _STYLE[genre]
    palette = PALETTES[genre]
    motif_palette = palette
    borrowed = _borrowing(rng)
    if borrowed is not None:  # overlap: another genre's palette or motif
        other, what = borrowed
        if what == "palette":
            motif_palette = PALETTES[other]
        else:
            motif = _STYLE[other][1]
    canvas = background(g, rng, palette[:BACKGROUND_COLOURS[genre]])
    motif(canvas, g, rng, motif_palette)
    if grain:
        _grain(canvas, rng, grain * rng.uniform(0.5, 1.5))
    return _finish(canvas, light + rng.normal(0, 0.03), contrast * rng.uniform(0.9, 1.1), saturation)


def _borrowing(rng: np.random.Generator) -> tuple[str, str] | None:
    """Whether a labelled cover borrows from another genre: (that genre, "palette" or "motif"), or
    None. The first draws of a cover's stream, so its tags are known without drawing it."""
    if rng.random() >= BORROW_PROBABILITY:
        return None
    other = DEMO_GENRES[rng.integers(len(DEMO_GENRES))]
    return other, "palette" if rng.random() < 0.5 else "motif"


def demo_cover_tags(genre: str, index: int, seed: int = 0) -> tuple[str, ...]:
    """The tags of labelled demo cover `index` of `genre`: its genre, then the genre it borrows a
    palette or motif from (when that is another one)."""
    borrowed = _borrowing(_stream(seed, DEMO_GENRES.index(genre), index))
    return (genre,) if borrowed is None or borrowed[0] == genre else (genre, borrowed[0])


def render_mixed_cover(rng: np.random.Generator, size: int = 64, grid: _Grid | None = None) -> np.ndarray:
    """An unlabelled cover: background, motif, palette and finish each from a random genre."""
    g = grid or _Grid(size)
    pick = lambda: DEMO_GENRES[rng.integers(len(DEMO_GENRES))]  # noqa: E731
    canvas = _STYLE[pick()][0](g, rng, PALETTES[pick()])
    _STYLE[pick()][1](canvas, g, rng, PALETTES[pick()])
    _, _, light, contrast, saturation, grain = _STYLE[pick()]
    if grain:
        _grain(canvas, rng, grain)
    return _finish(canvas, light + rng.normal(0, 0.05), contrast, saturation)


def _stream(seed: int, genre_index: int, index: int) -> np.random.Generator:
    # Keyed by position, not by order of drawing, so any subset or parallel order gives the same pixels.
    return np.random.default_rng([seed, genre_index, index])


def demo_covers(genres: tuple[str, ...] | list[str] = DEMO_GENRES, per_genre: int = 100, size: int = 64,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labelled demo covers in memory: uint8 images (N, size, size, 3) and genre indices (N,)."""
    grid = _Grid(size)
    images = np.empty((len(genres) * per_genre, size, size, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(len(genres)), per_genre)
    for gi, genre in enumerate(genres):
        key = DEMO_GENRES.index(genre) if genre in DEMO_GENRES else gi
        for i in range(per_genre):
            images[gi * per_genre + i] = render_cover(genre, _stream(seed, key, i), size, grid)
    return images, labels


def demo_tag_weights(genres: tuple[str, ...] | list[str], per_genre: int, seed: int = 0) -> np.ndarray:
    """The tag sets of `demo_covers(genres, per_genre, seed=seed)`, row for row, as multi-hot
    float32 (N, len(genres)); a borrowed genre outside `genres` is left out."""
    tags = np.zeros((len(genres) * per_genre, len(genres)), dtype=np.float32)
    for gi, genre in enumerate(genres):
        for i in range(per_genre):
            tags[gi * per_genre + i, [genres.index(t) for t in demo_cover_tags(genre, i, seed) if t in genres]] = 1
    return tags


def unlabelled_covers(count: int, size: int = 64, seed: int = 0) -> np.ndarray:
    grid = _Grid(size)
    unlabelled_key = len(DEMO_GENRES)  # a stream family no genre uses
    return np.stack([render_mixed_cover(_stream(seed, unlabelled_key, i), size, grid) for i in range(count)])


def _render_job(job: tuple[str, str, int, int, int]) -> None:
    """Render and write one file; a module-level function so a process pool can run it."""
    path, genre, index, seed, size = job
    grid = _grid_for(size)
    if genre:
        image = render_cover(genre, _stream(seed, DEMO_GENRES.index(genre), index), size, grid)
    else:
        image = render_mixed_cover(_stream(seed, len(DEMO_GENRES), index), size, grid)
    # compress_level 1: the files are small anyway and encoding dominates the time.
    Image.fromarray(image).save(path, compress_level=1)


_GRIDS: dict[int, _Grid] = {}


def _grid_for(size: int) -> _Grid:
    if size not in _GRIDS:
        _GRIDS[size] = _Grid(size)
    return _GRIDS[size]


def write_demo_dataset(out: str | os.PathLike, per_genre: int = 1000, unlabelled: int = 5000, size: int = 64,
                       seed: int = 0, genres: tuple[str, ...] | list[str] = DEMO_GENRES,
                       workers: int | None = None) -> dict:
    """Write `out/labelled/<genre>/NNNNN.png` and `out/unlabelled/NNNNNN.png`; return counts."""
    out = Path(out)
    unknown = [g for g in genres if g not in DEMO_GENRES]
    if unknown:
        raise ValueError(f"unknown demo genre(s) {unknown}; known: {', '.join(DEMO_GENRES)}")
    jobs: list[tuple[str, str, int, int, int]] = []
    for genre in genres:
        folder = out / "labelled" / genre
        folder.mkdir(parents=True, exist_ok=True)
        jobs += [(str(folder / f"{i:05d}.png"), genre, i, seed, size) for i in range(per_genre)]
    if unlabelled:
        (out / "unlabelled").mkdir(parents=True, exist_ok=True)
        jobs += [(str(out / "unlabelled" / f"{i:06d}.png"), "", i, seed, size) for i in range(unlabelled)]
    if genres:
        write_demo_marker(out / "labelled", seed, size)
        write_demo_tags(out / "labelled", genres, per_genre, seed)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < 256:
        for job in jobs:
            _render_job(job)
    else:
        # Rendering is many small numpy operations that hold the GIL: processes, not threads.
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_render_job, jobs, chunksize=256))
    return {"labelled": per_genre * len(genres), "unlabelled": unlabelled, "genres": list(genres), "size": size}


def write_demo_tags(folder: Path, genres: tuple[str, ...] | list[str], per_genre: int, seed: int) -> int:
    """List the covers of two genres in `folder/tags.csv` (see `gan.data.sources`), if there are any;
    return how many."""
    tag_sets = {(genre, i): demo_cover_tags(genre, i, seed) for genre in genres for i in range(per_genre)}
    rows = [{"path": f"{genre}/{i:05d}.png", "genres": TAG_SEPARATOR.join(tags)}
            for (genre, i), tags in tag_sets.items() if len(tags) > 1 and tags[1] in genres]
    if rows:
        write_csv(folder / FOLDER_TAGS_FILE, ["path", "genres"], rows)
    else:  # none left from an earlier draw into the same folder
        (folder / FOLDER_TAGS_FILE).unlink(missing_ok=True)
    return len(rows)


# --- knowing demo covers again: a marker beside them, and a held-out draw as the real baseline ----

DEMO_MARKER = "demo.json"  # written into DIR/labelled by write_demo_dataset
# Real covers for comparisons are drawn with another seed than training's, so they are covers of the
# same kind that training never saw (benchmarks/demo_quality.py uses seed 2 for its real covers too).
HELD_OUT_SEED = 2
# Checkpoints trained before the marker existed record only their data path: the folder the README's
# `python -m gan demo-data --out demo-data` writes, with that command's default seed and size.
LEGACY_DEMO_FOLDER = ("demo-data", "labelled")
LEGACY_DEMO_SEED, LEGACY_DEMO_SIZE = 0, 64


@dataclass(frozen=True)
class DemoOrigin:
    """A model's training covers were demo covers of this seed and size."""

    seed: int
    size: int
    recorded: bool  # False: inferred from the data path of a checkpoint written before the marker existed

    @property
    def held_out_seed(self) -> int:
        return held_out_seed(self.seed)


def write_demo_marker(folder: str | os.PathLike, seed: int, size: int) -> None:
    """Say in `folder` that it holds demo covers of this seed and size (training records it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text(json.dumps({"format": "covergan-demo-covers", "seed": seed, "size": size}))


def read_demo_marker(folder: str | os.PathLike) -> dict[str, int]:
    """{"seed": S, "size": P} when `folder` holds demo covers written by write_demo_dataset, else {}.

    The marker only adds a baseline, so a malformed one is ignored (with a warning), never fatal.
    """
    path = Path(folder) / DEMO_MARKER
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        seed, size = data["seed"], data["size"]
        if data.get("format") != "covergan-demo-covers" or type(seed) is not int or type(size) is not int \
                or not 0 <= seed < 2**63 or not 8 <= size <= 1024:
            raise ValueError("unexpected values")
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as error:
        log.warning("%s: ignored, not a demo-covers marker (%s)", path, error)
        return {}
    return {"seed": seed, "size": size}


def demo_origin(data: DataConfig | None) -> DemoOrigin | None:
    """The demo covers a model was trained on, from its checkpoint's data record; None if not demo covers."""
    if data is None or not data.genres or any(g not in DEMO_GENRES for g in data.genres):
        return None
    if data.demo_covers:
        return DemoOrigin(int(data.demo_covers["seed"]), int(data.demo_covers["size"]), recorded=True)
    if PurePath(data.path).parts[-2:] == LEGACY_DEMO_FOLDER and data.kind == "labelled-folder":
        return DemoOrigin(LEGACY_DEMO_SEED, LEGACY_DEMO_SIZE, recorded=False)
    return None


def held_out_seed(training_seed: int) -> int:
    return HELD_OUT_SEED if training_seed != HELD_OUT_SEED else HELD_OUT_SEED + 1


def held_out_covers(genres: list[str] | tuple[str, ...], per_genre: int, size: int = 64, training_seed: int = 0,
                    resolution: int | None = None) -> dict[str, np.ndarray]:
    """Real demo covers that training on seed `training_seed` never saw: genre -> uint8 (per_genre, R, R, 3).

    Drawn like the training covers (at `size` px) from another seed, then centre-cropped and resized
    to `resolution` the way training loads images (bicubic), so they compare with a model's output.
    """
    images, labels = demo_covers_as_loaded(genres, per_genre, size, held_out_seed(training_seed), resolution)
    return {genre: images[labels == index] for index, genre in enumerate(genres)}


def demo_covers_as_loaded(genres: list[str] | tuple[str, ...], per_genre: int, size: int, seed: int,
                          resolution: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`demo_covers` drawn at `size` px as `demo-data` writes them, then centre-cropped and resized to
    `resolution` (bicubic) as training loads them: (N, R, R, 3) uint8 and genre indices."""
    images, labels = demo_covers(tuple(genres), per_genre, size, seed)
    return _as_loaded(images, size, resolution), labels


def demo_pair_covers(pair: tuple[str, str], count: int, size: int, seed: int, resolution: int | None = None,
                     max_index: int = 1_000_000) -> np.ndarray:
    """`count` demo covers of seed `seed` that carry exactly the two tags of `pair` (either genre
    borrowing from the other), drawn at `size` px and loaded at `resolution` as `demo_covers_as_loaded`
    does: uint8 (count, R, R, 3). Covers are taken in index order, each genre's in turn."""
    found: list[tuple[str, int]] = []
    for index in range(max_index):
        found += [(genre, index) for genre in pair
                  if set(demo_cover_tags(genre, index, seed)) == set(pair) and len(found) < count]
        if len(found) == count:
            break
    else:
        raise ValueError(f"fewer than {count} demo covers of {pair} among the first {max_index} of each genre")
    grid = _grid_for(size)
    images = np.stack([render_cover(genre, _stream(seed, DEMO_GENRES.index(genre), index), size, grid)
                       for genre, index in found])
    return _as_loaded(images, size, resolution)


def _as_loaded(images: np.ndarray, size: int, resolution: int | None) -> np.ndarray:
    """Covers drawn at `size` px, centre-cropped and resized to `resolution` as training loads them."""
    if resolution and resolution != size:
        images = np.stack([np.asarray(ImageOps.fit(Image.fromarray(image), (resolution, resolution),
                                                   Image.Resampling.BICUBIC)) for image in images])
    return images
