"""A small fake of the Spotify Web API on 127.0.0.1, for the dataset builder's tests.

It serves the token endpoint (client credentials, 401 invalid_client for wrong ones), artist
search with a genre filter, artists' albums and cover images, with the same JSON shapes and
paging (`next` links) as Spotify. Faults are scripted per path prefix: a 429 with Retry-After, a
503, a connection dropped half-way through a body, an image that is not an image.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from PIL import Image

CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"


@dataclass
class Catalog:
    """Artists by genre; albums by artist; images by album (an album's cover id may repeat)."""

    artists: dict[str, list[str]] = field(default_factory=dict)  # genre -> artist ids
    albums: dict[str, list[str]] = field(default_factory=dict)  # artist id -> album ids
    cover_of: dict[str, str] = field(default_factory=dict)  # album id -> cover id (same id, same bytes)
    names: dict[str, str] = field(default_factory=dict)  # artist or album id -> display name
    # Artist id -> its genres on Spotify (default: the one genre it was searched under).
    artist_genres: dict[str, list[str]] = field(default_factory=dict)


def default_catalog() -> Catalog:
    """Three genres. rock1's album `shared` also appears first under metal0; rock0's first
    albums `twinA` and `twinB` share one cover image; jazz has more albums than needed."""
    catalog = Catalog()
    # Ids are base62, like Spotify's (spotipy checks them).
    for genre, n_artists, n_albums in (("rock", 3, 3), ("metal", 2, 3), ("jazz", 4, 4)):
        catalog.artists[genre] = [f"{genre}{i}" for i in range(n_artists)]
        for i, artist in enumerate(catalog.artists[genre]):
            catalog.names[artist] = f"{genre.title()} {i}"
            catalog.albums[artist] = [f"{artist}album{j}" for j in range(n_albums)]
    catalog.albums["rock1"].append("shared")
    catalog.albums["metal0"].insert(0, "shared")
    catalog.albums["rock0"][:0] = ["twinA", "twinB"]
    for albums in catalog.albums.values():
        for album in albums:
            catalog.cover_of[album] = album
            catalog.names.setdefault(album, album.title())
    catalog.cover_of["twinB"] = "twinA"
    return catalog


def cover_bytes(cover_id: str, size: int) -> bytes:
    """A deterministic JPEG per cover id."""
    colour = tuple(hashlib.sha256(cover_id.encode()).digest()[:3])
    image = Image.new("RGB", (size, size), colour)
    image.paste(tuple(255 - c for c in colour), (size // 4, size // 4, size // 2, size // 2))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


class FakeSpotify:
    def __init__(self, catalog: Catalog | None = None):
        self.catalog = catalog or default_catalog()
        self.faults: dict[str, list[str]] = {}  # path prefix -> faults still to inject, in order
        self.corrupt_covers: set[str] = set()
        self.requests: Counter[str] = Counter()
        self.revoked = False  # answer 401 to every API call, as for a revoked token
        self.authorizations: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeSpotify:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def inject(self, prefix: str, *faults: str) -> None:
        """Faults for the next requests under `prefix`: '429' (Retry-After 1), '503', 'drop' (half a
        body, then close)."""
        self.faults.setdefault(prefix, []).extend(faults)

    def _next_fault(self, path: str) -> str | None:
        with self.lock:
            for prefix, faults in self.faults.items():
                if path.startswith(prefix) and faults:
                    return faults.pop(0)
        return None

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json",
                      headers: dict[str, str] | None = None, drop: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if drop:
                    self.send_header("Connection", "close")
                self.end_headers()
                if drop:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _json(self, status: int, payload: dict, **kwargs) -> None:
                self._send(status, json.dumps(payload).encode(), **kwargs)

            def _fault(self) -> bool:
                fault = fake._next_fault(urlparse(self.path).path)
                if fault == "429":
                    self._json(429, {"error": {"status": 429, "message": "API rate limit exceeded"}},
                               headers={"Retry-After": "1"})
                    return True
                if fault == "drop":
                    self._json(200, {"padding": "x" * 2000}, drop=True)
                    return True
                if fault == "503":
                    self._json(503, {"error": {"status": 503, "message": "Service unavailable"}})
                    return True
                return False

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                fake.requests["token"] += 1
                expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if urlparse(self.path).path != "/api/token" or form.get("grant_type") != ["client_credentials"]:
                    self._json(400, {"error": "unsupported_grant_type"})
                elif self.headers.get("Authorization") != f"Basic {expected}":
                    self._json(401, {"error": "invalid_client", "error_description": "Invalid client secret"})
                else:
                    self._json(200, {"access_token": "token-1", "token_type": "Bearer", "expires_in": 3600})

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with fake.lock:
                    fake.requests[url.path.split("/")[2] if url.path.startswith("/v1/") else "image"] += 1
                if self._fault():
                    return
                if url.path.startswith("/images/"):
                    return self._image(url.path)
                fake.authorizations.append(self.headers.get("Authorization", ""))
                if fake.revoked or self.headers.get("Authorization") != "Bearer token-1":
                    return self._json(401, {"error": {"status": 401, "message": "Invalid access token"}})
                if url.path == "/v1/search":
                    return self._search(query)
                match = re.fullmatch(r"/v1/artists/([^/]+)/albums", url.path)
                if match:
                    return self._albums(match.group(1), query)
                self._json(404, {"error": {"status": 404, "message": "Service not found"}})

            def _page(self, items: list, query: dict, path: str, extra: dict) -> dict:
                limit, offset = int(query.get("limit", 20)), int(query.get("offset", 0))
                if not 1 <= limit <= 50:
                    return {"error": {"status": 400, "message": "Invalid limit"}}
                page = items[offset:offset + limit]
                more = offset + limit < len(items)
                next_url = f"{fake.base}{path}?{urlencode({**extra, 'limit': limit, 'offset': offset + limit})}"
                return {"items": page, "total": len(items), "limit": limit, "offset": offset,
                        "next": next_url if more else None}

            def _search(self, query: dict) -> None:
                match = re.fullmatch(r'genre:"([^"]+)"', query.get("q", ""))
                if query.get("type") != "artist" or not match:
                    return self._json(400, {"error": {"status": 400, "message": "Bad search query"}})
                genre = match.group(1)
                artists = [{"id": a, "name": fake.catalog.names[a], "type": "artist",
                            "genres": fake.catalog.artist_genres.get(a, [genre])}
                           for a in fake.catalog.artists.get(genre, [])]
                page = self._page(artists, query, "/v1/search", {"q": query["q"], "type": "artist"})
                self._json(400 if "error" in page else 200, page if "error" in page else {"artists": page})

            def _albums(self, artist: str, query: dict) -> None:
                if artist not in fake.catalog.albums:
                    return self._json(404, {"error": {"status": 404, "message": "Non existing id"}})
                albums = [{
                    "id": album, "name": fake.catalog.names[album], "album_type": "album",
                    "artists": [{"id": artist, "name": fake.catalog.names[artist]}],
                    "images": [{"url": f"{fake.base}/images/{fake.catalog.cover_of[album]}-{size}.jpg",
                                "width": size, "height": size} for size in (640, 300, 64)],
                } for album in fake.catalog.albums[artist]]
                page = self._page(albums, query, f"/v1/artists/{artist}/albums", {"include_groups": "album"})
                self._json(400 if "error" in page else 200, page)

            def _image(self, path: str) -> None:
                match = re.fullmatch(r"/images/(.+)-(\d+)\.jpg", path)
                if not match:
                    return self._send(404, b"not found", "text/plain")
                cover, size = match.group(1), int(match.group(2))
                if cover in fake.corrupt_covers:
                    return self._send(200, b"<html>not an image</html>", "image/jpeg")
                self._send(200, cover_bytes(cover, size), "image/jpeg")

        return Handler
