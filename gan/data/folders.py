"""Image datasets decoded once into memory at model resolution, or opened from a packed file.

Accepted inputs (see `gan.data.sources` for the layouts): a labelled folder (one sub-folder per
genre, and optionally `tags.csv` for covers of several genres), an unlabelled folder, a CSV manifest
(`path,genre` or `path,genres`), archives (.tar[.gz], .zip, or a folder
of them, as large sets like OMACIR ship), and packs written by `python -m gan data pack`, which are
memory-mapped rather than decoded, so they may be far larger than RAM.

Every image is centre-cropped to a square and resized to the model resolution. Files that
cannot be decoded (corrupt, truncated, not an image) are skipped and reported, never fatal.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gan.config import DataConfig, check_genre_names
from gan.data.sources import ImageSource, SourceImage, open_source
from gan.errors import GanError
from gan.tags import tag_matrix, tag_pair_counts

log = logging.getLogger(__name__)
DECODE_CHUNK = 256
UNREADABLE = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError,
              Image.DecompressionBombWarning)


@dataclass
class ImageSet:
    """Images (N, 3, R, R) uint8 (in memory, or memory-mapped from a pack), main genre indices (N,)
    or None, and where they came from. `tags` (N, num_genres) bool holds every cover's tag set
    when some cover has more than one (see `gan.tags`), and is None for single-genre data."""

    images: np.ndarray
    labels: np.ndarray | None
    genres: list[str]
    description: DataConfig
    skipped: list[str] = field(default_factory=list)
    tags: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.images)


def load_image(file: Path | str | io.BytesIO, resolution: int) -> np.ndarray:
    """Decode, centre-crop and resize one image to (3, R, R) uint8. Raises OSError if unreadable."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(file) as image:
            # JPEG can decode at a reduced scale directly, far faster for large covers.
            image.draft("RGB", (resolution * 2, resolution * 2))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image = ImageOps.fit(image, (resolution, resolution), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def decode_item(item: SourceImage, resolution: int) -> np.ndarray | None:
    """The decoded pixels of one source image, or None when it cannot be read."""
    if item.path is None and item.data is None:  # an archive member skipped unread
        return None
    try:
        return load_image(item.path if item.path is not None else io.BytesIO(item.data), resolution)
    except UNREADABLE:
        return None


@dataclass
class DecodedChunk:
    images: np.ndarray  # (k, 3, R, R) uint8, the readable images of the chunk
    items: list[SourceImage]  # the items those images came from, in order
    skipped: list[str]  # names of the unreadable ones


def decode_chunks(source: ImageSource, resolution: int, workers: int | None = None) -> Iterator[DecodedChunk]:
    """Decode a source in order, a chunk at a time, in parallel threads (PIL releases the GIL while
    decoding and resizing), so that no more than a few chunks are ever held in memory."""
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    items = source.items()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = None
        while True:
            chunk = list(islice(items, DECODE_CHUNK))
            # Submit the next chunk before collecting the last, so reading an archive overlaps decoding.
            submitted = (chunk, [pool.submit(decode_item, item, resolution) for item in chunk]) if chunk else None
            if pending is not None:
                yield _collect(*pending, resolution)
            if submitted is None:
                return
            pending = submitted


def _collect(chunk: list[SourceImage], futures: list, resolution: int) -> DecodedChunk:
    pixels = [f.result() for f in futures]
    kept = [item for item, p in zip(chunk, pixels) if p is not None]
    images = np.stack([p for p in pixels if p is not None]) if kept else np.empty((0, 3, resolution, resolution),
                                                                                   np.uint8)
    return DecodedChunk(images, kept, [item.name for item, p in zip(chunk, pixels) if p is None])


def warn_skipped(skipped: list[str], source: str) -> None:
    if skipped:
        first = ", ".join(Path(p).name for p in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        log.warning("skipped %d unreadable image(s) in %s: %s%s", len(skipped), source, first, more)


def decode_source(source: ImageSource, resolution: int) -> ImageSet:
    """Decode a whole source into memory."""
    chunks, kept, skipped = [], [], []
    for chunk in decode_chunks(source, resolution):
        chunks.append(chunk.images)
        kept += chunk.items
        skipped += chunk.skipped
    warn_skipped(skipped, str(source.path))
    total = len(kept) + len(skipped)
    if not kept:
        if total:
            raise GanError(f"{source.path}: none of the {total} image file(s) could be read")
        raise GanError(f"{source.path}: no images found in the archive(s)")
    images = np.concatenate(chunks)
    if not source.labelled:
        description = DataConfig(path=str(source.path), kind=source.kind, num_images=len(kept),
                                 num_skipped=len(skipped))
        return ImageSet(images, None, [], description, skipped)
    genres = source.genres or sorted({item.genre for item in kept if item.genre})
    labels, tags, description = describe_labels(genres, [item.tags for item in kept], str(source.path))
    description.kind, description.num_images, description.num_skipped = source.kind, len(kept), len(skipped)
    return ImageSet(images, labels, genres, description, skipped, tags)


def describe_labels(genres: list[str], tag_sets: list[tuple[str, ...]], source: str
                    ) -> tuple[np.ndarray, np.ndarray | None, DataConfig]:
    """Main genre indices, the tag matrix (None for single-genre data) and the data record of
    labelled covers (`tag_sets[i]`: cover i's tags, its main genre first)."""
    check_genre_names(genres, source)  # those of archives are known only now: count and case
    label_of = {g: i for i, g in enumerate(genres)}
    labels = np.array([label_of[tags[0]] for tags in tag_sets], dtype=np.int64)
    tags = tag_matrix(tag_sets, genres)
    carried = tags.any(axis=0) if tags is not None else np.bincount(labels, minlength=len(genres)) > 0
    empty = [g for g, present in zip(genres, carried) if not present]
    if empty:  # a genre the model could never learn
        raise GanError(f"{source}: no readable images for genre(s) {empty}")
    description = DataConfig(path=source, genres=genres,
                             images_per_genre={g: int((labels == i).sum()) for i, g in enumerate(genres)},
                             tag_pairs=tag_pair_counts(tags, genres))
    return labels, tags, description


def load_labelled_folder(root: str | os.PathLike, resolution: int) -> ImageSet:
    _check_folder(Path(root))
    return decode_source(open_source(root, labelled=True), resolution)


def load_unlabelled_folder(root: str | os.PathLike, resolution: int) -> ImageSet:
    _check_folder(Path(root))
    return decode_source(open_source(root, labelled=False), resolution)


def load_csv_manifest(path: str | os.PathLike, resolution: int) -> ImageSet:
    return decode_source(open_source(path, labelled=True), resolution)


def load_dataset(path: str | os.PathLike, resolution: int, labelled: bool) -> ImageSet:
    """Open a pack, a CSV manifest, archive(s) or a folder, labelled (one sub-folder per genre) or not."""
    from gan.data.pack import is_pack, open_pack

    path = Path(path)
    if is_pack(path):
        return open_pack(path, resolution, labelled)
    if path.suffix.lower() == ".csv":
        image_set = load_csv_manifest(path, resolution)
        if not labelled:  # a manifest can feed pre-training too: its labels are simply not used
            image_set.labels, image_set.genres, image_set.tags = None, [], None
        return image_set
    if not path.exists():
        raise GanError(f"{path}: data folder not found")
    image_set = decode_source(open_source(path, labelled), resolution)
    if path.is_dir():  # demo covers say so, and checkpoints record it (a held-out draw is their baseline)
        from gan.data.demo import read_demo_marker

        image_set.description.demo_covers = read_demo_marker(path)
    return image_set


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise GanError(f"{root}: data folder not found")
    if not root.is_dir():
        raise GanError(f"{root}: not a folder (give a folder of images or a .csv manifest)")
