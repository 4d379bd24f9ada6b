"""Image datasets from folders and CSV manifests, decoded once into memory at model resolution.

Accepted layouts:
* labelled folder: one sub-folder per genre, images anywhere below it (nested folders fine);
* unlabelled folder: images anywhere below it, flat or nested;
* CSV manifest with a header `path,genre` (paths relative to the CSV's folder, or absolute).

Every image is centre-cropped to a square and resized to the model resolution. Files that
cannot be decoded (corrupt, truncated, not an image) are skipped and reported, never fatal.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gan.config import DataConfig
from gan.errors import GanError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    """Decoded images (N, 3, R, R) uint8, genre indices (N,) or None, and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None
    genres: list[str]
    description: DataConfig
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def find_images(root: Path) -> list[Path]:
    """Image files below `root`, sorted so that every machine sees the same order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def load_image(path: Path | str, resolution: int) -> np.ndarray:
    """Decode, centre-crop and resize one image to (3, R, R) uint8. Raises OSError if unreadable."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            # JPEG can decode at a reduced scale directly, far faster for large covers.
            image.draft("RGB", (resolution * 2, resolution * 2))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image = ImageOps.fit(image, (resolution, resolution), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def _decode_all(paths: list[Path], resolution: int) -> tuple[np.ndarray, list[int], list[str]]:
    """Decode in parallel threads (PIL releases the GIL while decoding and resizing)."""

    def decode(path: Path) -> np.ndarray | None:
        try:
            return load_image(path, resolution)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning):
            return None

    images = np.empty((len(paths), 3, resolution, resolution), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[str] = []
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        for i, (path, pixels) in enumerate(zip(paths, pool.map(decode, paths, chunksize=32))):
            if pixels is None:
                skipped.append(str(path))
            else:
                images[len(kept)] = pixels
                kept.append(i)
    return images[: len(kept)], kept, skipped


def _warn_skipped(skipped: list[str], source: str) -> None:
    if skipped:
        first = ", ".join(Path(p).name for p in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        log.warning("skipped %d unreadable image(s) in %s: %s%s", len(skipped), source, first, more)


def _labelled(paths: list[Path], names: list[str], genres: list[str], resolution: int, source: str,
              kind: str) -> ImageSet:
    images, kept, skipped = _decode_all(paths, resolution)
    _warn_skipped(skipped, source)
    if len(kept) == 0:
        raise GanError(f"{source}: none of the {len(paths)} image file(s) could be read")
    label_of = {g: i for i, g in enumerate(genres)}
    labels = np.array([label_of[names[i]] for i in kept], dtype=np.int64)
    counts = {g: int((labels == i).sum()) for i, g in enumerate(genres)}
    empty = [g for g, n in counts.items() if n == 0]
    if empty:
        raise GanError(f"{source}: no readable images for genre(s) {empty}")
    description = DataConfig(path=source, kind=kind, num_images=len(kept), num_skipped=len(skipped),
                             genres=genres, images_per_genre=counts)
    return ImageSet(images, labels, genres, description, skipped)


def load_labelled_folder(root: str | os.PathLike, resolution: int) -> ImageSet:
    root = Path(root)
    _check_folder(root)
    genre_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_genre = {d.name: find_images(d) for d in genre_dirs}
    per_genre = {g: files for g, files in per_genre.items() if files}
    if not per_genre:
        loose = find_images(root)
        hint = (f" (found {len(loose)} image(s) but no genre sub-folders: use it with --pretrain-data,"
                " or sort it into one sub-folder per genre)") if loose else ""
        raise GanError(f"{root}: no genre sub-folders with images{hint}")
    genres = sorted(per_genre)
    paths = [p for g in genres for p in per_genre[g]]
    names = [g for g in genres for _ in per_genre[g]]
    return _labelled(paths, names, genres, resolution, str(root), "labelled-folder")


def load_csv_manifest(path: str | os.PathLike, resolution: int) -> ImageSet:
    path = Path(path)
    if not path.is_file():
        raise GanError(f"{path}: manifest not found")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as error:
        raise GanError(f"{path}: not a readable CSV file ({error})") from None
    if not rows or not {"path", "genre"} <= set(rows[0]):
        raise GanError(f"{path}: a manifest needs a header with the columns 'path' and 'genre' and at least one row")
    paths, names = [], []
    for line, row in enumerate(rows, start=2):
        if not row["path"] or not row["genre"]:
            raise GanError(f"{path}, line {line}: empty 'path' or 'genre'")
        file = Path(row["path"])
        paths.append(file if file.is_absolute() else path.parent / file)
        names.append(row["genre"].strip())
    genres = sorted(set(names))
    return _labelled(paths, names, genres, resolution, str(path), "csv-manifest")


def load_unlabelled_folder(root: str | os.PathLike, resolution: int) -> ImageSet:
    root = Path(root)
    _check_folder(root)
    paths = find_images(root)
    if not paths:
        raise GanError(f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} in all sub-folders)")
    images, kept, skipped = _decode_all(paths, resolution)
    _warn_skipped(skipped, str(root))
    if not kept:
        raise GanError(f"{root}: none of the {len(paths)} image file(s) could be read")
    description = DataConfig(path=str(root), kind="unlabelled-folder", num_images=len(kept), num_skipped=len(skipped))
    return ImageSet(images, None, [], description, skipped)


def load_dataset(path: str | os.PathLike, resolution: int, labelled: bool) -> ImageSet:
    """Open a CSV manifest or a folder, labelled (one sub-folder per genre) or not."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        image_set = load_csv_manifest(path, resolution)
        if not labelled:  # a manifest can feed pre-training too: its labels are simply not used
            image_set.labels, image_set.genres = None, []
        return image_set
    return load_labelled_folder(path, resolution) if labelled else load_unlabelled_folder(path, resolution)


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise GanError(f"{root}: data folder not found")
    if not root.is_dir():
        raise GanError(f"{root}: not a folder (give a folder of images or a .csv manifest)")
