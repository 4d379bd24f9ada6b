"""The Spotify dataset builder against a fake Spotify on 127.0.0.1 (see fake_spotify.py)."""

import csv

import pytest
import requests
import spotipy
from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify

from gan.cli import main
from gan.data.folders import load_dataset
from gan.data.spotify import Retrying, SpotifyBuildConfig, build_spotify_dataset, choose_image
from gan.errors import GanError


@pytest.fixture
def fake():
    with FakeSpotify() as server:
        yield server


def _config(fake, **overrides) -> SpotifyBuildConfig:
    values = dict(genres=["rock", "metal", "jazz"], per_genre=4, image_size=300, page_size=2,
                  api_url=fake.base + "/v1/", token_url=fake.base + "/api/token")
    values.update(overrides)
    return SpotifyBuildConfig(**values)


def _build(fake, out, **overrides):
    return build_spotify_dataset(_config(fake, **overrides), out, CLIENT_ID, CLIENT_SECRET, backoff=0.01)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_builds_a_labelled_set_through_rate_limits_drops_and_bad_images(fake, tmp_path):
    fake.inject("/v1/search", "429")  # answered after its Retry-After
    fake.inject("/v1/artists/", "drop")  # connection closed half-way through a JSON body
    fake.inject("/images/", "drop", "drop")  # ... and through an image
    fake.corrupt_covers.add("jazz0album0")  # never an image: given up on, recorded
    report = _build(fake, tmp_path / "out")

    assert report.kept == {"rock": 4, "metal": 4, "jazz": 4} and not report.short
    manifest = _rows(tmp_path / "out" / "manifest.csv")
    assert len(manifest) == 12
    assert {r["genre"] for r in manifest} == {"rock", "metal", "jazz"}
    assert all((tmp_path / "out" / r["path"]).is_file() for r in manifest)
    assert all(r["image_url"].endswith("-300.jpg") for r in manifest)
    ids = [r["album_id"] for r in manifest]
    assert len(set(ids)) == len(ids) and "twinA" in ids and "twinB" not in ids and "shared" not in ids
    assert _rows(tmp_path / "out" / "duplicates.csv")[0]["duplicate_of"] == "twinA"
    assert _rows(tmp_path / "out" / "overlaps.csv") == [
        {"album_id": "shared", "name": "Shared", "artist": "Rock 1", "genres": "rock;metal", "kept_in": "rock"}]
    failed = _rows(tmp_path / "out" / "failed.csv")
    assert [f["album_id"] for f in failed] == ["jazz0album0"]
    assert fake.requests["token"] == 1
    # No half-written file, and the credentials are nowhere on disk.
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.startswith(".")]  # no temporary file left
    assert not [p for p in files if CLIENT_SECRET.encode() in p.read_bytes() or b"token-1" in p.read_bytes()]
    # The manifest is training data as it stands.
    data = load_dataset(tmp_path / "out" / "manifest.csv", 32, labelled=True)
    assert data.genres == ["jazz", "metal", "rock"] and len(data) == 12


def test_second_run_resumes_without_refetching(fake, tmp_path):
    out = tmp_path / "out"
    _build(fake, out)
    manifest = _rows(out / "manifest.csv")
    (out / manifest[0]["path"]).unlink()  # lost
    (out / manifest[1]["path"]).write_bytes((out / manifest[1]["path"]).read_bytes()[:100])  # damaged
    before = dict(fake.requests)
    report = _build(fake, out)
    assert report.downloaded == 2 and report.reused == 10
    assert fake.requests["search"] == before["search"] and fake.requests["artists"] == before["artists"]
    assert fake.requests["image"] == before["image"] + 2
    assert _rows(out / "manifest.csv") == manifest


def test_more_covers_per_genre_on_a_second_run_collects_more(fake, tmp_path):
    out = tmp_path / "out"
    _build(fake, out, genres=["jazz"], per_genre=2)
    report = _build(fake, out, genres=["jazz"], per_genre=6)
    assert report.kept == {"jazz": 6} and report.reused == 2 and report.downloaded == 4


def test_overlap_drop_policy_removes_the_album_everywhere(fake, tmp_path):
    fake.catalog.albums["rock0"].insert(0, "shared")  # now within rock's first covers
    _build(fake, tmp_path / "out", overlap="drop")
    assert "shared" not in {r["album_id"] for r in _rows(tmp_path / "out" / "manifest.csv")}
    assert _rows(tmp_path / "out" / "overlaps.csv")[0]["kept_in"] == ""
    _build(fake, tmp_path / "first", overlap="first")
    shared = [r for r in _rows(tmp_path / "first" / "manifest.csv") if r["album_id"] == "shared"]
    assert [r["genre"] for r in shared] == ["rock"]


def test_albums_carry_every_requested_genre_of_their_artist_and_the_artist_s_whole_list(fake, tmp_path):
    fake.catalog.artist_genres["jazz0"] = ["jazz", "jazz fusion", "rock"]  # "jazz fusion" is not "jazz"
    fake.catalog.albums["rock0"].insert(0, "shared")  # found under rock and metal
    report = _build(fake, tmp_path / "out")
    rows = {r["album_id"]: r for r in _rows(tmp_path / "out" / "manifest.csv")}
    assert report.kept == {"rock": 4, "metal": 4, "jazz": 4}  # each album counts once, for its folder's genre
    assert (rows["shared"]["path"], rows["shared"]["genres"]) == ("rock/shared.jpg", "rock;metal")
    jazz0 = [r for r in rows.values() if r["album_id"].startswith("jazz0")]
    assert jazz0 and all(r["genres"] == "jazz;rock" and r["artist_genres"] == "jazz;jazz fusion;rock" for r in jazz0)
    assert rows["rock0album0"]["genres"] == "rock" and rows["rock0album0"]["artist_genres"] == "rock"
    # The manifest trains as multi-tag data: the main genre is the folder, the tags follow.
    data = load_dataset(tmp_path / "out" / "manifest.csv", 32, labelled=True)
    names = [r["album_id"] for r in _rows(tmp_path / "out" / "manifest.csv")]
    shared = names.index("shared")
    assert data.genres[data.labels[shared]] == "rock"
    assert [g for g, on in zip(data.genres, data.tags[shared]) if on] == ["metal", "rock"]
    assert data.description.tag_pairs == {"jazz+rock": len(jazz0), "metal+rock": 1}
    # --overlap first keeps one genre per album, as before tags existed.
    _build(fake, tmp_path / "first", overlap="first")
    assert {r["genres"] for r in _rows(tmp_path / "first" / "manifest.csv")} == {"rock", "metal", "jazz"}


def test_short_genre_is_reported(fake, tmp_path):
    report = _build(fake, tmp_path / "out", genres=["metal"], per_genre=50)
    assert report.short == {"metal": 7}


def test_genre_without_results_is_a_clear_error_and_keeps_the_rest(fake, tmp_path):
    with pytest.raises(GanError, match="genre 'polka': Spotify found no artists with this genre"):
        _build(fake, tmp_path / "out", genres=["rock", "polka"])
    assert (tmp_path / "out" / ".spotify" / "candidates-rock.json").is_file()


def test_cli_wrong_credentials_is_one_line(fake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "wrong")
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "spotify", "--genres", "rock", "--per-genre", "2", "--out", str(tmp_path / "out"),
              "--api-url", fake.base + "/v1/", "--token-url", fake.base + "/api/token"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.strip() == ("error: Spotify refused the credentials in SPOTIPY_CLIENT_ID/SPOTIPY_CLIENT_SECRET "
                           "(invalid_client: Invalid client secret)")
    assert "wrong" not in err


def test_cli_builds_and_prints_a_summary(fake, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", CLIENT_SECRET)
    main(["data", "spotify", "--genres", "jazz", "--per-genre", "3", "--image-size", "64", "--no-progress",
          "--out", str(tmp_path / "out"), "--api-url", fake.base + "/v1/", "--token-url", fake.base + "/api/token"])
    out = capsys.readouterr().out
    assert out.startswith("3 covers in") and "manifest.csv" in out
    assert (tmp_path / "out" / "spotify.json").is_file()


def test_revoked_token_is_a_clear_error(fake, tmp_path):
    fake.revoked = True
    with pytest.raises(GanError, match=r"rejected the access token \(HTTP 401: Invalid access token\)"):
        _build(fake, tmp_path / "out")


def test_missing_credentials_and_bad_flags(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SPOTIPY_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPOTIPY_CLIENT_SECRET", raising=False)
    for argv, message in (
        ([], "set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET"),
        (["--image-size", "500"], "--image-size must be one of (640, 300, 64)"),
        (["--page-size", "80"], "--page-size must be between 1 and 50"),
        (["--genres", "rock,a\\b"], "--genres: genre 'a\\\\b' cannot be a folder name"),
        (["--genres", "rock,Rock"], "--genres: genres 'rock' and 'Rock' differ only in case"),
    ):
        with pytest.raises(SystemExit):
            main(["data", "spotify", "--genres", "rock", "--out", str(tmp_path / "o"), *argv])
        assert message in capsys.readouterr().err


def test_choose_image_prefers_the_asked_size():
    images = [{"url": "a", "width": 640}, {"url": "b", "width": 300}, {"url": "c", "width": 64}]
    assert choose_image(images, 300) == "b"
    assert choose_image(images[:1] + images[2:], 300) == "a"  # the smallest larger one
    assert choose_image(images[2:], 300) == "c"  # else the largest there is
    assert choose_image([], 300) is None


def test_one_failing_download_is_tried_five_times_in_all(fake, tmp_path):
    """One retry policy: five attempts per request, not urllib3's retries inside ours (30)."""
    fake.inject("/images/", *["503"] * 5)  # the first cover fails five times, then Spotify is well
    report = _build(fake, tmp_path / "out", genres=["jazz"], per_genre=2)
    assert report.failed == 1 and report.kept == {"jazz": 2}
    assert fake.requests["image"] == report.downloaded + 5
    assert "gave up after 5 attempt(s) (HTTP 503)" in _rows(tmp_path / "out" / "failed.csv")[0]["error"]


def test_one_failing_api_call_is_tried_five_times_in_all(fake, tmp_path):
    fake.inject("/v1/search", *["503"] * 100)
    with pytest.raises(GanError, match=r"search for genre 'jazz': gave up after 5 attempt\(s\) \(HTTP 503\)"):
        _build(fake, tmp_path / "out", genres=["jazz"])
    assert fake.requests["search"] == 5


def test_retries_wait_a_bounded_total():
    sleeps = []
    calls = []

    def unreachable():
        calls.append(1)
        raise requests.ConnectionError("refused")

    with pytest.raises(GanError, match=r"gave up after 3 attempt\(s\) \(network error \(ConnectionError\)\)"):
        Retrying(attempts=10, backoff=10, max_wait=60, sleep=sleeps.append)("x", unreachable)
    assert sleeps == [10, 20] and len(calls) == 3  # a third wait (40 s) would pass 60 s in all

    def rate_limited():
        raise spotipy.SpotifyException(429, -1, "slow down", headers={"Retry-After": "3600"})

    sleeps.clear()
    with pytest.raises(GanError, match=r"gave up after 1 attempt\(s\) \(HTTP 429, asked to wait 3600 s\)"):
        Retrying(max_wait=120, sleep=sleeps.append)("search", rate_limited)
    assert sleeps == []
    calls.clear()

    def briefly_limited():
        calls.append(1)
        if len(calls) == 1:
            raise spotipy.SpotifyException(429, -1, "slow down", headers={"Retry-After": "7"})
        return "ok"

    assert Retrying(backoff=100, sleep=sleeps.append)("search", briefly_limited) == "ok" and sleeps == [7.0]


def test_a_missing_image_is_a_failed_download_not_a_traceback(fake):
    from gan.data.spotify import ImageDownloader

    with pytest.raises(GanError, match="download .*/images/nope: 404"):
        ImageDownloader(Retrying(sleep=lambda s: None)).fetch(f"{fake.base}/images/nope")
    assert fake.requests["image"] == 1  # not worth retrying
