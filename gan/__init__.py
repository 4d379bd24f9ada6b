"""CoverGAN Studio: genre-conditioned album cover generation with an AC-GAN.

The public API is small: `load_generator` returns a ready-to-sample generator.

    >>> import gan
    >>> g = gan.load_generator()              # the bundled checkpoints/demo
    >>> images = g.generate(g.sample_noise(4, seed=0), "jazz")   # uint8 (4, 64, 64, 3)
"""

__version__ = "0.1.0"

from gan.errors import GanError  # noqa: E402
from gan.sampling import DEFAULT_CHECKPOINT, CoverGenerator, load_generator  # noqa: E402

__all__ = ["DEFAULT_CHECKPOINT", "CoverGenerator", "GanError", "load_generator", "__version__"]
