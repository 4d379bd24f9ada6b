import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim

from gan.data.demo import demo_covers
from gan.errors import GanError
from gan.eval.msssim import PairwiseMsssim, all_pairs, ms_ssim_pairs, random_pairs, settings_for


def _reference(images, i, j, win_size):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    return ms_ssim(x[i], x[j], data_range=255, size_average=False, win_size=win_size)


@pytest.mark.parametrize("kind,size", [("random", 64), ("demo", 64), ("demo", 128), ("random", 80)])
def test_equals_pytorch_msssim(kind, size):
    if kind == "random":
        images = np.random.default_rng(0).integers(0, 256, (12, size, size, 3), dtype=np.uint8)
    else:
        images, _ = demo_covers(per_genre=2, size=size)
    i, j = all_pairs(len(images))
    settings = settings_for(size)
    ours = ms_ssim_pairs(images, i, j, settings, batch_size=7)  # several batches
    assert (ours - _reference(images, i, j, settings.win_size)).abs().max() <= 1e-5


def test_equals_pytorch_msssim_on_generated_images():
    from gan.config import ModelConfig
    from gan.models import build_generator

    torch.manual_seed(0)
    G = build_generator(ModelConfig(resolution=64, width=8, latent_dim=16, genres=["a", "b"])).eval()
    with torch.no_grad():
        images = ((G(torch.randn(10, 16), torch.tensor([0, 1] * 5)) + 1) * 127.5).round().byte()
    images = images.permute(0, 2, 3, 1).numpy()
    i, j = random_pairs(10, 30, seed=1)
    assert (ms_ssim_pairs(images, i, j) - _reference(images, i, j, 3)).abs().max() <= 1e-5


def test_small_images_are_upscaled_and_recorded():
    images, _ = demo_covers(per_genre=1, size=32)
    settings = settings_for(32)
    assert settings.upscale_to == 64 and settings.to_dict()["win_size"] == 3
    i, j = all_pairs(len(images))
    up = torch.nn.functional.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=(64, 64),
                                         mode="bilinear", align_corners=False)
    reference = ms_ssim(up[i], up[j], data_range=255, size_average=False, win_size=3)
    assert (ms_ssim_pairs(images, i, j) - reference).abs().max() <= 1e-5


def test_identical_images_score_one_and_order_does_not_matter():
    images, _ = demo_covers(per_genre=1, size=64)
    engine = PairwiseMsssim(np.concatenate([images, images[:1]]))
    last = len(images)
    assert engine([0], [last]).item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(engine([1, 2], [3, 4]), engine([3, 4], [1, 2]))


def test_pairs_are_distinct_unique_and_cover_all_when_asked():
    i, j = random_pairs(50, 300, seed=3)
    assert len(i) == 300 and (i < j).all()
    assert len(set(zip(i.tolist(), j.tolist()))) == 300
    assert np.array_equal(np.stack(random_pairs(50, 300, seed=3)), np.stack((i, j)))
    ai, aj = random_pairs(5, 1000)
    assert len(ai) == 10 and set(zip(ai.tolist(), aj.tolist())) == {(a, b) for a in range(5) for b in range(a + 1, 5)}


def test_bad_inputs():
    with pytest.raises(GanError, match="mixed sizes"):
        PairwiseMsssim([np.zeros((64, 64, 3), np.uint8), np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(GanError, match="at least 2 images"):
        random_pairs(1, 10)
    with pytest.raises(GanError, match="too small"):
        PairwiseMsssim(np.zeros((2, 20, 20, 3), np.uint8), settings_for(64))


def test_the_engine_runs_where_it_is_told_and_answers_on_the_cpu():
    """Indices and weights follow the engine's device, never a default one (a CUDA engine failed with
    'index is on cpu'); scores always come back on the CPU."""
    images, _ = demo_covers(("jazz", "metal"), per_genre=3, seed=5)
    i, j = all_pairs(6)
    engine = PairwiseMsssim(torch.as_tensor(images), device="cpu")
    assert engine.device == torch.device("cpu") and engine.weights.device == engine.device
    scores = engine(torch.as_tensor(i), torch.as_tensor(j))
    assert scores.device == torch.device("cpu")
    torch.testing.assert_close(scores, ms_ssim_pairs(images, i, j), rtol=0, atol=1e-6)
