"""Configuration dataclasses, one per concern, serialised to JSON in every run folder and checkpoint.

A checkpoint rebuilds its model from `ModelConfig` alone, so there is no second place where
the architecture is described.

Config files come from anywhere (a downloaded checkpoint, a hand-edited run), so `from_dict`
checks every field against its annotation (`int` is an int, not "128" or 128.0; `list[str]` is a
list of strings) and against `LIMITS`, then runs the dataclass's own `validate()`; any mismatch is
one `GanError` naming the file and the field. A field added later with a plain type (bool, int,
float, str, `X | None`, `list[X]`, `dict[str, X]`, or another dataclass) is checked with no change
here, and a file written before it existed loads with its default. We check by hand rather than
with pydantic: the hundred lines below are about what the glue around pydantic would take (strict
mode so that "128" is not coerced, its multi-line errors flattened to one line naming the file,
plain dataclasses kept for `to_dict` and the CLI), and they add no dependency.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from gan.errors import GanError

SUPPORTED_RESOLUTIONS = (32, 64, 128)
PHASES = ("pretrain", "finetune")
PRECISIONS = ("auto", "bf16", "fp32")
# torch.compile's modes (TrainConfig.compile_mode): "reduce-overhead" replays each compiled step as
# CUDA graphs, one launch for its few hundred small kernels.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTATIONS = ("translation", "cutout")  # see gan.train.augment
ARCHITECTURES = ("resnet", "dcgan")  # see gan.models
# ModelConfig fields that DCGAN lacks; each is off when false or 0, or at its value in RESNET_OFF.
RESNET_ONLY = ("coordinate_channels", "coordinate_frequencies", "coordinate_rings", "coordinate_genre_gains",
               "noise_in_norms", "generator_spectral_norm", "generator_min_channels", "discriminator_min_channels",
               "upsample")
RESNET_OFF = {"upsample": "nearest"}
GENRE_CLASSIFIERS = ("softmax", "contrastive")  # see gan.models.genre_heads
UPSAMPLING = ("nearest", "bilinear")  # how the ResNet generator doubles its features (ModelConfig.upsample)
MAX_GENRES = 1000
MAX_GENRE_NAME = 64
MAX_TEXT = 4096  # characters in any string field (a path at most)
MAX_ITEMS = 10_000  # entries in any list or dict field without its own limit
# Genre names become folder names (`generate` writes OUT/<genre>/): this set has no path separator.
GENRE_NAME_PUNCTUATION = " -_&+.'"


@dataclass
class ModelConfig:
    """Architecture of the generator and discriminator.

    `genres` empty means an unconditional model (pre-training): no genre embedding in G and
    no auxiliary classifier head in D.
    """

    resolution: int = 64
    latent_dim: int = 128
    width: int = 16  # channels at full resolution; see gan.models.resnet (8x that at 4x4)
    genre_embedding_dim: int = 64
    genres: list[str] = field(default_factory=list)
    projection: bool = True  # genre-aware realness in D beside its genre classifier; see gan.models
    architecture: str = "resnet"  # see gan.models; configs written before it existed read as "dcgan"
    pixel_noise: bool = True  # per-pixel grain in the ResNet generator's last block (gan.models.resnet.PixelNoise)
    # D's genre classifier: "softmax" (AC-GAN's cross-entropy) or "contrastive" (ReACGAN's
    # data-to-data cross-entropy); see gan.models.genre_heads.
    genre_classifier: str = "softmax"
    # Two channels holding each pixel's x and y (from -1 to 1) beside the features that every
    # generator block convolves (CoordConv, Liu et al., 2018): a plain convolution sees no position,
    # so a circle about a point or a straight edge across the cover must be assembled from what the
    # padding leaks; with the coordinates, it is a function of them. ResNet generator only (the
    # command line turns it off for --architecture dcgan unless asked). In the recipe since row 20 of
    # the README's table: better than the recipe without it on two seeds each, trained on one machine.
    coordinate_channels: bool = True
    # Sines and cosines of each pixel's x and y at 1, 2, 4, ... periods across the cover (this many
    # octaves), in a frame that each cover's noise turns and shifts, beside the features of every
    # generator block: a stripe or a thin line at any angle and offset is then one step away (see
    # gan.models.resnet.ShiftedWaves). 0 for none. ResNet generator only. Not in the recipe: 4
    # (README, row 33) was better over all genres on two seeds but lost the fidelity target on one.
    coordinate_frequencies: int = 0
    # With coordinate_frequencies, waves of each pixel's distance from a centre the noise places
    # too: rings about a point in one step (ShiftedWaves). README, row 34.
    coordinate_rings: bool = False
    # With coordinate_frequencies, a gain per genre on each of those waves (per direction and octave,
    # starting at 1): a genre whose covers have no stripes can turn them down (ShiftedWaves). Not in
    # the recipe: over three runs better over all genres and per genre, but worse in the worst genre
    # and meeting rock's fidelity target less often (README, row 35).
    coordinate_genre_gains: bool = False
    # Each of the generator's batch norms takes its gain and shift from the cover's noise vector as
    # well as from the genre (BigGAN's skip-z, Brock et al., 2019; StyleGAN's styles, Karras et al.,
    # 2019, do the same): the noise then sets each channel's strength, so a cover's colours and
    # textures, at every scale, directly. Without it the noise reaches only the 4x4 seed, and every
    # batch norm after it sets one style per genre: the judge's features of the shipped checkpoint's
    # covers of one genre vary 0.67 times as much as real covers' on average, 0.11 times in rock
    # (README, below the table). Starts at zero: a model without it. ResNet generator only. Not in
    # the recipe: on two seeds rock's realism went from 17 to 1.7 and 4.0, but metal's from 10 to
    # 18 and 19 (README, row 37).
    noise_in_norms: bool = False
    # Spectral norm on the generator's convolutions and its first linear layer too, not only the
    # discriminator's (SAGAN, Zhang et al., 2019; BigGAN): each layer's gain is held at 1, so no
    # layer can grow its way into the sudden swings that make one seed's genre fall apart. The
    # genre parts that start at zero (conditional gains and shifts, grain strength) stay plain:
    # a zero matrix has no spectral norm to divide by. ResNet generator only. Not in the recipe:
    # better than row 2's recipe on two seeds (README, row 19), but beside the coordinate channels
    # worse than they are alone (row 21, one seed).
    generator_spectral_norm: bool = False
    # The fewest channels of any generator block; 0 for none. The channels halve at every doubling of
    # the resolution, down to `width` at full size, so the blocks that draw a cover's thin lines (rock's
    # stripes, electronic's rings, metal's bars) are the narrowest. A floor widens those blocks alone;
    # the discriminator keeps its ladder. ResNet generator only. Not in the recipe: 32 measured worse
    # than without on two seeds (README, row 24).
    generator_min_channels: int = 0
    # The same floor under the discriminator's channels, which double from `width` at its first
    # block, so the blocks that look at the full-size and half-size cover (its grain, edges and thin
    # lines) are the narrowest: 16 and 32 at width 16. A floor widens those blocks alone; the
    # generator keeps its ladder. ResNet only. In the recipe since row 29 of the README's table:
    # better than the recipe without it on two seeds, by three judges, at no measurable cost in time.
    discriminator_min_channels: int = 32
    # How each ResNet generator block doubles its features' size before convolving them: "nearest"
    # copies each value into a 2x2 block, so every block's output starts as a staircase at its
    # scale (2, 4, 8 and 16 px at 64 px) that the 3x3 convolutions must smooth away, and what they
    # leave reads as a faint grid; "bilinear" interpolates (StyleGAN, Karras et al., 2019, filters
    # its upsampling for the same reason). In the recipe since row 38 of the README's table: better
    # than row 29 over all genres and per genre on two seeds (level in the worst genre), the grid
    # gone, at about 10% more time per step on the CPU (PyTorch's bilinear kernels are slower).
    # Configs written before it existed read as "nearest".
    upsample: str = "bilinear"

    def validate(self) -> None:
        check_fields(self)
        check_genre_names(self.genres, "genres")
        for name in RESNET_ONLY:
            value = getattr(self, name)
            if value != resnet_off(name) and self.architecture != "resnet":
                flag = f"--{name.replace('_', '-')}" + (f" {value}" if isinstance(value, str) else "")
                raise GanError(f"{flag} is for --architecture resnet, not {self.architecture}")
        if self.coordinate_rings and not self.coordinate_frequencies:
            raise GanError("--coordinate-rings needs --coordinate-frequencies N (N >= 1): the rings' periods")
        if self.coordinate_genre_gains and not self.coordinate_frequencies:
            raise GanError("--coordinate-genre-gains needs --coordinate-frequencies N (N >= 1): the waves they scale")

    @property
    def num_genres(self) -> int:
        return len(self.genres)


def resnet_off(name: str) -> Any:
    """The value of a RESNET_ONLY field that leaves its feature out (what a DCGAN config holds)."""
    return RESNET_OFF.get(name, type(getattr(ModelConfig, name))())


# The R1 penalty (TrainConfig.r1_gamma) is computed every this many steps and weighted as many times
# (StyleGAN2's lazy regularisation): it needs a second backward pass through D, and a slowly
# changing D does not need it every step.
R1_EVERY = 16


@dataclass
class TrainConfig:
    """Hyper-parameters of one training phase."""

    phase: str = "finetune"
    steps: int = 3000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    # Both learning rates hold until this fraction of the phase's steps, then fall linearly to 0 at
    # its last step (as SNGAN's conditional models were trained); 1 keeps them constant. Not in the
    # recipe: see the README's "What each change did".
    lr_decay_from: float = 1.0
    beta1: float = 0.0
    beta2: float = 0.999
    # The genre loss at full weight drowns G's realness signal (each genre one image); 0.3 keeps every
    # genre recognisable; 0.5 measured worse (README, row 26). See the README's "Model and training
    # choices" for what was measured.
    genre_loss_weight: float = 0.3
    mode_seeking_weight: float = 0.3  # MSGAN's diversity term; see gan.train.loop.mode_seeking_ratio
    # The term compares two fakes averaged down to this many pixels a side (0: every pixel), so that
    # it rewards different layouts and colours, not per-pixel grain that any cover can add to look
    # "different" (gan.train.loop.coarse). It removes the grain but measured worse than the recipe on
    # both seeds at 3,000 steps, so it is not in the recipe (README, row 13).
    mode_seeking_scale: int = 0
    # On, the term stops pushing two fakes apart once they differ as much as two real covers of their
    # genre do on average (gan.train.loop.real_cover_gaps). Not in the recipe: measured worse (README).
    mode_seeking_cap: bool = False
    # The discriminator's minibatch standard deviation is taken over groups of 4 covers. Drawn from
    # one genre (real covers and fakes alike), the groups show D how much a genre's covers vary, so
    # it can tell a generator that varies too little *or too much within a genre*; over mixed genres
    # the statistic mostly measures how different genres are. Not in the recipe: measured worse (README).
    genre_groups: bool = False
    # Covers of several genres (data with tag sets, see gan.tags) train on their tag sets: real covers
    # as weights over their tags, fakes asked for the data's tag sets. Off, each cover trains as its
    # main genre. Not in the recipe: measured worse on the demo covers (README, row 12).
    tag_sets: bool = False
    # A zero-centred gradient penalty on real covers (R1; Mescheder et al., 2018): gamma / 2 times
    # the squared norm of D's gradient with respect to a real cover, so that D's verdict changes
    # smoothly near real covers and G is not pulled back and forth around them. 0 turns it off.
    # Applied lazily (R1_EVERY), as StyleGAN2 does. Not in the recipe: gamma 4
    # measured worse on both seeds (README, row 15).
    r1_gamma: float = 0.0
    # Discriminator updates per generator update, each on a batch of its own (SNGAN trained with 5,
    # BigGAN with 2): a D that keeps up gives G sharper gradients, at the cost of time per step.
    # Not in the recipe: 2 measured worse on both seeds (README, row 16).
    d_steps: int = 1
    # LeCam regularisation (Tseng et al., 2021, for GANs trained on few images): D's scores of real
    # covers are pulled towards a moving average of its scores of fakes, and fakes' towards that of
    # real covers, by this weight, so D cannot grow ever more certain on the covers it has seen.
    # 0 turns it off. See gan.train.loop.lecam_penalty. Not in the recipe: 0.3, the paper's weight
    # for a fifth of CIFAR-10, measured much worse on both seeds (README, row 25).
    lecam_weight: float = 0.0
    ema_decay: float = 0.999
    # The EMA's memory grows with the phase: at step s its decay is (s + 1) / (s + 1 + 1 / ema_rampup),
    # so it averages about the last `ema_rampup` of the steps so far, until `ema_decay` caps it
    # (StyleGAN2 ramps its EMA the same way). 1/9 spans the last ~330 of 3,000 steps, so 0.999 (1,000)
    # is never reached in the recipe; 1/3 reaches it at step 3,000; 0 holds `ema_decay` from the start.
    ema_rampup: float = 1 / 9
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    # With `compile`: torch.compile's mode. On a GPU, "reduce-overhead" captures the training step in
    # CUDA graphs, for small batches whose step is bound by kernel launches; on a CPU, which has no
    # graphs, it compiles as "default" does. See the README's "On a GPU".
    compile_mode: str = "default"
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 500
    # Quality of a fixed sample (realism, fidelity, diversity) every this many fine-tuning steps, and the
    # best checkpoint kept as checkpoints/best; 0 turns it off. See gan.train.quality.
    eval_every: int = 500
    eval_covers: int = 100  # covers per genre in that sample
    keep_checkpoints: int = 3
    sample_rows: int = 8
    # Differentiable augmentation of D's inputs: "none" or a comma-separated subset of
    # gan.train.augment.AUGMENTATIONS ("translation,cutout").
    augment: str = "translation,cutout"
    # A loss this large means the run has diverged even when it is still finite.
    max_loss: float = 1e4

    @property
    def augment_policy(self) -> tuple[str, ...]:
        """'translation,cutout' -> ('translation', 'cutout'); 'none' -> ()."""
        return tuple(name for name in (part.strip() for part in self.augment.split(",")) if name and name != "none")

    def validate(self) -> None:
        check_fields(self)
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise GanError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if not 0 <= self.lr_decay_from <= 1:
            raise GanError(f"--lr-decay-from must be in [0, 1], got {self.lr_decay_from}")
        for name in ("beta1", "beta2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                raise GanError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.ema_rampup <= 1:
            raise GanError(f"--ema-rampup must be in [0, 1], got {self.ema_rampup}")
        unknown = [name for name in self.augment_policy if name not in AUGMENTATIONS]
        if unknown:
            raise GanError(f"--augment: unknown augmentation(s) {unknown}; use 'none' or a comma-separated "
                           f"subset of {','.join(AUGMENTATIONS)}")
        if self.compile_mode != "default" and not self.compile:
            raise GanError(f"--compile-mode {self.compile_mode} needs --compile")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise GanError(f"--device must be one of {DEVICES} or cuda:N, got {self.device!r}")


@dataclass
class DataConfig:
    """Where a phase's images came from, as recorded in the run folder and checkpoints."""

    path: str = ""
    kind: str = ""  # "labelled-folder", "unlabelled-folder" or "csv-manifest"
    num_images: int = 0
    num_skipped: int = 0
    genres: list[str] = field(default_factory=list)
    images_per_genre: dict[str, int] = field(default_factory=dict)
    # Set when the images are procedural demo covers (`python -m gan demo-data` leaves a marker):
    # {"seed": S, "size": P}, so a held-out draw of the same covers can serve as the real baseline.
    demo_covers: dict[str, int] = field(default_factory=dict)
    # Covers per pair of tags they carry together ("jazz+electronic": 31), for data whose covers may
    # have several genres (gan.tags); empty for single-genre data.
    tag_pairs: dict[str, int] = field(default_factory=dict)

    def validate(self) -> None:
        check_fields(self)
        check_genre_names(self.genres, "genres")
        unknown = sorted(set(self.images_per_genre) - set(self.genres))
        if unknown:
            raise GanError(f"images_per_genre names genre(s) {unknown[:3]} that are not in genres")


@dataclass(frozen=True)
class Between:
    """Inclusive bounds of a number, or of the length of a string, list or dict."""

    low: float | None = None
    high: float | None = None


# The values each field may take beyond its type: a `Between` or a tuple of choices. Sizes are
# bounded so that no file can make us allocate without limit; fields not listed are checked for
# type only (and strings, lists and dicts for length, MAX_TEXT and MAX_ITEMS).
LIMITS: dict[type, dict[str, Between | tuple]] = {
    ModelConfig: {
        "resolution": SUPPORTED_RESOLUTIONS,
        "latent_dim": Between(1, 4096),
        "width": Between(4, 1024),
        "generator_min_channels": Between(0, 8192),
        "coordinate_frequencies": Between(0, 8),
        "discriminator_min_channels": Between(0, 8192),
        "genre_embedding_dim": Between(1, 4096),
        "genres": Between(0, MAX_GENRES),
        "architecture": ARCHITECTURES,
        "genre_classifier": GENRE_CLASSIFIERS,
        "upsample": UPSAMPLING,
    },
    TrainConfig: {
        "phase": PHASES,
        "steps": Between(1, 10**9),
        "batch_size": Between(1, 65536),
        "genre_loss_weight": Between(0),
        "mode_seeking_weight": Between(0),
        "mode_seeking_scale": Between(0, 4096),
        "r1_gamma": Between(0, 1e6),
        "d_steps": Between(1, 100),
        "lecam_weight": Between(0, 1e6),
        "seed": Between(-2**32, 2**32),  # seed * 1_000_003 + step stays within torch's 64 bits
        "precision": PRECISIONS,
        "compile_mode": COMPILE_MODES,
        "log_every": Between(1),
        "sample_every": Between(1),
        "checkpoint_every": Between(1),
        "eval_every": Between(0),
        "eval_covers": Between(2, 10_000),
        "keep_checkpoints": Between(1),
        "sample_rows": Between(1, 256),
        "max_loss": Between(0),
    },
    DataConfig: {
        "num_images": Between(0),
        "num_skipped": Between(0),
        "genres": Between(0, MAX_GENRES),
        "images_per_genre": Between(0, MAX_GENRES),
    },
}

T = TypeVar("T")

# Fields added after configs were first written whose default changed what a model or run does: a
# file without the field was written by a version that did what these values say.
LEGACY_VALUES: dict[type, dict[str, Any]] = {
    ModelConfig: {"architecture": "dcgan", "pixel_noise": False, "projection": False, "genre_classifier": "softmax",
                  "coordinate_channels": False, "generator_spectral_norm": False, "discriminator_min_channels": 0,
                  "coordinate_frequencies": 0, "coordinate_rings": False, "coordinate_genre_gains": False,
                  "noise_in_norms": False, "upsample": "nearest"},
    TrainConfig: {"augment": "none", "mode_seeking_weight": 0.0, "lr_decay_from": 1.0, "mode_seeking_cap": False,
                  "genre_groups": False, "tag_sets": False, "mode_seeking_scale": 0,
                  "r1_gamma": 0.0, "d_steps": 1, "lecam_weight": 0.0},
}


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: Any, source: str = "config", where: str = "") -> T:
    """Build a dataclass from JSON data, checking every field's type and limits and then the
    class's `validate()`; a mismatch is one GanError naming `source` and the field.

    Fields missing from `data` take their defaults (files written before a field existed);
    unknown fields are refused (a typo would otherwise be ignored). `where` prefixes field names
    in messages (e.g. "model." for the `model` object of a checkpoint's config.json).
    """
    within = f" in {where.rstrip('.')}" if where else ""
    if not isinstance(data, dict):
        raise GanError(f"{source}: {where.rstrip('.') or 'the file'} must be a JSON object, got {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise GanError(f"{source}: unknown field(s) {unknown[:5]}{within}")
    data = {**LEGACY_VALUES.get(cls, {}), **data}
    missing = [name for name, f in fields.items() if name not in data and f.init
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise GanError(f"{source}: missing field(s) {missing}{within}")
    config = cls(**{name: _checked(value, hints[name], source, where + name) for name, value in data.items()})
    check_fields(config, source, where)
    if hasattr(config, "validate"):
        try:
            config.validate()
        except GanError as error:
            raise GanError(f"{source}: {where.rstrip('.') + ': ' if where else ''}{error}") from None
    return config


def check_fields(config: Any, source: str | None = None, where: str = "") -> None:
    """Check each field of a config dataclass against its annotation and `LIMITS`.

    Messages name the field as `source: where + name` (a file and the path to the field in it),
    or as its command line flag (`--latent-dim`) when there is no source.
    """
    hints = typing.get_type_hints(type(config))
    limits = LIMITS.get(type(config), {})
    for f in dataclasses.fields(config):
        label = where + f.name if source is not None else "--" + f.name.replace("_", "-")
        value = getattr(config, f.name)
        _checked(value, hints[f.name], source, label)
        _check_limit(value, limits.get(f.name), source, label)


def _checked(value: Any, kind: Any, source: str | None, label: str) -> Any:
    """`value` if it has the type `kind` (ints widened to float, nested dataclasses built)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"{label}: no check for the annotation {kind}")  # a programming error
        return _checked(value, options[0], source, label)
    if dataclasses.is_dataclass(kind):
        if isinstance(value, kind):
            return value
        return from_dict(kind, value, source or "config", label + ".")
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    elif origin is list:
        ok = isinstance(value, list)
        if ok:
            _check_limit(value, Between(0, MAX_ITEMS), source, label)
            value = [_checked(v, args[0], source, f"{label}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        ok = isinstance(value, dict)
        if ok:
            _check_limit(value, Between(0, MAX_ITEMS), source, label)
            value = {_checked(k, args[0], source, f"{label} key"): _checked(v, args[1], source, f"{label}[{k!r}]")
                     for k, v in value.items()}
    else:
        raise TypeError(f"{label}: no check for the annotation {kind}")  # a programming error
    if not ok:
        _fail(source, f"{label} must be {_describe(kind)}, got {_show(value)}")
    if kind is str:
        _check_limit(value, Between(0, MAX_TEXT), source, label)
    return value


def _check_limit(value: Any, limit: Between | tuple | None, source: str | None, label: str) -> None:
    if limit is None:
        return
    if isinstance(limit, tuple):
        if value not in limit:
            _fail(source, f"{label} must be one of {limit}, got {_show(value)}")
        return
    sized = isinstance(value, (str, list, dict))
    size = len(value) if sized else value
    unit = (" characters" if isinstance(value, str) else " entries") if sized else ""
    if limit.low is not None and size < limit.low:
        _fail(source, f"{label} must not be negative, got {_show(size)}" if limit.low == 0 and not sized else
              f"{label} must be at least {limit.low}{unit}, got {_show(size)}")
    if limit.high is not None and size > limit.high:
        _fail(source, f"{label} must be at most {limit.high}{unit}, got {_show(size)}")


def _fail(source: str | None, message: str) -> None:
    raise GanError(f"{source}: {message}" if source else message)


def _describe(kind: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a finite number", str: "a string"}
    return names.get(kind) or {list: "a list", dict: "a JSON object"}.get(typing.get_origin(kind), str(kind))


def _show(value: Any, width: int = 60) -> str:
    """A value for a one-line message: its repr, cut short (a list or dict by its length)."""
    text = f"a {type(value).__name__} of {len(value)}" if isinstance(value, (list, dict)) else repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def check_genre_names(names: Sequence[str], source: str) -> None:
    """Refuse genre names that cannot safely be folder names, repeats and too many of them.

    Genres come from folder names, CSV manifests, archive paths, packs and checkpoints, and become
    folders (`generate` writes OUT/<genre>/), so the same rule applies wherever they enter: letters
    and digits (any script), space and - _ & + . ' ; neither starting nor ending with a dot or a space
    (so never '.', '..' or a hidden folder); unique even ignoring case (one folder on macOS and Windows).
    """
    if len(names) > MAX_GENRES:
        raise GanError(f"{source}: {len(names)} genres; at most {MAX_GENRES} are supported")
    seen: dict[str, str] = {}
    for name in names:
        if not is_genre_name(name):
            raise GanError(f"{source}: genre {_show(name)} cannot be a folder name; use 1 to {MAX_GENRE_NAME} "
                           f"letters, digits, spaces or {GENRE_NAME_PUNCTUATION.strip()}, neither starting nor "
                           "ending with a dot or a space")
        twin = seen.get(name.casefold())
        if twin is not None:
            raise GanError(f"{source}: genre {name!r} appears twice" if twin == name else
                           f"{source}: genres {twin!r} and {name!r} differ only in case (one folder on macOS "
                           "and Windows)")
        seen[name.casefold()] = name


def is_genre_name(name: Any) -> bool:
    # Combining marks count as letters: macOS may spell "música" with a separate accent.
    return (isinstance(name, str) and 1 <= len(name) <= MAX_GENRE_NAME and not name.startswith((".", " "))
            and not name.endswith((".", " ")) and all(c.isalnum() or c in GENRE_NAME_PUNCTUATION
                                                      or unicodedata.category(c).startswith("M") for c in name))
