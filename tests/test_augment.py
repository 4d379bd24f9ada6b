import pytest
import torch
from conftest import tiny_train

from gan.errors import GanError
from gan.train.augment import DiffAugment, cut_out, translate


def test_translation_shifts_whole_pixels_and_fills_with_zeros():
    images = torch.arange(1, 2 * 5 * 5 + 1, dtype=torch.float).reshape(2, 1, 5, 5)
    shifted = translate(images, torch.tensor([1, 0]), torch.tensor([0, -2]), reach=2)
    assert torch.equal(shifted[0, 0, 0], torch.zeros(5)) and torch.equal(shifted[0, 0, 1:], images[0, 0, :4])
    assert torch.equal(shifted[1, 0, :, :3], images[1, 0, :, 2:])
    assert torch.equal(shifted[1, 0, :, 3:], torch.zeros(5, 2))


def test_cutout_zeroes_a_square_that_may_overhang():
    images = torch.ones(2, 3, 6, 6)
    cut = cut_out(images, torch.tensor([3, 0]), torch.tensor([3, 0]), size=2)
    assert torch.equal(cut[0, :, 2:4, 2:4], torch.zeros(3, 2, 2)) and cut[0].sum() == 3 * (36 - 4)
    assert cut[1, :, 0, 0].sum() == 0 and cut[1].sum() == 3 * 35  # only the corner is inside


def test_augmentation_is_differentiable_and_off_means_untouched():
    images = torch.randn(4, 3, 32, 32, requires_grad=True)
    augment = DiffAugment(("translation", "cutout"), torch.Generator().manual_seed(0), 4, slice(0, 4))
    out = augment(images)
    assert out.shape == images.shape and not torch.equal(out, images)
    out.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    rng = torch.Generator().manual_seed(0)
    state = rng.get_state()
    assert DiffAugment((), rng, 4, slice(0, 4))(images) is images
    assert torch.equal(rng.get_state(), state)  # no draws: runs without augmentation stay bit-identical


def test_ranks_augment_their_slice_exactly_as_one_process_would():
    images = torch.randn(8, 3, 32, 32)
    policy = ("translation", "cutout")
    whole = DiffAugment(policy, torch.Generator().manual_seed(5), 8, slice(0, 8))(images)
    halves = [DiffAugment(policy, torch.Generator().manual_seed(5), 8, local)(images[local])
              for local in (slice(0, 4), slice(4, 8))]
    assert torch.equal(torch.cat(halves), whole)


def test_unknown_augmentation_is_a_one_line_error():
    assert tiny_train(augment="none").augment_policy == ()
    assert tiny_train(augment=" translation , cutout").augment_policy == ("translation", "cutout")
    with pytest.raises(GanError, match=r"--augment: unknown augmentation\(s\) \['flip'\]"):
        tiny_train(augment="translation,flip").validate()
