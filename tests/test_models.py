import itertools
import math

import pytest
import torch
from conftest import tiny_model

from gan.config import from_dict, to_dict
from gan.errors import GanError
from gan.models import build_discriminator, build_generator, carry_over_weights, minibatch_stddev
from gan.models.common import describe_fresh
from gan.models.resnet import (
    ConditionalBatchNorm,
    PixelNoise,
    ShiftedWaves,
    UpBlock,
    discriminator_channels,
    generator_channels,
    with_coordinates,
)

ARCHITECTURES = ["resnet", "dcgan"]


def _shake_genre_parts(G) -> None:
    """The ResNet's conditional batch norm starts at zero (a fine-tuned model starts as its pre-trained
    self); give it weights, as training does, so that the genre has something to change."""
    torch.manual_seed(1)
    for module in G.modules():
        if isinstance(module, ConditionalBatchNorm):
            torch.nn.init.normal_(module.gain.weight, std=0.5)
            torch.nn.init.normal_(module.shift.weight, std=0.5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_for_each_resolution(architecture, resolution):
    config = tiny_model(resolution=resolution, genres=["a", "b", "c"], architecture=architecture)
    G, D = build_generator(config), build_discriminator(config)
    images = G(torch.randn(4, config.latent_dim), torch.tensor([0, 2, 1, 1]))
    assert images.shape == (4, 3, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    realness, logits = D(images, torch.tensor([0, 2, 1, 1]))
    assert realness.shape == (4,)
    assert logits.shape == (4, 3)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_unconditional_model_has_no_genre_parts(architecture):
    config = tiny_model(architecture=architecture)
    G, D = build_generator(config), build_discriminator(config)
    assert G.genre_embedding is None and D.genre_head is None
    realness, logits = D(G(torch.randn(4, config.latent_dim)))
    assert realness.shape == (4,) and logits is None


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_genre_changes_the_image_for_the_same_noise(architecture):
    G = build_generator(tiny_model(genres=["a", "b"], architecture=architecture))
    _shake_genre_parts(G)
    G.eval()
    noise = torch.randn(1, G.config.latent_dim)
    assert not torch.allclose(G(noise, torch.tensor([0])), G(noise, torch.tensor([1])))


@pytest.mark.parametrize("options", [{}, {"coordinate_channels": True}, {"generator_spectral_norm": True}],
                         ids=["plain", "coordinates", "spectral-norm"])
def test_resnet_fine_tuning_starts_as_the_pretrained_model(options):
    pre = build_generator(tiny_model(**options))
    fine = build_generator(tiny_model(genres=["a", "b"], **options))
    fresh = carry_over_weights(fine, pre.state_dict())
    assert "genre_embedding.weight" in fresh
    assert all(name.endswith((".gain.weight", ".shift.weight", ".genre_strength.weight"))
               for name in fresh if name != "genre_embedding.weight")
    pre.eval(), fine.eval()
    noise = torch.randn(3, pre.config.latent_dim)
    torch.testing.assert_close(fine(noise, torch.tensor([0, 1, 1])), pre(noise))


def test_dcgan_carry_over_keeps_the_noise_rows_of_the_first_layer():
    pre = build_generator(tiny_model(architecture="dcgan", upsample="nearest"))
    fine = build_generator(tiny_model(genres=["a", "b"], architecture="dcgan", upsample="nearest"))
    fresh = carry_over_weights(fine, pre.state_dict())
    assert "genre_embedding.weight" in fresh
    assert any(name.startswith("seed.0.weight[") for name in fresh)
    latent = pre.config.latent_dim
    assert torch.equal(fine.seed[0].weight[:latent], pre.seed[0].weight)
    assert torch.equal(fine.to_rgb[0].weight, pre.to_rgb[0].weight)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_discriminator_carry_over_leaves_only_genre_heads_fresh(architecture):
    D_pre = build_discriminator(tiny_model(architecture=architecture))
    D_fine = build_discriminator(tiny_model(genres=["a", "b"], projection=False, architecture=architecture))
    assert carry_over_weights(D_fine, D_pre.state_dict()) == ["genre_head.weight", "genre_head.bias"]
    D_projection = build_discriminator(tiny_model(genres=["a", "b"], projection=True, architecture=architecture))
    fresh_d = carry_over_weights(D_projection, D_pre.state_dict())
    assert fresh_d[:2] == ["genre_head.weight", "genre_head.bias"]
    assert fresh_d[2:] and all(name.startswith("genre_projection.") for name in fresh_d[2:])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_projection_makes_realness_depend_on_the_genre(architecture):
    images = torch.randn(4, 3, 32, 32)
    config = tiny_model(resolution=32, genres=["a", "b"], projection=True, architecture=architecture)
    D = build_discriminator(config).eval()  # no power iteration
    as_a, logits_a = D(images, torch.tensor([0, 0, 0, 0]))
    as_b, logits_b = D(images, torch.tensor([1, 1, 1, 1]))
    assert not torch.allclose(as_a, as_b)
    assert torch.equal(logits_a, logits_b)  # the classifier head does not look at the genre asked for
    with pytest.raises(ValueError, match="needs the genre"):
        D(images)
    plain = build_discriminator(tiny_model(resolution=32, genres=["a", "b"], projection=False,
                                           architecture=architecture)).eval()
    assert plain.genre_projection is None
    assert torch.equal(plain(images, torch.tensor([0, 0, 0, 0]))[0], plain(images, torch.tensor([1, 1, 1, 1]))[0])


def test_configs_written_before_the_resnet_read_as_dcgan():
    later_fields = ("architecture", "coordinate_channels", "generator_spectral_norm",  # added after the ResNet
                    "discriminator_min_channels", "coordinate_frequencies", "coordinate_rings",
                    "coordinate_genre_gains", "noise_in_norms", "upsample")
    old = {k: v for k, v in to_dict(tiny_model()).items() if k not in later_fields}
    assert from_dict(type(tiny_model()), old).architecture == "dcgan"
    assert tiny_model().architecture == "resnet"
    before_coordinates = {k: v for k, v in to_dict(tiny_model(coordinate_channels=True)).items()
                          if k != "coordinate_channels"}
    assert from_dict(type(tiny_model()), before_coordinates).coordinate_channels is False
    with pytest.raises(GanError, match=r"run\.json: --coordinate-channels is for --architecture resnet, not dcgan"):
        from_dict(type(tiny_model()), {**before_coordinates, "architecture": "dcgan", "coordinate_channels": True},
                  "run.json")
    assert from_dict(type(tiny_model()), before_coordinates).generator_spectral_norm is False
    # A discriminator trained before its channel floor existed had none.
    before_floor = {k: v for k, v in to_dict(tiny_model()).items() if k != "discriminator_min_channels"}
    assert tiny_model().discriminator_min_channels == 32
    assert from_dict(type(tiny_model()), before_floor).discriminator_min_channels == 0
    before_waves = {k: v for k, v in to_dict(tiny_model(coordinate_frequencies=3)).items()
                    if k != "coordinate_frequencies"}
    assert from_dict(type(tiny_model()), before_waves).coordinate_frequencies == 0
    assert from_dict(type(tiny_model()), before_waves).coordinate_rings is False
    assert from_dict(type(tiny_model()), before_waves).coordinate_genre_gains is False
    before_noise_in_norms = {k: v for k, v in to_dict(tiny_model(noise_in_norms=True)).items() if k != "noise_in_norms"}
    assert from_dict(type(tiny_model()), before_noise_in_norms).noise_in_norms is False
    before_upsample = {k: v for k, v in to_dict(tiny_model(upsample="bilinear")).items() if k != "upsample"}
    assert from_dict(type(tiny_model()), before_upsample).upsample == "nearest"
    with pytest.raises(GanError, match="--generator-spectral-norm is for --architecture resnet, not dcgan"):
        from_dict(type(tiny_model()), {**before_coordinates, "architecture": "dcgan",
                                       "generator_spectral_norm": True})


def test_generator_spectral_norm_holds_every_layer_but_the_zero_started_genre_parts_at_gain_one():
    torch.manual_seed(0)
    G = build_generator(tiny_model(genres=["a", "b"], generator_spectral_norm=True))
    normalised = {name.removesuffix(".parametrizations.weight.original") for name, _ in G.named_parameters()
                  if name.endswith(".parametrizations.weight.original")}
    layers = {name for name, m in G.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    # A zero matrix has no spectral norm to divide by: these start at zero and stay plain.
    plain = {name for name in layers if name.endswith((".gain", ".shift", ".genre_strength"))}
    assert plain and normalised == layers - plain
    G.train()
    noise = torch.randn(8, G.config.latent_dim)
    for _ in range(100):  # training's forward passes run the power iteration (one step each)
        images = G(noise, torch.tensor([0, 1] * 4))
    assert torch.isfinite(images).all()
    for name in normalised:
        weight = G.get_submodule(name).weight  # the normalised weight the layer uses
        torch.testing.assert_close(torch.linalg.matrix_norm(weight.flatten(1), ord=2), torch.tensor(1.0),
                                   atol=0.02, rtol=0)


def test_coordinate_channels_hold_each_pixels_column_and_row():
    features = torch.randn(2, 3, 4, 5)
    out = with_coordinates(features)
    assert out.shape == (2, 5, 4, 5)
    assert torch.equal(out[:, :3], features)
    torch.testing.assert_close(out[1, 3], torch.linspace(-1, 1, 5).expand(4, 5))  # x: along the width
    torch.testing.assert_close(out[1, 4], torch.linspace(-1, 1, 4)[:, None].expand(4, 5))  # y: down


def test_shifted_waves_are_sines_of_the_coordinates_turned_and_moved_by_the_noise():
    waves = ShiftedWaves(octaves=4, latent_dim=8)
    assert waves.channels_at(16) == 12  # 1, 2 and 4 periods across 16 pixels; 8 would leave 2 pixels a period
    cols = torch.linspace(-1, 1, 16)
    upright = waves(torch.zeros(2, 1, 16, 16), torch.randn(2, 8))
    assert upright.shape == (2, 13, 16, 16)
    # Channels: the input's, then sin x, cos x, sin y, cos y at each frequency.
    torch.testing.assert_close(upright[0, 2], torch.sin(2 * math.pi * cols).expand(16, 16))
    torch.testing.assert_close(upright[0, 7], torch.sin(math.pi * cols)[:, None].expand(16, 16))
    assert torch.equal(upright[0], upright[1])  # the map starts at zero: the same waves for every noise
    noise = torch.zeros(2, 8)
    noise[1, 0] = math.pi / 2
    with torch.no_grad():  # x's phase at one period across = the noise's first coordinate
        waves.pose.weight.zero_()
        waves.pose.weight[1, 0] = 1.0
    moved = waves(torch.zeros(2, 1, 16, 16), noise)
    torch.testing.assert_close(moved[1, 1], torch.cos(math.pi * cols).expand(16, 16))  # a quarter period on
    torch.testing.assert_close(moved[1, 4], -torch.sin(math.pi * cols).expand(16, 16))  # its cosine with it
    unmoved = [2, 3, *range(5, 13)]  # the other frequencies, and y
    torch.testing.assert_close(moved[1, unmoved], upright[0, unmoved])
    torch.testing.assert_close(moved[0], upright[0])  # zero noise, no shift
    with torch.no_grad():  # the angle of the frame = the noise's first coordinate: a quarter turn
        waves.pose.weight.zero_()
        waves.pose.weight[0, 0] = 1.0
    turned = waves(torch.zeros(2, 1, 16, 16), noise)
    torch.testing.assert_close(turned[1, 1:4], upright[0, 7:10])  # x's waves now run along y
    torch.testing.assert_close(turned[1, 7:10], -upright[0, 1:4])  # and y's along -x


def test_rings_are_waves_of_the_distance_from_a_centre_the_noise_places():
    waves = ShiftedWaves(octaves=2, latent_dim=4, rings=True)
    assert waves.channels_at(16) == 12  # sin and cos of x, y and the radius at 1 and 2 periods
    cols, rows = torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16)[:, None]
    noise = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.5, -0.25, 0.0, 0.0]])
    with torch.no_grad():  # pose rows: angle, 2 x 2 phases, then the centre's x and y
        waves.pose.weight.zero_()
        waves.pose.weight[5, 0] = 1.0
        waves.pose.weight[6, 1] = 1.0
    out = waves(torch.zeros(2, 0, 16, 16), noise)
    torch.testing.assert_close(out[0, 8], torch.sin(math.pi * (cols ** 2 + rows ** 2).sqrt()))  # about the middle
    torch.testing.assert_close(out[1, 10], torch.cos(math.pi * ((cols - 0.5) ** 2 + (rows + 0.25) ** 2).sqrt()))
    torch.testing.assert_close(out[1, :8], out[0, :8])  # the straight waves stay where they were
    with pytest.raises(GanError, match="^--coordinate-rings needs --coordinate-frequencies N"):
        tiny_model(coordinate_rings=True).validate()
    G = build_generator(tiny_model(resolution=64, width=8, genres=["a"], coordinate_frequencies=4,
                                   coordinate_rings=True))
    plain = build_generator(tiny_model(resolution=64, width=8, genres=["a"]))
    assert [b.conv1.in_channels - p.conv1.in_channels for b, p in zip(G.blocks, plain.blocks)] == [12, 18, 24, 24]


def test_genre_gains_scale_each_wave_for_one_genre_and_start_at_one():
    waves = ShiftedWaves(octaves=2, latent_dim=4, rings=True, condition_dim=3)
    plain = ShiftedWaves(octaves=2, latent_dim=4, rings=True)
    noise, genres = torch.randn(2, 4), torch.eye(3)[:2]  # two covers, of the first and the second genre
    # Started at zero: a gain of 1, the waves of a module without gains, for every genre.
    assert torch.equal(waves(torch.zeros(2, 0, 16, 16), noise, genres), plain(torch.zeros(2, 0, 16, 16), noise))
    with torch.no_grad():  # rows: x at 1 and 2 periods, y at 1 and 2, the radius at 1 and 2
        waves.genre_gain.weight[1, 0] = -1.0  # the first genre: no x waves at 2 periods
        waves.genre_gain.weight[4, 0] = 1.0   # and rings at 1 period twice as strong
    out, unscaled = waves(torch.zeros(2, 0, 16, 16), noise, genres), plain(torch.zeros(2, 0, 16, 16), noise)
    # Channels: sin x (1, 2 periods), cos x, sin y, cos y, sin radius, cos radius.
    assert torch.equal(out[0, [1, 3]], torch.zeros(2, 16, 16))
    torch.testing.assert_close(out[0, [8, 10]], 2 * unscaled[0, [8, 10]])
    kept = [0, 2, 4, 5, 6, 7, 9, 11]
    torch.testing.assert_close(out[0, kept], unscaled[0, kept])
    torch.testing.assert_close(out[1], unscaled[1])  # the second genre's waves as they were
    torch.testing.assert_close(waves(torch.zeros(2, 0, 4, 4), noise, genres)[0, 4:],  # 4 pixels: 1 period only
                               2 * plain(torch.zeros(2, 0, 4, 4), noise)[0, 4:])
    # In a generator the gains read the genre embedding and start at zero, not drawn like its convolutions.
    G = build_generator(tiny_model(resolution=32, width=8, genres=["a", "b"], coordinate_frequencies=2,
                                   coordinate_genre_gains=True))
    assert not G.waves.genre_gain.weight.any()
    assert G.waves.genre_gain.in_features == G.genre_embedding.embedding_dim
    with pytest.raises(GanError, match="^--coordinate-genre-gains needs --coordinate-frequencies N"):
        tiny_model(coordinate_genre_gains=True).validate()


def test_noise_in_norms_lets_the_noise_set_each_channels_gain_and_starts_as_a_model_without_it():
    torch.manual_seed(0)
    with_noise = ConditionalBatchNorm(4, condition_dim=3, noise_dim=5).eval()
    plain = ConditionalBatchNorm(4, condition_dim=3).eval()
    x, genres, noise = torch.randn(2, 4, 6, 6), torch.eye(3)[:2], torch.randn(2, 5)
    assert torch.equal(with_noise(x, genres, noise), plain(x, genres))  # zero at the start
    with torch.no_grad():
        with_noise.noise_gain.weight[1, 0] = 1.0  # channel 1's gain follows the noise's first entry
        with_noise.noise_shift.weight[2, 1] = 1.0  # channel 2's shift its second
    out, normed = with_noise(x, genres, noise), plain(x, genres)
    torch.testing.assert_close(out[:, 1], normed[:, 1] * (1 + noise[:, 0, None, None]))
    torch.testing.assert_close(out[:, 2], normed[:, 2] + noise[:, 1, None, None])
    torch.testing.assert_close(out[:, [0, 3]], normed[:, [0, 3]])
    # Unconditional (pre-training): the noise alone.
    unconditional = ConditionalBatchNorm(4, condition_dim=0, noise_dim=5).eval()
    unconditional.load_state_dict(with_noise.state_dict(), strict=False)
    torch.testing.assert_close(unconditional(x, None, noise), out)  # with_noise's genre parts are still zero
    # In a generator every block's two norms read the noise; the projections start at zero and carry
    # over from pre-training to fine-tuning by name, as the batch norms' own parameters do.
    pretrain = build_generator(tiny_model(resolution=32, width=8, noise_in_norms=True))
    G = build_generator(tiny_model(resolution=32, width=8, genres=["a", "b"], noise_in_norms=True))
    names = [name for name in G.state_dict() if "noise_" in name]
    assert len(names) == 4 * len(G.blocks) and not any(G.state_dict()[name].any() for name in names)
    with torch.no_grad():
        for name in names:
            pretrain.state_dict()[name].normal_()
    fresh = carry_over_weights(G, pretrain.state_dict())
    assert not [name for name in fresh if "noise_" in name]
    assert all(torch.equal(G.state_dict()[name], pretrain.state_dict()[name]) for name in names)
    without = build_generator(tiny_model(resolution=32, width=8, genres=["a", "b"]))
    without.load_state_dict(G.state_dict(), strict=False)  # the same weights but the noise's projections
    noise, genres = torch.randn(2, 16), torch.tensor([0, 1])
    assert not torch.allclose(G.eval()(noise, genres), without.eval()(noise, genres))
    # Fine-tuned from a model without them, they start fresh, and the log line counts them.
    fresh = carry_over_weights(G, build_generator(tiny_model(resolution=32, width=8)).state_dict())
    assert describe_fresh(fresh) == ("genre_embedding.weight, blocks.2.grain.genre_strength.weight, the genre gains "
                                     "and shifts of 6 conditional batch norms, the noise gains and shifts of 6 "
                                     "conditional batch norms")  # two per block, three blocks up to 32 px
    with pytest.raises(GanError, match="^--noise-in-norms is for --architecture resnet, not dcgan$"):
        tiny_model(architecture="dcgan", upsample="nearest", coordinate_channels=False, discriminator_min_channels=0,
                   noise_in_norms=True).validate()


def test_bilinear_upsampling_interpolates_where_nearest_copies_with_the_same_weights():
    row = torch.tensor([[[[0.0, 1.0]]]])  # one channel, one row of two pixels
    nearest = UpBlock(1, 1, condition_dim=0)
    bilinear = UpBlock(1, 1, condition_dim=0, upsample="bilinear")
    assert nearest.double(row)[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    # Half-pixel centres: each new pixel a quarter of the way from its nearer old one, edges held.
    assert bilinear.double(row)[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]
    # The option changes no parameter: a nearest model's weights load into a bilinear one and draw
    # other (smoother) covers from them.
    G = build_generator(tiny_model(resolution=32, width=8, genres=["a", "b"], upsample="nearest")).eval()
    smooth = build_generator(tiny_model(resolution=32, width=8, genres=["a", "b"], upsample="bilinear")).eval()
    smooth.load_state_dict(G.state_dict())
    noise, genres = torch.randn(2, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1])
    with torch.no_grad():
        blocky, smoothed = G(noise, genres), smooth(noise, genres)
    assert blocky.shape == smoothed.shape and not torch.allclose(blocky, smoothed)
    with pytest.raises(GanError, match="^--upsample bilinear is for --architecture resnet, not dcgan$"):
        tiny_model(architecture="dcgan", coordinate_channels=False, discriminator_min_channels=0,
                   upsample="bilinear").validate()
    with pytest.raises(GanError, match="upsample"):
        from_dict(type(tiny_model()), {**to_dict(tiny_model()), "upsample": "bicubic"})


def test_shifted_waves_take_their_angles_in_float32_under_autocast():
    """A bf16 angle of several radians is off by a large part of a pixel: the waves a generator trained
    under autocast saw are the float32 waves rounded once, as generating in float32 draws them."""
    torch.manual_seed(0)
    waves = ShiftedWaves(octaves=4, latent_dim=16)
    torch.nn.init.normal_(waves.pose.weight, std=3.0)
    noise = torch.randn(4, 16)
    fp32 = waves(torch.zeros(4, 1, 64, 64), noise)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = waves(torch.zeros(4, 1, 64, 64, dtype=torch.bfloat16), noise)
    assert torch.equal(mixed.float(), fp32.bfloat16().float())


def test_coordinate_frequencies_widen_each_generator_block_by_its_waves():
    config = tiny_model(resolution=64, width=8, genres=["a", "b"], coordinate_frequencies=4)
    G = build_generator(config)
    plain = build_generator(tiny_model(resolution=64, width=8, genres=["a", "b"]))
    # 8x8: 1 and 2 periods; 16x16: up to 4; 32x32 and 64x64: up to 8 (four octaves), 4 channels each.
    assert [b.conv1.in_channels - p.conv1.in_channels for b, p in zip(G.blocks, plain.blocks)] == [8, 12, 16, 16]
    assert [name for name in G.state_dict() if "pose" in name] == ["waves.pose.weight"]  # one frame for all
    assert G(torch.randn(2, config.latent_dim), torch.tensor([0, 1])).shape == (2, 3, 64, 64)
    with pytest.raises(GanError, match="^--coordinate-frequencies is for --architecture resnet, not dcgan$"):
        tiny_model(architecture="dcgan",
                   upsample="nearest", coordinate_channels=False, coordinate_frequencies=2).validate()


@pytest.mark.parametrize("coordinate_channels", [False, True])
def test_only_a_block_with_coordinates_can_draw_on_a_featureless_input(coordinate_channels):
    """Features that are the same at every pixel (the case of a flat area) give a flat output away
    from the border, where the zero padding cannot reach, unless the block sees coordinates."""
    torch.manual_seed(0)
    block = UpBlock(4, 4, condition_dim=0, coordinates=coordinate_channels).eval()
    out = block(torch.ones(1, 4, 8, 8), None, torch.zeros(1, 16))  # 16x16 out
    interior = out[0, :, 3:-3, 3:-3]  # two 3x3 convolutions after 2x upsampling reach 2 pixels in
    spread = (interior - interior.mean(dim=(1, 2), keepdim=True)).abs().max()
    assert (spread > 1e-2) if coordinate_channels else (spread < 1e-6)
    assert build_generator(tiny_model(coordinate_channels=coordinate_channels)).blocks[0].conv1.in_channels == \
        build_generator(tiny_model(coordinate_channels=False)).blocks[0].conv1.in_channels + 2 * coordinate_channels


def test_grain_lies_where_the_noise_vector_says_under_autocast_too():
    """The same noise vector takes the same window of the grain field whether the generator runs in
    bf16 (mixed-precision training) or fp32 (generating), so training and generating agree."""
    grain = PixelNoise(channels=1, resolution=32, latent_dim=16, condition_dim=0)
    with torch.no_grad():
        grain.strength.fill_(1.0)
    noise = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    flat = torch.zeros(64, 1, 32, 32)
    fp32 = grain(flat, noise, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = grain(flat.bfloat16(), noise, None)
    assert torch.equal(mixed.float(), fp32.bfloat16().float())
    assert len({tuple(window[0, :2, :2].flatten().tolist()) for window in fp32}) > 60  # nearly every cover its own


def test_the_channel_floor_widens_the_generators_narrow_blocks_and_leaves_the_discriminator():
    ladder, floored = (tiny_model(resolution=64, width=8, genres=["a", "b"], generator_min_channels=floor)
                       for floor in (0, 32))
    assert generator_channels(ladder) == [64, 64, 32, 16, 8]
    assert generator_channels(floored) == [64, 64, 32, 32, 32]
    G = build_generator(floored)
    assert (G.blocks[-1].conv2.out_channels, G.to_rgb[-2].in_channels) == (32, 32)
    assert G(torch.randn(2, floored.latent_dim), torch.tensor([0, 1])).shape == (2, 3, 64, 64)
    shapes = {k: v.shape for k, v in build_discriminator(ladder).state_dict().items()}
    assert {k: v.shape for k, v in build_discriminator(floored).state_dict().items()} == shapes
    with pytest.raises(GanError, match="^--generator-min-channels is for --architecture resnet, not dcgan$"):
        tiny_model(architecture="dcgan",
                   upsample="nearest", coordinate_channels=False, generator_min_channels=32).validate()


def test_the_discriminators_channel_floor_widens_its_first_blocks_and_leaves_the_generator():
    ladder, floored = (tiny_model(resolution=64, width=8, genres=["a", "b"], discriminator_min_channels=floor)
                       for floor in (0, 32))
    assert discriminator_channels(ladder) == [8, 16, 32, 64]
    assert discriminator_channels(floored) == [32, 32, 32, 64]
    D = build_discriminator(floored)
    assert [(block.conv1.in_channels, block.conv2.out_channels) for block in D.blocks] == \
        [(3, 32), (32, 32), (32, 32), (32, 64)]
    scores, genres = D(torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 0, 1]))
    assert scores.shape == (4,) and genres.shape == (4, 2)
    shapes = {k: v.shape for k, v in build_generator(ladder).state_dict().items()}
    assert {k: v.shape for k, v in build_generator(floored).state_dict().items()} == shapes
    with pytest.raises(GanError, match="^--discriminator-min-channels is for --architecture resnet, not dcgan$"):
        tiny_model(architecture="dcgan",
                   upsample="nearest", coordinate_channels=False, discriminator_min_channels=32).validate()


def test_discriminator_sees_a_collapsed_batch():
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
    for build, architecture in itertools.product((build_generator, build_discriminator), ARCHITECTURES):
        source = build(tiny_model(genres=source_genres, projection=True, architecture=architecture))
        target = build(tiny_model(genres=target_genres, projection=True, architecture=architecture))
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


def test_a_checkpoint_from_before_the_resnet_loads_and_generates(tmp_path):
    """The bundled checkpoint of earlier versions: format 1, a DCGAN, its config without the fields
    added since (architecture, pixel_noise, coordinate_channels, generator_spectral_norm,
    discriminator_min_channels)."""
    import json

    from safetensors.torch import save_file

    from gan.checkpoint import checkpoint_config
    from gan.sampling import load_generator

    model = tiny_model(genres=["jazz", "rock"], architecture="dcgan",
                       upsample="nearest", projection=False, pixel_noise=False,
                       coordinate_channels=False)
    config = checkpoint_config(model, None, None, "finetune", 10, ema=True)
    for name in ("architecture", "pixel_noise", "coordinate_channels", "generator_spectral_norm",
                 "discriminator_min_channels"):
        del config["model"][name]
    (tmp_path / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    save_file(build_generator(model).state_dict(), str(tmp_path / "generator.safetensors"))
    generator = load_generator(tmp_path)
    assert type(generator.model).__name__ == "DCGANGenerator"
    assert generator.generate(generator.sample_noise(2), "rock").shape == (2, 32, 32, 3)
