"""The realism measure: Frechet distance and KID on known cases, the judge, and its cache."""

import numpy as np
import pytest
import torch
from scipy import linalg

from gan.data.demo import demo_covers
from gan.errors import GanError
from gan.eval.judge import JudgeConfig, cached_judge, load_judge, save_judge, train_judge
from gan.eval.realism import OVERALL, feature_spread, frechet_distance, kernel_inception_distance, realism_of_images

GENRES = ["rock", "pop", "classical"]


def _gaussian(n, d, seed, shift=0.0, scale=1.0):
    """n draws of a correlated Gaussian in d dimensions (one mixing matrix per d), moved by `shift`."""
    mixing = np.random.default_rng(d).normal(0, 1, (d, d)) / np.sqrt(d)
    return np.random.default_rng(seed).normal(0, scale, (n, d)) @ mixing + shift


def test_frechet_of_identical_sets_is_zero():
    a = _gaussian(300, 16, 0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_grows_with_a_shift():
    a, b = _gaussian(400, 8, 0), _gaussian(400, 8, 1)
    near, far = frechet_distance(a, b + 0.2), frechet_distance(a, b + 1.0)
    assert frechet_distance(a, b) < near < far
    # A pure shift of the mean by m adds |m|^2 (here 8 dimensions of 1.0) to the distance.
    assert frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)


def test_frechet_matches_the_textbook_formula():
    a, b = _gaussian(200, 6, 2), _gaussian(150, 6, 3, shift=0.3, scale=1.5)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = (np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a) + np.trace(s_b)
                - 2 * np.trace(linalg.sqrtm(s_a @ s_b).real))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_handles_more_dimensions_than_covers():
    """Rank-deficient covariances (64 covers in 128 dimensions) must not give NaN or a negative value."""
    a, b = _gaussian(64, 128, 4), _gaussian(64, 128, 5)
    assert 0 < frechet_distance(a, b) < np.inf


def test_kid_is_unbiased_between_draws_of_one_distribution():
    same = [kernel_inception_distance(_gaussian(60, 8, 2 * k), _gaussian(60, 8, 2 * k + 1)) for k in range(40)]
    shifted = kernel_inception_distance(_gaussian(60, 8, 0), _gaussian(60, 8, 1, shift=1.0))
    # Unbiased: the mean over draws is 0 within its standard error (a biased estimate, with the
    # kernel's diagonal kept, would sit clearly above 0), and far below a real difference.
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    assert min(same) < 0 < shifted
    assert shifted > 5 * np.std(same)


def test_spread_tells_a_set_that_varies_less_from_one_that_sits_elsewhere():
    a = _gaussian(400, 8, 0)
    assert feature_spread(a, a) == pytest.approx(1.0)
    assert feature_spread(a + 3.0, a) == pytest.approx(1.0)  # moved, not shrunk: the distance sees it, not the spread
    assert feature_spread(0.5 * a, a) == pytest.approx(0.25)  # half the scale, a quarter of the variance
    collapsed = np.repeat(a[:1], 50, axis=0)  # one point fifty times: mode collapse
    assert feature_spread(collapsed, a) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(GanError, match="at least 2"):
        feature_spread(a[:1], a)


def test_too_few_covers_is_a_user_error():
    with pytest.raises(GanError, match="at least 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))


@pytest.fixture(scope="module")
def judge_and_covers():
    images, labels = demo_covers(GENRES, per_genre=40, size=32, seed=3)
    torch.manual_seed(0)
    judge = train_judge(images, labels, JudgeConfig(resolution=32, genres=GENRES, steps=60, batch_size=32))
    draws = []
    for seed in (1, 2):
        real, real_labels = demo_covers(GENRES, per_genre=30, size=32, seed=seed)
        draws.append({g: real[real_labels == i] for i, g in enumerate(GENRES)})
    return judge, draws


def test_the_judge_tells_demo_genres_apart(judge_and_covers):
    judge, (reference, _) = judge_and_covers
    predicted = np.concatenate([judge.classify(reference[g]) for g in GENRES])
    truth = np.repeat(np.arange(len(GENRES)), 30)
    assert (predicted == truth).mean() > 0.8  # three genres: chance is 1/3
    assert judge.features(reference["rock"]).shape == (30, judge.config.feature_dim)


def test_real_covers_sit_at_the_floor_and_damaged_ones_above_it(judge_and_covers):
    judge, (reference, floor) = judge_and_covers
    another_draw = {g: v for g, v in zip(GENRES, [demo_covers([g], 30, 32, seed=9)[0] for g in GENRES])}
    real = realism_of_images(judge, another_draw, reference, floor)
    wrong_genre = realism_of_images(judge, {g: reference[GENRES[(i + 1) % 3]] for i, g in enumerate(GENRES)},
                                    reference, floor)
    assert real.overall.ratio < 2.5
    # Pooled over genres the swapped covers are the reference itself (distance 0): only the
    # per-genre comparison sees covers drawn for the wrong genre.
    assert wrong_genre.overall.frechet == pytest.approx(0.0, abs=1e-6)
    assert all(w.ratio > 3 * r.ratio for w, r in zip(wrong_genre.genres, real.genres))
    assert [s.genre for s in real.scores] == [*GENRES, OVERALL]
    assert all(s.judge_accuracy == 0.0 for s in wrong_genre.genres)  # each filed under the genre it came from
    assert all(0.3 < s.spread < 3 for s in real.scores)  # another draw of real covers varies as much
    assert wrong_genre.overall.spread == pytest.approx(1.0)


def test_the_judge_computes_where_it_is_put_in_full_float32(judge_and_covers):
    """Covers go to the judge's device; TF32 is off while it computes there (so GPU features match
    the CPU's) and restored after."""
    judge, (reference, _) = judge_and_covers
    assert judge.device == torch.device("cpu") and judge.info["trained_on_device"] == "cpu"
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    seen = []
    hook = judge.net.body.register_forward_pre_hook(lambda module, args: seen.append(
        (args[0].device, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)))
    try:
        features = judge.to("cpu").features(reference["pop"])
    finally:
        hook.remove()
    assert seen and all(s == (judge.device, False, False) for s in seen)
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == flags
    assert isinstance(features, np.ndarray) and features.dtype == np.float64


def test_the_judge_is_cached_and_reloads_exactly(judge_and_covers, tmp_path, monkeypatch):
    judge, (reference, _) = judge_and_covers
    save_judge(judge, tmp_path / "saved")
    again = load_judge(tmp_path / "saved")
    np.testing.assert_array_equal(again.features(reference["pop"]), judge.features(reference["pop"]))
    assert again.info["held_out_accuracy"] == judge.info["held_out_accuracy"]

    calls = []
    monkeypatch.setattr("gan.eval.judge.train_judge", lambda *a: calls.append(a) or judge)
    images, labels = demo_covers(GENRES, per_genre=8, size=32, seed=5)
    config = JudgeConfig(resolution=32, genres=GENRES, steps=5)
    cached_judge(images, labels, config, cache=tmp_path)
    cached_judge(images, labels, config, cache=tmp_path)
    assert len(calls) == 1  # trained once, then read from the cache
    cached_judge(images[::-1].copy(), labels[::-1].copy(), config, cache=tmp_path)
    assert len(calls) == 2  # other covers: another judge


def test_a_damaged_judge_file_is_one_line(tmp_path, judge_and_covers):
    judge, _ = judge_and_covers
    save_judge(judge, tmp_path / "j")
    (tmp_path / "j" / "config.json").write_text('{"format": "covergan-judge", "config": {"resolution": "64"}}')
    with pytest.raises(GanError, match="config.json"):
        load_judge(tmp_path / "j")


def test_demo_realism_draws_real_covers_as_training_loads_them(monkeypatch):
    """Covers drawn at the training size and resized to the model's resolution, as the app's pages
    draw theirs: the reference for training seed 0 is the pages' held-out draw."""
    from gan.data.demo import held_out_covers
    from gan.eval.realism import demo_judge_and_real_covers

    seen = {}
    monkeypatch.setattr("gan.eval.judge.cached_judge", lambda images, labels, config, device:
                        seen.update(shape=images.shape, device=device, seed=config.seed, first=images[0]) or "judge")
    genres = ["jazz", "rock"]
    judge, reference, floor = demo_judge_and_real_covers(genres, resolution=32, n=4, training_seed=0, size=64)
    first = seen.pop("first")
    assert judge == "judge" and seen == {"shape": (2 * 500, 32, 32, 3), "device": "cpu", "seed": 0}
    # A second opinion: the same covers, a judge trained with a seed of its own.
    demo_judge_and_real_covers(genres, resolution=32, n=4, training_seed=0, size=64, judge_seed=2)
    assert seen["seed"] == 2 and np.array_equal(seen["first"], first)
    pages = held_out_covers(genres, 4, size=64, training_seed=0, resolution=32)
    for genre in genres:
        np.testing.assert_array_equal(reference[genre], pages[genre])
        assert floor[genre].shape == (4, 32, 32, 3) and not np.array_equal(floor[genre], reference[genre])
