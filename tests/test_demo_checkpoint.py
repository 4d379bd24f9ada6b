"""The shipped checkpoint: loads on a fresh machine, on the CPU, and generates every genre."""

import numpy as np

from gan import DEFAULT_CHECKPOINT, load_generator
from gan.data.demo import DEMO_GENRES


def test_shipped_checkpoint_generates_every_genre():
    generator = load_generator()  # the default is checkpoints/demo
    assert generator.checkpoint == DEFAULT_CHECKPOINT
    assert generator.genres == sorted(DEMO_GENRES)
    assert generator.resolution == 64
    noise = generator.sample_noise(4, seed=0)
    by_genre = {genre: generator.generate(noise, genre) for genre in generator.genres}
    for genre, images in by_genre.items():
        assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
        assert images.std() > 10, f"{genre}: flat images"
        assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 2, f"{genre}: two noises alike"
    # Genre style shows in colour: the same noise as metal is darker than as pop or classical.
    assert by_genre["metal"].mean() < by_genre["pop"].mean()
    assert by_genre["metal"].mean() < by_genre["classical"].mean()


def test_shipped_checkpoint_is_small_and_documented():
    files = {p.name: p.stat().st_size for p in DEFAULT_CHECKPOINT.iterdir()}
    assert {"config.json", "generator.safetensors", "README.md", "samples.png"} <= set(files)
    assert sum(files.values()) < 25 * 2**20
    readme = (DEFAULT_CHECKPOINT / "README.md").read_text()
    assert "python -m gan demo-data" in readme and "python -m gan train" in readme
