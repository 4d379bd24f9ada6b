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
    red, green, blue = hue_histogram(_solid((255, 0, 0))), hue_histogram(_solid((0, 255, 0))), hue_histogram(_solid((0, 0, 255)))
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
