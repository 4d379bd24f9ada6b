"""Build a genre-labelled cover dataset with the Spotify Web API (through the spotipy library).

    SPOTIPY_CLIENT_ID=... SPOTIPY_CLIENT_SECRET=... \\
        python -m gan data spotify --genres rock,metal,jazz --per-genre 5000 --out data/spotify

Endpoints used (client-credentials flow, no user login):
* `POST accounts.spotify.com/api/token`: an app token from the client id and secret;
* `GET /v1/search?type=artist&q=genre:"GENRE"`: artists Spotify files under the genre (the
  genre filter works for artists and tracks, not albums);
* `GET /v1/artists/{id}/albums?include_groups=album`: each artist's albums, whose objects carry
  the cover images (640, 300 and 64 px);
* the image URLs themselves (Spotify's CDN, no token needed).
Nothing here uses the endpoints Spotify closed to new apps in November 2024 (recommendations,
related artists, genre seeds, audio features, featured and category playlists).

The build runs in three resumable stages: collect candidate albums per genre (cached in
`OUT/.spotify/`), resolve albums claimed by several genres (`--overlap tags|first|drop`), download
covers (`OUT/<genre>/<album_id>.jpg`, written to a temporary name and renamed only once the image
decodes). A second run skips what is done. Outputs beside the images: `manifest.csv` (usable as
training data directly), `overlaps.csv`, `duplicates.csv` (same image under two album ids) and
`failed.csv`. Credentials are read from the environment and never written anywhere.

Albums carry every genre they belong to (`--overlap tags`, the default): an album is stored once,
in the folder of the first of `--genres` that found it, and its manifest row lists in `genres`
(`rock;jazz`, see `gan.tags`) that genre, then every other requested genre that found it too or
that its artist carries on Spotify (names compared exactly: "jazz fusion" is not "jazz"), and in
`artist_genres` the artist's whole genre list. `--overlap first` keeps only the first genre and
`drop` leaves shared albums out, as before tags existed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
import spotipy
from PIL import Image, UnidentifiedImageError
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError
from tqdm import tqdm

from gan.atomic import write_bytes_atomically, write_csv, write_json
from gan.config import check_genre_names
from gan.errors import GanError
from gan.tags import TAG_SEPARATOR

API_URL = "https://api.spotify.com/v1/"
TOKEN_URL = "https://accounts.spotify.com/api/token"
IMAGE_SIZES = (640, 300, 64)
OVERLAP_POLICIES = ("tags", "first", "drop")
MANIFEST_COLUMNS = ["path", "genre", "genres", "album_id", "name", "artist", "artist_genres", "image_url", "sha256"]
STATE_DIR = ".spotify"
# Search pages stop at offset 1000; artists' album lists are paged without that limit.
SEARCH_OFFSET_LIMIT = 1000
TRANSIENT_STATUS = (429, 500, 502, 503, 504)

log = logging.getLogger(__name__)
# spotipy logs request headers (with the token) at DEBUG and every HTTP error at ERROR; we
# report errors ourselves, once, and credentials must never reach a log.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)

T = TypeVar("T")


@dataclass
class SpotifyBuildConfig:
    """What to collect; saved as OUT/spotify.json (never with credentials)."""

    genres: list[str]
    per_genre: int = 1000
    image_size: int = 640
    overlap: str = "tags"
    market: str | None = None
    page_size: int = 10
    # Candidates collected beyond --per-genre, for covers lost to duplicates and failed downloads.
    spare: float = 0.2
    api_url: str = API_URL
    token_url: str = TOKEN_URL

    def validate(self) -> None:
        if not self.genres or any(not g.strip() for g in self.genres):
            raise GanError("--genres: give a comma-separated list of genre names, e.g. rock,metal,jazz")
        check_genre_names(self.genres, "--genres")  # each becomes the folder OUT/<genre>/
        if self.per_genre < 1:
            raise GanError(f"--per-genre must be at least 1, got {self.per_genre}")
        if self.image_size not in IMAGE_SIZES:
            raise GanError(f"--image-size must be one of {IMAGE_SIZES} (the sizes Spotify serves), "
                           f"got {self.image_size}")
        if self.overlap not in OVERLAP_POLICIES:
            raise GanError(f"--overlap must be one of {OVERLAP_POLICIES}, got {self.overlap!r}")
        if not 1 <= self.page_size <= 50:
            raise GanError(f"--page-size must be between 1 and 50, got {self.page_size}")

    @property
    def candidates_per_genre(self) -> int:
        return self.per_genre + max(5, int(self.per_genre * self.spare))


@dataclass
class Album:
    album_id: str
    name: str
    artist: str
    image_url: str
    artist_genres: list[str] = field(default_factory=list)  # the genres Spotify files its artist under


@dataclass
class BuildReport:
    kept: dict[str, int] = field(default_factory=dict)
    downloaded: int = 0
    reused: int = 0
    overlaps: int = 0
    duplicates: int = 0
    failed: int = 0
    short: dict[str, int] = field(default_factory=dict)  # genres with fewer covers than asked


def credentials_from_environment() -> tuple[str, str]:
    client_id = os.environ.get("SPOTIPY_CLIENT_ID", "").strip()
    client_secret = os.environ.get("SPOTIPY_CLIENT_SECRET", "").strip()
    if not client_id or not client_secret:
        missing = [n for n, v in (("SPOTIPY_CLIENT_ID", client_id), ("SPOTIPY_CLIENT_SECRET", client_secret)) if not v]
        raise GanError(f"set {' and '.join(missing)} (an app's credentials from developer.spotify.com/dashboard)")
    return client_id, client_secret


class Retrying:
    """The builder's one retry policy, around every request: at most `attempts` tries and
    `max_wait` seconds of waiting in all, backing off `backoff * 2**n` seconds between tries, or as
    long as a 429's Retry-After asks when that fits. It retries dropped connections, bodies cut
    short, timeouts, 429 and 5xx answers and bytes that do not decode. Nothing retries underneath
    (the sessions are plain requests sessions, whose urllib3 retries are off): nested retries
    multiply, and one failing request was once tried some 25 times with compounding back-off."""

    def __init__(self, attempts: int = 5, backoff: float = 1.0, max_wait: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.attempts, self.backoff, self.max_wait, self.sleep = attempts, backoff, max_wait, sleep

    def __call__(self, what: str, call: Callable[[], T]) -> T:
        waited = 0.0
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as error:
                problem, asked = f"network error ({type(error).__name__})", None
            except requests.HTTPError as error:  # from the image downloader
                status = error.response.status_code if error.response is not None else None
                if status not in TRANSIENT_STATUS:
                    raise
                problem, asked = f"HTTP {status}", _retry_after(error.response.headers)
            except spotipy.SpotifyException as error:
                if error.http_status not in TRANSIENT_STATUS:
                    raise
                problem, asked = f"HTTP {error.http_status}", _retry_after(error.headers)
            delay = asked if asked is not None else self.backoff * 2 ** (attempt - 1)
            if attempt == self.attempts or waited + delay > self.max_wait:
                wait = f", asked to wait {delay:.0f} s" if asked is not None and attempt < self.attempts else ""
                raise GanError(f"{what}: gave up after {attempt} attempt(s) ({problem}{wait}); run the same command "
                               "again later to continue where it stopped")
            log.warning("%s: %s, retrying in %.1f s", what, problem, delay)
            self.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")


def _retry_after(headers: Any) -> float | None:
    """The seconds a Retry-After header asks for (the HTTP-date form is rare: backed off instead)."""
    try:
        return max(0.0, float((headers or {}).get("Retry-After")))
    except (TypeError, ValueError):
        return None


class SpotifyCatalog:
    """The few Web API calls the builder needs, with clear errors for credentials and retries."""

    def __init__(self, config: SpotifyBuildConfig, client_id: str, client_secret: str, retrying: Retrying):
        auth = SpotifyClientCredentials(client_id, client_secret, cache_handler=MemoryCacheHandler(),
                                        requests_timeout=30)
        auth.OAUTH_TOKEN_URL = config.token_url  # instance attribute: only this client talks elsewhere
        # A plain session instead of spotipy's, which retries through urllib3 (`retrying` is the one
        # policy): a 429 or 5xx comes straight back as a SpotifyException carrying its Retry-After.
        self.client = spotipy.Spotify(auth_manager=auth, requests_timeout=30, requests_session=requests.Session())
        self.client.prefix = config.api_url
        self.config, self.retrying = config, retrying

    def _call(self, what: str, call: Callable[[], dict]) -> dict:
        try:
            return self.retrying(what, call) or {}
        except SpotifyOauthError as error:
            raise GanError(f"Spotify refused the credentials in SPOTIPY_CLIENT_ID/SPOTIPY_CLIENT_SECRET "
                           f"({error.error}: {error.error_description})") from None
        except spotipy.SpotifyException as error:
            detail = str(error.msg).split("\n")[-1].strip()
            if error.http_status == 401:
                raise GanError(f"{what}: Spotify rejected the access token (HTTP 401: {detail}); check "
                               "SPOTIPY_CLIENT_ID/SPOTIPY_CLIENT_SECRET") from None
            raise GanError(f"{what}: Spotify answered HTTP {error.http_status} ({detail})") from None

    def artists(self, genre: str) -> Iterator[dict]:
        """Artists filed under `genre`, most popular first, as far as search paging goes."""
        offset, limit = 0, self.config.page_size
        while offset < SEARCH_OFFSET_LIMIT:
            page = self._call(f"search for genre {genre!r}", lambda offset=offset: self.client.search(
                f'genre:"{genre}"', limit=limit, offset=offset, type="artist", market=self.config.market))
            artists = page.get("artists") or {}
            items = [a for a in artists.get("items") or [] if a and a.get("id")]
            yield from items
            if not artists.get("next") or not items:
                return
            offset += limit

    def albums(self, artist: dict) -> Iterator[Album]:
        offset = 0
        while True:
            page = self._call(f"albums of artist {artist['id']}", lambda offset=offset: self.client.artist_albums(
                artist["id"], include_groups="album", limit=self.config.page_size, offset=offset,
                country=self.config.market))
            items = [a for a in page.get("items") or [] if a and a.get("id")]
            for item in items:
                url = choose_image(item.get("images") or [], self.config.image_size)
                if url:
                    artists = ", ".join(a.get("name", "") for a in item.get("artists") or []) or artist.get("name", "")
                    yield Album(item["id"], item.get("name", ""), artists, url,
                                [g for g in artist.get("genres") or [] if isinstance(g, str)])
            if not page.get("next") or not items:
                return
            offset += self.config.page_size


def choose_image(images: list[dict], size: int) -> str | None:
    """The URL of the image of the asked width, else the smallest larger one, else the largest."""
    sized = [(int(i.get("width") or 0), i["url"]) for i in images if i.get("url")]
    if not sized:
        return None
    exact = [url for width, url in sized if width == size]
    larger = sorted((width, url) for width, url in sized if width > size)
    return exact[0] if exact else larger[0][1] if larger else max(sized)[1]


class ImageDownloader:
    """GETs of cover images, retried by `retrying` alone (the session's adapter retries nothing)."""

    def __init__(self, retrying: Retrying):
        self.session = requests.Session()
        self.retrying = retrying

    def fetch(self, url: str) -> bytes:
        def attempt() -> bytes:
            response = self.session.get(url, timeout=30)
            response.raise_for_status()
            data = response.content  # raises ChunkedEncodingError when the connection drops mid-body
            check_image(data)
            return data

        try:
            return self.retrying(f"download {url}", attempt)
        except requests.RequestException as error:  # not worth retrying (404, a bad URL): a failed download
            raise GanError(f"download {url}: {error}") from None


class CorruptImage(requests.exceptions.ChunkedEncodingError):
    """Bytes that do not decode as an image; retried like a body cut short."""


def check_image(data: bytes) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # verify() misses truncated JPEG data; a full decode does not
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise CorruptImage(f"not a readable image ({error})") from None


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


class SpotifyDatasetBuilder:
    def __init__(self, config: SpotifyBuildConfig, out: Path, catalog: SpotifyCatalog, downloader: ImageDownloader,
                 progress: bool = False):
        config.validate()
        self.config, self.out, self.catalog, self.downloader, self.progress = config, out, catalog, downloader, progress
        self.state = out / STATE_DIR
        self.claims: dict[str, list[str]] = {}  # album id -> the requested genres that found it, in order

    # --- stage 1: candidates -----------------------------------------------------------------

    def candidates(self, genre: str) -> list[Album]:
        """Candidate albums of one genre, from the cache when an earlier run collected enough."""
        cache = self.state / f"candidates-{genre}.json"
        wanted = self.config.candidates_per_genre
        try:
            cached = json.loads(cache.read_text(encoding="utf-8"))
            # "exhausted": Spotify had no more albums for this genre when it was collected.
            if cached["exhausted"] or len(cached["albums"]) >= wanted:
                return [Album(**a) for a in cached["albums"]][:wanted]
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError):
            log.warning("%s: unreadable, collecting %s again", cache, genre)
        albums: dict[str, Album] = {}
        seen_artists = 0
        for artist in self.catalog.artists(genre):
            seen_artists += 1
            for album in self.catalog.albums(artist):
                albums.setdefault(album.album_id, album)
                if len(albums) >= wanted:
                    break
            if len(albums) >= wanted:
                break
        if not albums:
            raise GanError(f"genre {genre!r}: Spotify found " + ("no artists with this genre" if not seen_artists
                           else f"{seen_artists} artist(s) but no albums with covers") +
                           "; check the spelling (Spotify's genres are lower-case, e.g. 'hip hop', 'death metal')")
        payload = {"genre": genre, "exhausted": len(albums) < wanted, "albums": [asdict(a) for a in albums.values()]}
        write_json(cache, payload)
        return list(albums.values())

    # --- stage 2: one folder per album, and its tags ----------------------------------------

    def assign(self, per_genre: dict[str, list[Album]]) -> tuple[dict[str, list[Album]], list[dict[str, str]]]:
        claims: dict[str, list[str]] = {}
        for genre in self.config.genres:
            for album in per_genre[genre]:
                claims.setdefault(album.album_id, []).append(genre)
        self.claims = claims
        shared = {album_id: genres for album_id, genres in claims.items() if len(genres) > 1}
        overlaps, assigned = [], {}
        for genre in self.config.genres:
            keep = []
            for album in per_genre[genre]:
                owners = shared.get(album.album_id)
                if owners is None or (self.config.overlap != "drop" and owners[0] == genre):
                    keep.append(album)
                if owners is not None and owners[0] == genre:
                    overlaps.append({"album_id": album.album_id, "name": album.name, "artist": album.artist,
                                     "genres": TAG_SEPARATOR.join(owners),
                                     "kept_in": genre if self.config.overlap != "drop" else ""})
            assigned[genre] = keep
        return assigned, overlaps

    def tags(self, album: Album, genre: str) -> list[str]:
        """An album's tags: the genre of its folder, then (with --overlap tags) every other requested
        genre that found it or that its artist carries."""
        if self.config.overlap != "tags":
            return [genre]
        found_by = self.claims.get(album.album_id, [])
        return [genre] + [g for g in self.config.genres
                          if g != genre and (g in found_by or g in album.artist_genres)]

    # --- stage 3: downloads ------------------------------------------------------------------

    def build(self) -> BuildReport:
        self.out.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(exist_ok=True)
        write_json(self.out / "spotify.json", asdict(self.config))
        per_genre = {genre: self.candidates(genre) for genre in self.config.genres}
        assigned, overlaps = self.assign(per_genre)
        report = BuildReport(overlaps=len(overlaps))
        write_csv(self.out / "overlaps.csv", ["album_id", "name", "artist", "genres", "kept_in"], overlaps)
        manifest: list[dict[str, Any]] = []
        duplicates: list[dict[str, str]] = []
        failed: list[dict[str, str]] = []
        seen_hashes: dict[str, str] = {}
        # Albums an earlier run found to repeat another's image need no second download.
        known_duplicates = {row["album_id"]: row["sha256"] for row in read_csv(self.out / "duplicates.csv")}
        total = sum(min(len(a), self.config.per_genre) for a in assigned.values())
        with tqdm(total=total, unit="cover", desc="covers", disable=not self.progress, dynamic_ncols=True) as bar:
            for genre in self.config.genres:
                folder = self.out / genre
                folder.mkdir(exist_ok=True)
                kept = 0
                for album in assigned[genre]:
                    if kept == self.config.per_genre:
                        break
                    path = folder / f"{album.album_id}.jpg"
                    if known_duplicates.get(album.album_id) in seen_hashes:
                        digest = known_duplicates[album.album_id]
                        duplicates.append({"album_id": album.album_id, "genre": genre,
                                           "duplicate_of": seen_hashes[digest], "sha256": digest})
                        continue
                    data = self._existing(path)
                    if data is None:
                        try:
                            data = self.downloader.fetch(album.image_url)
                        except GanError as error:
                            failed.append({"album_id": album.album_id, "genre": genre, "image_url": album.image_url,
                                           "error": str(error)})
                            log.warning("%s", error)
                            continue
                        digest = hashlib.sha256(data).hexdigest()
                        if digest not in seen_hashes:
                            write_bytes_atomically(path, data)
                            report.downloaded += 1
                    else:
                        digest = hashlib.sha256(data).hexdigest()
                        report.reused += 1
                    if digest in seen_hashes:
                        duplicates.append({"album_id": album.album_id, "genre": genre,
                                           "duplicate_of": seen_hashes[digest], "sha256": digest})
                        path.unlink(missing_ok=True)
                        continue
                    seen_hashes[digest] = album.album_id
                    manifest.append({"path": f"{genre}/{path.name}", "genre": genre,
                                     "genres": TAG_SEPARATOR.join(self.tags(album, genre)), "album_id": album.album_id,
                                     "name": album.name, "artist": album.artist,
                                     "artist_genres": TAG_SEPARATOR.join(album.artist_genres),
                                     "image_url": album.image_url, "sha256": digest})
                    kept += 1
                    bar.update(1)
                    if len(manifest) % 200 == 0:  # progress survives an interrupted run
                        write_csv(self.out / "manifest.csv", MANIFEST_COLUMNS, manifest)
                report.kept[genre] = kept
                if kept < self.config.per_genre:
                    report.short[genre] = kept
        write_csv(self.out / "manifest.csv", MANIFEST_COLUMNS, manifest)
        write_csv(self.out / "duplicates.csv", ["album_id", "genre", "duplicate_of", "sha256"], duplicates)
        write_csv(self.out / "failed.csv", ["album_id", "genre", "image_url", "error"], failed)
        report.duplicates, report.failed = len(duplicates), len(failed)
        return report

    @staticmethod
    def _existing(path: Path) -> bytes | None:
        """The bytes of a cover an earlier run downloaded (they were renamed into place only once
        complete, but a file damaged since is fetched again)."""
        if not path.is_file():
            return None
        data = path.read_bytes()
        try:
            check_image(data)
        except CorruptImage:
            return None
        return data


def build_spotify_dataset(config: SpotifyBuildConfig, out: str | Path, client_id: str, client_secret: str,
                          progress: bool = False, backoff: float = 1.0) -> BuildReport:
    """Collect covers for `config.genres` into `out` (resumable; see the module docstring)."""
    retrying = Retrying(backoff=backoff)
    catalog = SpotifyCatalog(config, client_id, client_secret, retrying)
    return SpotifyDatasetBuilder(config, Path(out), catalog, ImageDownloader(retrying), progress).build()

