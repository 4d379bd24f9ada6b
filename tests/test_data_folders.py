import logging

import numpy as np
import pytest
from PIL import Image

from gan.data.folders import load_csv_manifest, load_dataset, load_labelled_folder, load_unlabelled_folder
from gan.errors import GanError


def _image(path, size=(40, 30), colour=(200, 10, 10), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)
    return path


@pytest.fixture
def mixed_folder(tmp_path):
    root = tmp_path / "covers"
    _image(root / "rock" / "a.jpg", (120, 80))
    _image(root / "rock" / "nested" / "deeper" / "b.png", (33, 47))
    _image(root / "jazz" / "c.webp", (64, 64), (10, 10, 200))
    _image(root / "jazz" / "d.PNG", (500, 20), (10, 10, 200))
    (root / "jazz" / "notes.txt").write_text("not an image")
    return root


def test_labelled_folder_any_size_nested_formats(mixed_folder):
    data = load_labelled_folder(mixed_folder, 32)
    assert data.images.shape == (4, 3, 32, 32) and data.images.dtype == np.uint8
    assert data.genres == ["jazz", "rock"]
    assert sorted(data.labels.tolist()) == [0, 0, 1, 1]
    assert data.description.images_per_genre == {"jazz": 2, "rock": 2}
    jazz = data.images[data.labels == 0]
    assert jazz[:, 2].mean() > 150 and jazz[:, 0].mean() < 50  # blue stays blue


def test_centre_crop_keeps_the_middle(tmp_path):
    image = Image.new("RGB", (90, 30), (255, 0, 0))
    image.paste((0, 255, 0), (30, 0, 60, 30))  # green middle third
    image.save(tmp_path / "wide.png")
    data = load_unlabelled_folder(tmp_path, 32)
    assert data.images[0, 1].mean() > 240 and data.images[0, 0].mean() < 15


def test_corrupt_and_truncated_files_are_skipped_with_a_warning(mixed_folder, caplog):
    (mixed_folder / "rock" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    good = _image(mixed_folder / "rock" / "full.png", (64, 64))
    truncated = mixed_folder / "rock" / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with caplog.at_level(logging.WARNING):
        data = load_labelled_folder(mixed_folder, 32)
    assert len(data) == 5
    assert data.description.num_skipped == 2
    assert "skipped 2 unreadable image(s)" in caplog.text
    assert "broken.jpg" in caplog.text and "truncated.png" in caplog.text


def test_clear_errors_for_bad_folders(tmp_path):
    with pytest.raises(GanError, match="not found"):
        load_labelled_folder(tmp_path / "missing", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match="no genre sub-folders"):
        load_labelled_folder(tmp_path / "empty", 32)
    with pytest.raises(GanError, match="no images found"):
        load_unlabelled_folder(tmp_path / "empty", 32)
    _image(tmp_path / "flat" / "x.png")
    with pytest.raises(GanError, match="no genre sub-folders.*--pretrain-data"):
        load_labelled_folder(tmp_path / "flat", 32)
    (tmp_path / "bad" / "rock").mkdir(parents=True)
    (tmp_path / "bad" / "rock" / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(GanError, match="none of the 1 image file"):
        load_labelled_folder(tmp_path / "bad", 32)


def test_csv_manifest(mixed_folder, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"path,genre\n{mixed_folder / 'rock' / 'a.jpg'},rock\ncovers/jazz/c.webp,jazz\n")
    data = load_csv_manifest(manifest, 32)
    assert data.genres == ["jazz", "rock"] and len(data) == 2
    unlabelled = load_dataset(manifest, 32, labelled=False)
    assert unlabelled.labels is None and len(unlabelled) == 2
    (tmp_path / "bad.csv").write_text("file,label\na.jpg,rock\n")
    with pytest.raises(GanError, match="bad.csv: a manifest needs a header"):
        load_csv_manifest(tmp_path / "bad.csv", 32)
    (tmp_path / "gap.csv").write_text("path,genre\na.jpg,\n")
    with pytest.raises(GanError, match="gap.csv, line 2"):
        load_csv_manifest(tmp_path / "gap.csv", 32)


def test_csv_manifest_saved_with_a_byte_order_mark(mixed_folder, tmp_path):
    manifest = tmp_path / "excel.csv"
    manifest.write_bytes(b"\xef\xbb\xbf" + f"path,genre\n{mixed_folder / 'rock' / 'a.jpg'},rock\n".encode())
    assert load_csv_manifest(manifest, 32).genres == ["rock"]


@pytest.mark.parametrize("genre", ["../../x", "/tmp/x", "..", ".hidden", "a\\b"])
def test_csv_genres_that_cannot_be_folder_names_are_refused(mixed_folder, tmp_path, genre):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f'path,genre\n{mixed_folder / "rock" / "a.jpg"},rock\n'
                        f'{mixed_folder / "jazz" / "c.webp"},"{genre}"\n')
    with pytest.raises(GanError, match=f"^{manifest}: genre .* cannot be a folder name"):
        load_dataset(manifest, 32, labelled=True)


def test_genre_folders_differing_only_in_case_are_refused(mixed_folder):
    _image(mixed_folder / "Rock" / "x.png")
    with pytest.raises(GanError, match=f"^{mixed_folder}: genres 'Rock' and 'rock' differ only in case"):
        load_labelled_folder(mixed_folder, 32)
