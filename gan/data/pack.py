"""Packed datasets: images decoded, centre-cropped and resized once, stored as one uint8 array.

A pack is a folder (by convention named `NAME.pack`):

    pack.json    format, version, resolution, count, genres, source, skipped files
    images.u8    count x 3 x R x R uint8, C order, no header: memory-mapped for training
    labels.npy   count int64 main genre indices (labelled packs only)
    tags.npy     count x genres uint8 multi-hot tag sets (only when some cover has several genres)
    names.txt    the source file (or archive member) of each image, one per line

Packing streams: images are decoded a chunk at a time and appended to `images.u8`, so a set of
any size (OMACIR's 800k covers are 9.8 GB at 64 px) packs in a few hundred MB of RAM; training
maps the file and reads only the rows of each batch. The pack is written beside its final place
and renamed into it when complete, so an interrupted pack never looks finished.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gan.atomic import rename_folder_into_place, write_json
from gan.checkpoint import read_json
from gan.config import DataConfig, check_genre_names, from_dict
from gan.data.folders import ImageSet, decode_chunks, describe_labels, warn_skipped
from gan.data.sources import looks_labelled, open_source
from gan.errors import GanError

PACK_FORMAT = "covergan-pack"
PACK_VERSION = 1
INFO_FILE, IMAGES_FILE, LABELS_FILE, NAMES_FILE = "pack.json", "images.u8", "labels.npy", "names.txt"
TAGS_FILE = "tags.npy"
SKIPPED_LISTED = 100  # unreadable files named in pack.json; the count is always exact
MIN_SIZE, MAX_SIZE = 8, 1024


@dataclass
class PackInfo:
    """The contents of pack.json."""

    format: str = PACK_FORMAT
    version: int = PACK_VERSION
    resolution: int = 64
    count: int = 0
    genres: list[str] = field(default_factory=list)
    images_per_genre: dict[str, int] = field(default_factory=dict)
    tag_pairs: dict[str, int] = field(default_factory=dict)  # non-empty exactly when tags.npy exists
    source: str = ""
    source_kind: str = ""
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def labelled(self) -> bool:
        return bool(self.genres)

    def validate(self) -> None:
        """Limits beyond the field types (which `from_dict` checks), so no value reads two ways."""
        if not MIN_SIZE <= self.resolution <= MAX_SIZE:
            raise GanError(f"resolution must be between {MIN_SIZE} and {MAX_SIZE}, got {self.resolution}")
        if self.count < 1:
            raise GanError(f"count must be at least 1, got {self.count}")
        if self.skipped < 0:
            raise GanError(f"skipped must not be negative, got {self.skipped}")
        check_genre_names(self.genres, "genres")
        if set(self.images_per_genre) - set(self.genres):
            raise GanError(f"images_per_genre names genres that are not in genres {self.genres[:5]}")


def is_pack(path: str | os.PathLike) -> bool:
    return (Path(path) / INFO_FILE).is_file()


def write_pack(source_path: str | os.PathLike, out: str | os.PathLike, resolution: int, labelled: bool | None = None,
               overwrite: bool = False, workers: int | None = None, progress: bool = False) -> PackInfo:
    """Decode `source_path` (folder, manifest or archives) once into the pack `out`.

    `labelled` None reads labels where the layout has them, as training does (a CSV manifest, or a
    folder of genre sub-folders; see `looks_labelled`); a labelled pack serves pre-training too.
    """
    out = Path(out)
    if not MIN_SIZE <= resolution <= MAX_SIZE:
        raise GanError(f"--size must be between {MIN_SIZE} and {MAX_SIZE}, got {resolution}")
    if out.exists() and not overwrite:
        raise GanError(f"{out}: already exists; pass --overwrite to replace it")
    if labelled is None:
        labelled = looks_labelled(source_path)
    if out.exists():
        _check_replaceable(out, Path(source_path))
    source = open_source(source_path, labelled)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    start = time.perf_counter()
    item_tags: list[tuple[str, ...]] = []
    skipped: list[str] = []
    try:
        with open(partial / IMAGES_FILE, "wb") as images, open(partial / NAMES_FILE, "w", encoding="utf-8") as names, \
                tqdm(total=source.count, unit="img", desc="pack", disable=not progress, dynamic_ncols=True) as bar:
            for chunk in decode_chunks(source, resolution, workers):
                images.write(np.ascontiguousarray(chunk.images).tobytes())
                names.writelines(item.name.replace("\n", " ") + "\n" for item in chunk.items)
                item_tags += [item.tags for item in chunk.items]
                skipped += chunk.skipped
                bar.update(len(chunk.items) + len(chunk.skipped))
            images.flush()
            os.fsync(images.fileno())
        warn_skipped(skipped, str(source.path))
        if not item_tags:
            raise GanError(f"{source.path}: no readable images to pack" +
                           (f" (all {len(skipped)} failed to decode)" if skipped else ""))
        info = PackInfo(resolution=resolution, count=len(item_tags), source=str(source.path),
                        source_kind=source.kind, skipped=len(skipped), skipped_files=skipped[:SKIPPED_LISTED])
        if labelled:
            genres = source.genres or sorted({tags[0] for tags in item_tags if tags})
            labels, tags, description = describe_labels(genres, item_tags, str(source.path))
            info.genres, info.images_per_genre = genres, description.images_per_genre
            info.tag_pairs = description.tag_pairs
            np.save(partial / LABELS_FILE, labels)
            if tags is not None:
                np.save(partial / TAGS_FILE, tags.astype(np.uint8))
        info.seconds = round(time.perf_counter() - start, 2)
        write_json(partial / INFO_FILE, asdict(info))
        rename_folder_into_place(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return info


def _check_replaceable(out: Path, source: Path) -> None:
    """--overwrite replaces an earlier pack, never a file, a folder of other things or the source."""
    if out.resolve() == source.resolve() or out.resolve() in source.resolve().parents:
        raise GanError(f"{out}: holds the source being packed ({source}); choose another --out")
    try:
        ours = out.is_dir() and read_json(out / INFO_FILE).get("format") == PACK_FORMAT
    except (GanError, AttributeError):
        ours = False
    others = sorted(set(os.listdir(out)) - {INFO_FILE, IMAGES_FILE, LABELS_FILE, TAGS_FILE, NAMES_FILE}) if ours else []
    if not ours or others:
        detail = f"it also holds {others[0]!r}" if others else "it is not a pack"
        raise GanError(f"{out}: --overwrite replaces only a pack, and {detail}; choose another --out")


def read_pack_info(path: str | os.PathLike) -> PackInfo:
    path = Path(path)
    info_file = path / INFO_FILE
    if not info_file.is_file():
        raise GanError(f"{path}: not a pack ({INFO_FILE} missing); make one with python -m gan data pack")
    raw = read_json(info_file, "pack info")
    if not isinstance(raw, dict) or raw.get("format") != PACK_FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise GanError(f"{info_file}: not a CoverGAN pack (format {found!r})")
    version = raw.get("version")
    if type(version) is not int:  # noqa: E721 (a bool is not a version)
        raise GanError(f"{info_file}: version must be a whole number, got {version!r}")
    if version != PACK_VERSION:
        raise GanError(f"{path}: pack format version {version}, this CoverGAN reads version {PACK_VERSION}; "
                       "re-pack it with python -m gan data pack")
    known = {f for f in PackInfo.__dataclass_fields__}
    return from_dict(PackInfo, {k: v for k, v in raw.items() if k in known}, str(info_file))


def open_pack(path: str | os.PathLike, resolution: int, labelled: bool) -> ImageSet:
    """Memory-map a pack as an ImageSet (nothing is read until a batch asks for its rows)."""
    path = Path(path)
    info = read_pack_info(path)
    if info.resolution != resolution:
        raise GanError(f"{path}: packed at {info.resolution} px but the model is {resolution} px; re-pack with "
                       f"--size {resolution}, or train with --resolution {info.resolution}")
    if labelled and not info.labelled:
        raise GanError(f"{path}: this pack has no genre labels (packed without --labelled); fine-tuning needs them")
    shape = (info.count, 3, resolution, resolution)
    images_file = path / IMAGES_FILE
    expected = math.prod(shape)  # Python ints: no overflow whatever count pack.json claims
    actual = images_file.stat().st_size if images_file.is_file() else -1
    if actual != expected:
        raise GanError(f"{images_file}: {actual} bytes where {info.count} images at {resolution} px need {expected}; "
                       "the pack is truncated or damaged, re-pack it")
    # Copy-on-write mapping: writable for torch.from_numpy, yet the file is never changed.
    images = np.memmap(images_file, dtype=np.uint8, mode="c", shape=shape)
    labels = tags = None
    if labelled:
        labels_file = path / LABELS_FILE
        try:  # mapped first: the header's dtype and shape are checked before anything is read
            mapped = np.load(labels_file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise GanError(f"{labels_file}: unreadable ({error}); re-pack it") from None
        if mapped.dtype.kind not in "iu" or mapped.shape != (info.count,):
            raise GanError(f"{labels_file}: {mapped.dtype} labels of shape {mapped.shape} where {INFO_FILE} needs "
                           f"{info.count} whole numbers; re-pack it")
        labels = np.array(mapped, dtype=np.int64)
        if labels.min() < 0 or labels.max() >= len(info.genres):
            raise GanError(f"{labels_file}: labels from {labels.min()} to {labels.max()} where {INFO_FILE} has "
                           f"{len(info.genres)} genres; re-pack it")
        tags = _read_tags(path / TAGS_FILE, info, labels) if info.tag_pairs else None
    description = DataConfig(path=str(path), kind="pack", num_images=info.count, num_skipped=info.skipped,
                             genres=info.genres if labelled else [],
                             images_per_genre=info.images_per_genre if labelled else {},
                             tag_pairs=info.tag_pairs if labelled else {})
    return ImageSet(images, labels, info.genres if labelled else [], description, tags=tags)


def _read_tags(tags_file: Path, info: PackInfo, labels: np.ndarray) -> np.ndarray:
    """The multi-hot tag sets of a pack whose covers have several genres, checked against its labels."""
    try:  # mapped first, as the labels: the header is checked before anything is read
        tags = np.load(tags_file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise GanError(f"{tags_file}: unreadable ({error}); re-pack it") from None
    if tags.dtype != np.uint8 or tags.shape != (info.count, len(info.genres)) or tags.max(initial=0) > 1 \
            or not tags[np.arange(info.count), labels].all():
        raise GanError(f"{tags_file}: not {info.count} x {len(info.genres)} tag sets of 0 and 1 that hold each "
                       f"cover's main genre; re-pack it")
    return np.array(tags, dtype=bool)
