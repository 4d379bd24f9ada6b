import hashlib

import numpy as np

from gan.data.demo import DEMO_GENRES, demo_covers, read_demo_marker, unlabelled_covers, write_demo_dataset


def _digest(folder):
    files = sorted(p for p in folder.rglob("*.png"))
    return [(str(p.relative_to(folder)), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_demo_dataset(a, per_genre=3, unlabelled=4, size=32, seed=7, workers=1)
    write_demo_dataset(b, per_genre=3, unlabelled=4, size=32, seed=7, workers=2)
    write_demo_dataset(c, per_genre=3, unlabelled=4, size=32, seed=8, workers=1)
    assert _digest(a) == _digest(b)
    assert len(_digest(a)) == 3 * len(DEMO_GENRES) + 4
    assert {h for _, h in _digest(a)}.isdisjoint({h for _, h in _digest(c)})
    assert sorted(p.name for p in (a / "labelled").iterdir() if p.is_dir()) == sorted(DEMO_GENRES)
    assert read_demo_marker(a / "labelled") == {"seed": 7, "size": 32}  # training records it; see test_app


def test_no_two_images_alike():
    images, _ = demo_covers(per_genre=40, size=32)
    flat = images.reshape(len(images), -1).astype(np.int16)
    distances = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=2)
    np.fill_diagonal(distances, 255)
    assert distances.min() > 1.0


def _colour_features(images):
    x = images.astype(np.float32) / 255
    luma = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    saturation = x.max(axis=3) - x.min(axis=3)
    return np.stack([luma.mean((1, 2)), luma.std((1, 2)), saturation.mean((1, 2)),
                     *[x[..., c].mean((1, 2)) for c in range(3)]], axis=1)


def test_genres_are_distinct_by_simple_colour_statistics():
    """A nearest-centroid classifier on six colour statistics tells most held-out covers apart."""
    train, train_labels = demo_covers(per_genre=60, size=32, seed=0)
    test, test_labels = demo_covers(per_genre=30, size=32, seed=1)
    f_train, f_test = _colour_features(train), _colour_features(test)
    mean, std = f_train.mean(0), f_train.std(0)
    centroids = np.stack([((f_train - mean) / std)[train_labels == g].mean(0) for g in range(len(DEMO_GENRES))])
    distances = ((((f_test - mean) / std)[:, None, :] - centroids[None]) ** 2).sum(2)
    predicted = distances.argmin(axis=1)
    accuracy = (predicted == test_labels).mean()
    assert accuracy > 0.6, accuracy
    # ...and genres overlap, as real covers do: colour alone does not separate them perfectly.
    assert accuracy < 1.0
    brightness = {g: f_train[train_labels == i, 0].mean() for i, g in enumerate(DEMO_GENRES)}
    assert brightness["metal"] < brightness["classical"] and brightness["metal"] < brightness["pop"]


def test_unlabelled_pool_is_a_wider_mix():
    labelled, labels = demo_covers(per_genre=40, size=32)
    pool = unlabelled_covers(320, size=32)
    assert pool.shape == (320, 32, 32, 3)
    spread = lambda imgs: _colour_features(imgs).std(0).mean()  # noqa: E731
    within = np.mean([spread(labelled[labels == g]) for g in range(len(DEMO_GENRES))])
    assert spread(pool) > within
