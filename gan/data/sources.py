"""Where images come from, as a stream of encoded files: folders, CSV manifests and archives.

Large sets ship as archives (the OMACIR set, for one, is far too big to unpack casually), so
archives are read member by member without extracting them. Every source yields `SourceImage`
items in a fixed order, so packing and in-memory loading see the same images in the same order
on every machine.

Accepted sources:
* a folder of images at any depth (unlabelled), or with one sub-folder per genre (labelled);
* a CSV manifest with the columns `path,genre`, or `path,genres` where a cell lists a cover's tags
  as `jazz;electronic` (its first tag is its main genre; see `gan.tags`);
* an archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, .zip) or a folder holding archives (read in
  name order, e.g. the parts of a split download); labelled archives name the genre by the first
  folder of each member's path.

A labelled folder may also hold `tags.csv` (`path,genres`, paths relative to the folder) naming more
tags for some of its covers than the folder they sit in: an album filed under jazz that is also
electronic. `python -m gan demo-data` writes one for the demo covers that borrow from a second genre.

Genre names come from folder names, CSV cells and archive paths, and later become folder names
(`generate` writes OUT/<genre>/), so each source checks them with `gan.config.check_genre_names`:
an archive member `../../evil.png` or `/abs/evil.png` is refused with its archive and path named,
never read as the genre `..` or `/`.

An archive member is read into memory whole, so members larger than `MAX_MEMBER_BYTES` (judged by
the archive's header, then by a read that stops one byte past the limit, in case the header lies)
are skipped unread and reported with the unreadable images, as a corrupt file in a folder is.
"""

from __future__ import annotations

import csv
import logging
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gan.config import check_genre_names
from gan.errors import GanError
from gan.tags import split_tags

log = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
MAX_MEMBER_BYTES = 64 << 20  # far above any cover image; what one archive member may cost in memory
FOLDER_TAGS_FILE = "tags.csv"  # in a labelled folder: further tags of some covers


@dataclass(frozen=True)
class SourceImage:
    """One encoded image: a file to open, or the bytes of an archive member."""

    name: str  # the path a user recognises: a file path, or "archive.tar:member/path.jpg"
    genre: str | None  # the main genre (the folder, or a manifest's first tag)
    path: str | None = None
    data: bytes | None = None  # neither path nor data: a member skipped unread (too large)
    extra_tags: tuple[str, ...] = ()  # further genres of a multi-tag cover

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.genre, *self.extra_tags) if self.genre else ()


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(ARCHIVE_SUFFIXES)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def find_images(root: Path) -> list[Path]:
    """Image files below `root`, sorted so that every machine sees the same order."""
    return sorted(p for p in root.rglob("*") if is_image_name(p.name) and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def find_archives(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if is_archive(p))


def genre_folders(root: Path) -> dict[str, list[Path]]:
    """Images per genre sub-folder of `root` (genres with no images left out)."""
    folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_genre = {d.name: find_images(d) for d in folders}
    return {genre: files for genre, files in per_genre.items() if files}


def looks_labelled(path: str | Path) -> bool:
    """Whether a source carries genre labels in its layout: a CSV manifest, or a folder whose images
    all sit in sub-folders (one per genre), none loose at its top. Archives count as unlabelled:
    their layout shows only once they are read through."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".csv"
    if not path.is_dir() or any(is_image_name(p.name) and p.is_file() for p in path.iterdir()):
        return False
    return any(is_image_name(f.name) for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")
               for f in d.rglob("*"))


def read_manifest(path: Path) -> list[tuple[Path, list[str]]]:
    """(image path, tags) rows of a `path,genre` or `path,genres` CSV, the main genre first;
    relative paths are relative to the CSV."""
    columns, rows = _read_csv_rows(path, "manifest")
    tag_column = "genres" if "genres" in columns else "genre"
    if not rows or "path" not in columns or tag_column not in columns:
        raise GanError(f"{path}: a manifest needs a header with the columns 'path' and 'genre' (or 'genres') "
                       "and at least one row")
    entries = []
    for line, row in enumerate(rows, start=2):
        cell = row[tag_column] or ""
        tags = split_tags(cell) if tag_column == "genres" else [cell.strip()] if cell.strip() else []
        if not row["path"] or not tags:
            raise GanError(f"{path}, line {line}: empty 'path' or '{tag_column}'")
        file = Path(row["path"])
        entries.append((file if file.is_absolute() else path.parent / file, tags))
    check_genre_names(sorted({tag for _, tags in entries for tag in tags}), str(path))
    return entries


def read_folder_tags(root: Path, per_genre: dict[str, list[Path]]) -> dict[Path, tuple[str, ...]]:
    """The further tags `root/tags.csv` gives covers of a labelled folder: {image path: tags beyond
    its folder's genre}. Every path must be one of the folder's images, every tag one of its genres."""
    file = root / FOLDER_TAGS_FILE
    if not file.is_file():
        return {}
    columns, rows = _read_csv_rows(file, "tags file")
    if not {"path", "genres"} <= columns:
        raise GanError(f"{file}: needs a header with the columns 'path' and 'genres'")
    genre_of = {p.resolve(): genre for genre, files in per_genre.items() for p in files}
    extra: dict[Path, tuple[str, ...]] = {}
    for line, row in enumerate(rows, start=2):
        image = (root / (row["path"] or "")).resolve()
        genre = genre_of.get(image)
        if genre is None:
            raise GanError(f"{file}, line {line}: {row['path']!r} is not an image in a genre folder of {root}")
        tags = split_tags(row["genres"] or "")
        unknown = [t for t in tags if t not in per_genre]
        if unknown:
            raise GanError(f"{file}, line {line}: genre {unknown[0]!r} has no folder in {root}")
        extra[image] = tuple(t for t in tags if t != genre)
    return extra


def _read_csv_rows(path: Path, what: str) -> tuple[set[str], list[dict[str, str]]]:
    """A CSV's header columns and its rows."""
    if not path.is_file():
        raise GanError(f"{path}: {what} not found")
    try:
        # utf-8-sig: spreadsheet programs often save CSVs with a byte-order mark before the header.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            return set(reader.fieldnames or ()), rows
    except (UnicodeDecodeError, csv.Error) as error:
        raise GanError(f"{path}: not a readable CSV file ({error})") from None


def iter_archive(archive: Path, labelled: bool) -> Iterator[SourceImage]:
    """Image members of one archive in stored order, read without extracting to disk."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if not info.is_dir() and is_image_name(info.filename):
                        genre = _member_genre(archive, info.filename, labelled)
                        if genre != "":
                            with zf.open(info) as member:
                                yield _member(archive, info.filename, genre, info.file_size, member)
        else:
            # Streaming mode ("r|*") reads a compressed tar front to back once, never seeking.
            with tarfile.open(archive, mode="r|*") as tf:
                for member in tf:
                    if member.isfile() and is_image_name(member.name):
                        genre = _member_genre(archive, member.name, labelled)
                        extracted = tf.extractfile(member)
                        if genre != "" and extracted is not None:
                            yield _member(archive, member.name, genre, member.size, extracted)
                    tf.members = []  # a streamed tar would otherwise keep every member's header
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise GanError(f"{archive}: cannot read the archive ({error}); it may be truncated or not an archive") from None


def _member(archive: Path, name: str, genre: str | None, declared_size: int, stream: BinaryIO) -> SourceImage:
    """One member's bytes, or an item with none (reported as unreadable) when it is too large."""
    data = stream.read(MAX_MEMBER_BYTES + 1) if declared_size <= MAX_MEMBER_BYTES else b""
    if declared_size > MAX_MEMBER_BYTES or len(data) > MAX_MEMBER_BYTES:
        log.warning("%s:%s: larger than %d MiB, skipped unread", archive, name, MAX_MEMBER_BYTES >> 20)
        return SourceImage(f"{archive}:{name}", genre)
    return SourceImage(f"{archive}:{name}", genre, data=data)


def _member_genre(archive: Path, name: str, labelled: bool) -> str | None:
    """The genre of a labelled member (its first folder), "" for a member outside any folder."""
    if not labelled:
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if len(parts) < 2:
        return ""
    check_genre_names([parts[0]], f"{archive}: member {name!r}")
    return parts[0]


@dataclass
class ImageSource:
    """A listed source: its items arrive through `items()`; `count` is known up front except for
    archives (compressed tars cannot be counted without reading them through)."""

    path: Path
    kind: str  # labelled-folder, unlabelled-folder, csv-manifest, archive
    genres: list[str]
    count: int | None
    _folder_items: list[SourceImage] | None = None
    _archives: list[Path] | None = None
    labelled: bool = False

    def items(self) -> Iterator[SourceImage]:
        if self._folder_items is not None:
            yield from self._folder_items
            return
        for archive in self._archives or []:
            yield from iter_archive(archive, self.labelled)


def open_source(path: str | Path, labelled: bool) -> ImageSource:
    """List a folder, manifest or archive(s) as a source of images (labelled by genre or not)."""
    path = Path(path)
    if not path.exists():
        raise GanError(f"{path}: not found")
    if path.is_file() and path.suffix.lower() == ".csv":
        entries = read_manifest(path)
        items = [SourceImage(str(p), tags[0], path=str(p), extra_tags=tuple(tags[1:])) if labelled else
                 SourceImage(str(p), None, path=str(p)) for p, tags in entries]
        genres = sorted({tag for _, tags in entries for tag in tags}) if labelled else []
        return ImageSource(path, "csv-manifest", genres, len(items), _folder_items=items, labelled=labelled)
    if is_archive(path):
        return ImageSource(path, "archive", [], None, _archives=[path], labelled=labelled)
    if not path.is_dir():
        raise GanError(f"{path}: not a folder, a .csv manifest or an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    if labelled:
        per_genre = genre_folders(path)
        if per_genre:
            check_genre_names(sorted(per_genre), str(path))
            extra = read_folder_tags(path, per_genre)
            items = [SourceImage(str(p), g, path=str(p), extra_tags=extra.get(p.resolve(), ()))
                     for g in sorted(per_genre) for p in per_genre[g]]
            return ImageSource(path, "labelled-folder", sorted(per_genre), len(items), _folder_items=items,
                               labelled=True)
    else:
        files = find_images(path)
        if files:
            items = [SourceImage(str(p), None, path=str(p)) for p in files]
            return ImageSource(path, "unlabelled-folder", [], len(items), _folder_items=items)
    archives = find_archives(path)
    if archives:
        return ImageSource(path, "archive", [], None, _archives=archives, labelled=labelled)
    if labelled:
        loose = find_images(path)
        hint = (f" (found {len(loose)} image(s) but no genre sub-folders: use it with --pretrain-data,"
                " or sort it into one sub-folder per genre)") if loose else ""
        raise GanError(f"{path}: no genre sub-folders with images{hint}")
    raise GanError(f"{path}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} and archives in all "
                   "sub-folders)")
