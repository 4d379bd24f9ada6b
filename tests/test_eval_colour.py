import numpy as np
import pytest

from gan.eval.colour import colour_group, dominant_palette, hue_histogram, image_statistics


def _solid(rgb, size=8):
    return np.full((1, size, size, 3), rgb, dtype=np.uint8)


def test_statistics_of_hand_made_images():
    red = image_statistics(_solid((255, 0, 0)))
    assert red["brightness"][0] == pytest.approx(0.299, abs=1e-5)
    assert red["contrast"][0] == pytest.approx(0.0, abs=1e-6)
    assert red["saturation"][0] == pytest.approx(1.0)
    # Hasler & Suesstrunk: rg = 255, yb = 127.5, no spread: 0.3 * sqrt(255^2 + 127.5^2)
    assert red["colourfulness"][0] == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-5)

    half = np.zeros((1, 8, 8, 3), np.uint8)
    half[:, :, 4:] = 255  # half black, half white
    stats = image_statistics(half)
    assert stats["brightness"][0] == pytest.approx(0.5, abs=1e-5)
    assert stats["contrast"][0] == pytest.approx(0.5, abs=1e-5)
    assert stats["saturation"][0] == 0 and stats["colourfulness"][0] == pytest.approx(0)

    grey = image_statistics(_solid((128, 128, 128)))
    assert grey["saturation"][0] == 0 and grey["colourfulness"][0] == 0


def test_hue_histogram():
    red, green, blue = (hue_histogram(_solid(rgb)) for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255)))
    assert red[0] == 1 and green[4] == 1 and blue[8] == 1  # 0, 120 and 240 degrees, 30-degree bins
    both = hue_histogram(np.concatenate([_solid((255, 0, 0)), _solid((0, 0, 255))]))
    assert both[0] == pytest.approx(0.5) and both[8] == pytest.approx(0.5)
    assert hue_histogram(_solid((90, 90, 90))).sum() == 0  # grey has no hue


def test_palette_finds_the_colours_and_their_shares():
    image = np.zeros((1, 10, 10, 3), np.uint8)
    image[:, :7] = (200, 30, 30)
    image[:, 7:] = (20, 20, 220)
    palette, shares = dominant_palette(image, k=5)
    assert len(palette) == 2  # only two distinct colours
    assert palette[0].tolist() == [200, 30, 30] and shares[0] == pytest.approx(0.7)
    group = colour_group(image, "rock", "real").summary()
    assert group["palette"] == ["#c81e1e", "#1414dc"] and group["images"] == 1
    assert set(group) >= {"brightness_mean", "contrast_std", "hue_histogram", "palette_shares"}


def _reference_statistics(images):
    """The definitions in the module docstring, in float64 numpy."""
    x = images.astype(np.float64) / 255
    luma = x @ np.array([0.299, 0.587, 0.114])
    high, low = x.max(axis=3), x.min(axis=3)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-12), 0)
    rg = 255 * (x[..., 0] - x[..., 1])
    yb = 255 * (0.5 * (x[..., 0] + x[..., 1]) - x[..., 2])
    colourfulness = (np.hypot(rg.std(axis=(1, 2)), yb.std(axis=(1, 2)))
                     + 0.3 * np.hypot(rg.mean(axis=(1, 2)), yb.mean(axis=(1, 2))))
    return {"brightness": luma.mean(axis=(1, 2)), "contrast": luma.std(axis=(1, 2)),
            "saturation": saturation.mean(axis=(1, 2)), "colourfulness": colourfulness}


def test_statistics_match_a_float64_reference_across_chunks():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 16, 16, 3), dtype=np.uint8)  # more than one chunk of 256
    images[:10] = images[:10, :1, :1]  # flat covers: zero contrast and spread
    got, want = image_statistics(images, device="cpu"), _reference_statistics(images)
    for metric in want:
        scale = max(1.0, float(np.abs(want[metric]).max()))
        np.testing.assert_allclose(got[metric], want[metric], rtol=0, atol=1e-5 * scale, err_msg=metric)
    histogram = hue_histogram(images, device="cpu")
    assert histogram.shape == (12,) and histogram.sum() == pytest.approx(1.0)
    # The same pixels in two chunks (300 covers) or in five (1,200 smaller ones) give the same shares.
    assert np.array_equal(histogram, hue_histogram(images.reshape(1200, 8, 8, 3)))
