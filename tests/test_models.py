import pytest
import torch
from conftest import tiny_model

from gan.models import Discriminator, Generator, carry_over_weights


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_for_each_resolution(resolution):
    config = tiny_model(resolution=resolution, genres=["a", "b", "c"])
    G, D = Generator(config), Discriminator(config)
    images = G(torch.randn(2, config.latent_dim), torch.tensor([0, 2]))
    assert images.shape == (2, 3, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    realness, logits = D(images, torch.tensor([0, 2]))
    assert realness.shape == (2,)
    assert logits.shape == (2, 3)


def test_unconditional_model_has_no_genre_parts():
    config = tiny_model()
    G, D = Generator(config), Discriminator(config)
    assert G.genre_embedding is None and D.genre_head is None
    realness, logits = D(G(torch.randn(3, config.latent_dim)))
    assert realness.shape == (3,) and logits is None


def test_genre_changes_the_image_for_the_same_noise():
    config = tiny_model(genres=["a", "b"])
    G = Generator(config).eval()
    noise = torch.randn(1, config.latent_dim)
    assert not torch.equal(G(noise, torch.tensor([0])), G(noise, torch.tensor([1])))


def test_carry_over_keeps_matching_layers_and_reports_fresh_ones():
    pre = Generator(tiny_model())
    fine = Generator(tiny_model(genres=["a", "b"]))
    fresh = carry_over_weights(fine, pre.state_dict())
    assert "genre_embedding.weight" in fresh
    assert any(name.startswith("seed.0.weight[") for name in fresh)
    latent = pre.config.latent_dim
    assert torch.equal(fine.seed[0].weight[:latent], pre.seed[0].weight)
    assert torch.equal(fine.to_rgb[0].weight, pre.to_rgb[0].weight)
    D_pre, D_fine = Discriminator(tiny_model()), Discriminator(tiny_model(genres=["a", "b"]))
    assert carry_over_weights(D_fine, D_pre.state_dict()) == ["genre_head.weight", "genre_head.bias"]
    D_projection = Discriminator(tiny_model(genres=["a", "b"], projection=True))
    fresh_d = carry_over_weights(D_projection, D_pre.state_dict())
    assert fresh_d[:2] == ["genre_head.weight", "genre_head.bias"]
    assert fresh_d[2:] and all(name.startswith("genre_projection.") for name in fresh_d[2:])


def test_projection_makes_realness_depend_on_the_genre():
    images = torch.randn(2, 3, 32, 32)
    D = Discriminator(tiny_model(resolution=32, genres=["a", "b"], projection=True)).eval()  # no power iteration
    as_a, logits_a = D(images, torch.tensor([0, 0]))
    as_b, logits_b = D(images, torch.tensor([1, 1]))
    assert not torch.allclose(as_a, as_b)
    assert torch.equal(logits_a, logits_b)  # the classifier head does not look at the genre asked for
    with pytest.raises(ValueError, match="needs the genre"):
        D(images)
    plain = Discriminator(tiny_model(resolution=32, genres=["a", "b"])).eval()
    assert plain.genre_projection is None
    assert torch.equal(plain(images, torch.tensor([0, 0]))[0], plain(images, torch.tensor([1, 1]))[0])


def test_discriminator_sees_a_collapsed_batch():
    from gan.models import minibatch_stddev

    varied = torch.randn(8, 5, 4, 4)
    collapsed = varied[:1].repeat(8, 1, 1, 1)
    assert minibatch_stddev(varied)[:, -1].mean() > 0.5
    assert minibatch_stddev(collapsed)[:, -1].abs().max() < 1e-3
    assert minibatch_stddev(torch.randn(6, 5, 4, 4)).shape == (6, 6, 4, 4)  # 6 is not a multiple of 4


def test_every_per_genre_tensor_is_listed_and_moves_by_genre_name():
    """Any tensor with one row per genre must be in PER_GENRE_TENSORS, or --init-from would hand a
    genre another genre's row (or drop it) when the genres differ: a new per-genre table fails here."""
    from gan.models import PER_GENRE_TENSORS

    source_genres, target_genres = ["a", "b", "c", "d", "e", "f", "g"], ["g", "x", "a", "b", "y", "c", "d"]
    for build in (Generator, Discriminator):
        source = build(tiny_model(genres=source_genres, projection=True))
        target = build(tiny_model(genres=target_genres, projection=True))
        fresh_state = {k: v.clone() for k, v in target.state_dict().items()}
        per_genre = {name for name, t in source.state_dict().items() if t.dim() and t.shape[0] == len(source_genres)}
        assert per_genre and per_genre <= set(PER_GENRE_TENSORS), per_genre - set(PER_GENRE_TENSORS)

        rows = [source_genres.index(g) if g in source_genres else None for g in target_genres]
        fresh = carry_over_weights(target, source.state_dict(), rows)
        for name in per_genre:
            for row, genre in enumerate(target_genres):
                expected = fresh_state[name][row] if rows[row] is None else source.state_dict()[name][rows[row]]
                assert torch.equal(target.state_dict()[name][row], expected), (name, genre)
            assert f"{name}[1, 4]" in fresh
