"""One training phase of the AC-GAN: D step, G step, log; checkpoints, samples and resume around it.

Losses: the hinge loss for the adversarial part (Lim & Ye, 2017; Miyato et al., 2018), and
cross-entropy for the genre. The discriminator learns genres from real covers only; the
generator is rewarded when its fake is classified as the genre it was asked for. Training D's
classifier on fakes too (as in the original AC-GAN) lets it learn the generator's shortcuts,
which pushes G towards easy-to-classify, less varied images.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torchvision.utils import save_image
from tqdm import tqdm

from gan.atomic import write_folder_atomically
from gan.checkpoint import (
    DISCRIMINATOR_FILE,
    GENERATOR_FILE,
    STATE_JSON_FILE,
    STATE_TENSORS_FILE,
    checkpoint_config,
    load_tensors,
    load_weights,
    optimizer_from_files,
    optimizer_to_files,
    read_checkpoint_config,
    read_json,
)
from gan.config import R1_EVERY, ModelConfig, TrainConfig
from gan.data.batches import RandomBatches, rank_slice, tag_weights
from gan.data.folders import ImageSet
from gan.errors import GanError
from gan.models import Discriminator, Generator, build_discriminator, build_generator, carry_over_weights
from gan.train.augment import DiffAugment
from gan.train.device import autocast, resolve_device, resolve_precision
from gan.train.distributed import World, all_mean, any_rank, barrier, check_in_sync, convert_batchnorm, current_world
from gan.train.quality import SCORE, QualityTracker, too_few_covers
from gan.train.stopping import StopRequest, TrainingStopped, stop_between_steps

if TYPE_CHECKING:
    from gan.train.run import RunFolder

log = logging.getLogger(__name__)
BATCHNORM_CALIBRATION_BATCHES = 16


class TrainingDiverged(GanError):
    """The loss became NaN, infinite or huge; the last good checkpoint is kept."""


@dataclass
class Networks:
    generator: Generator
    discriminator: Discriminator
    ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer


def build_networks(model: ModelConfig, train: TrainConfig, device: torch.device,
                   world: World | None = None) -> Networks:
    torch.manual_seed(train.seed)  # the initial weights depend on the seed alone
    generator = build_generator(model).to(device)
    discriminator = build_discriminator(model).to(device)
    if train.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    # The EMA copy keeps plain batch norm: rank 0 alone samples and calibrates it.
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if train.ema_decay > 0 else None
    if world is not None and world.distributed:
        generator = convert_batchnorm(generator, device)
    betas = (train.beta1, train.beta2)
    return Networks(generator, discriminator, ema,
                    torch.optim.Adam(generator.parameters(), lr=train.lr_g, betas=betas),
                    torch.optim.Adam(discriminator.parameters(), lr=train.lr_d, betas=betas))


def initialise_from(nets: Networks, checkpoint: Path) -> list[str]:
    """Seed a new phase with an earlier checkpoint's weights (pre-trained or any earlier run).

    An exported checkpoint (`python -m gan export`, the bundled demo) holds the EMA generator
    alone: the generator starts from it and the discriminator starts fresh.
    """
    # A foreign or broken folder fails here, with its name.
    source_genres = read_checkpoint_config(checkpoint)["model"].genres
    genre_rows = genre_rows_by_name(source_genres, nets.generator.config.genres, checkpoint)
    ema_g = live_g = load_tensors(checkpoint / GENERATOR_FILE, "generator weights")
    state_file = checkpoint / STATE_TENSORS_FILE
    if state_file.is_file():  # prefer the optimiser-trained G (it pairs with D); EMA seeds the EMA
        state = load_tensors(state_file, "training state")
        live = {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}
        if live:
            live_g = live
    fresh = carry_over_weights(nets.generator, live_g, genre_rows)
    if (checkpoint / DISCRIMINATOR_FILE).is_file():
        fresh += carry_over_weights(nets.discriminator, load_tensors(checkpoint / DISCRIMINATOR_FILE,
                                                                     "discriminator weights"), genre_rows)
    else:
        fresh.append("discriminator")
    if nets.ema is not None:
        nets.ema.load_state_dict(nets.generator.state_dict())
        carry_over_weights(nets.ema, ema_g, genre_rows)
    return fresh


def genre_rows_by_name(source: list[str], target: list[str], checkpoint: Path) -> list[int | None]:
    """For each genre of the new model, its row in the source model's per-genre tensors (None: new).

    Genres are matched by name, never by position: a model of classical, pop and rock seeding one
    of folk, jazz and rock hands over rock's rows alone, wherever rock sits in either list.
    """
    rows = [source.index(genre) if genre in source else None for genre in target]
    if source and target:
        carried = [g for g in target if g in source]
        log.info("genres from %s: carried over by name: %s; new, freshly initialised: %s; not in this run: %s",
                 checkpoint, ", ".join(carried) or "none", ", ".join(g for g in target if g not in source) or "none",
                 ", ".join(g for g in source if g not in target) or "none")
    return rows


def top_genre_is_a_tag(logits: torch.Tensor, genres: torch.Tensor) -> torch.Tensor:
    """Whether the classifier's top genre is the cover's genre (indices) or one of its tags (weights)."""
    top = logits.argmax(1)
    return genres.gather(1, top[:, None]).squeeze(1) > 0 if genres.is_floating_point() else top == genres


def coarse(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Images averaged down to `scale` pixels a side (unchanged when 0 or already that small).

    What the mode-seeking term compares: per-pixel grain averages out, so a generator cannot look
    varied by adding grain (the grain layer's strength grew with every run's length, in genres
    whose real covers have none, while the term at full resolution counted it as variety).
    """
    if scale <= 0 or images.shape[-1] <= scale:
        return images
    return F.adaptive_avg_pool2d(images, scale)


def ema_decay_at(step: int, decay: float, rampup: float) -> float:
    """The EMA's decay at `step` of a phase: an average over about the last `rampup` of the steps so far
    (so that a short run still gets a useful one), `decay` at most; `rampup` 0 is `decay` throughout."""
    if rampup == 0:
        return decay
    return min(decay, (1 + step) / (1 + step + 1 / rampup))


def mode_seeking_ratio(fakes: torch.Tensor, noise: torch.Tensor, scale: int = 0) -> torch.Tensor:
    """For consecutive pairs of fakes (same genre, different noise): how far apart the images
    (`coarse` at `scale`) are for how far apart their noise is (MSGAN, Mao et al., 2019), one value
    per pair.

    The generator is rewarded for keeping this high (its loss adds 1 / ratio): a generator that
    ignores its noise and draws one cover per genre has a ratio near 0 and pays for it. Per-pair
    values, averaged, keep N ranks' losses equal to one process's.
    """
    fakes = coarse(fakes.float(), scale)
    return (fakes[0::2] - fakes[1::2]).abs().mean(dim=(1, 2, 3)) / noise_gaps(noise)


def noise_gaps(noise: torch.Tensor) -> torch.Tensor:
    """The mean absolute difference of each consecutive pair of noise vectors."""
    return (noise[0::2] - noise[1::2]).abs().mean(dim=1)


def capped_ratio(ratio: torch.Tensor, noise: torch.Tensor, cap: torch.Tensor) -> torch.Tensor:
    """`mode_seeking_ratio` with each pair's image distance bounded by `cap` (one distance per
    pair): pairs already that far apart get no push."""
    return torch.minimum(ratio, cap / noise_gaps(noise))


def real_cover_gaps(images: np.ndarray, labels: np.ndarray | None, groups: int, seed: int,
                    pairs: int = 512, scale: int = 0) -> torch.Tensor:
    """How different two real covers of each genre are: the mean per-pixel distance (pixels in
    [-1, 1], as G draws them, `coarse` at `scale` as the mode-seeking term sees them) over `pairs`
    random pairs of a genre's covers; one value for all covers when `labels` is None. A genre with
    fewer than two covers gets infinity (no cap).

    Why a cap (`--mode-seeking-cap`): without one the term pushes fakes apart without limit, and
    the demo checkpoint's covers of every genre differ more than real ones do, most in the genres
    whose real covers are nearly one image and whose realism is worst (pair distance 0.29 against
    0.19 for classical, 0.42 against 0.29 for metal). Capped, seed 0's classical covers came closer
    to real ones (realism 8.7 -> 5.3) but the rest got worse on both seeds (README, row 7), so the
    cap is off by default. The pairs are drawn with a fixed seed: every rank and resume agrees.
    """
    rng = np.random.default_rng(seed)
    members = [np.arange(len(images))] if labels is None else [np.flatnonzero(labels == g) for g in range(groups)]
    gaps = []
    for indices in members:
        if len(indices) < 2:
            gaps.append(math.inf)
            continue
        first = rng.choice(indices, pairs)
        second = rng.choice(indices, pairs)
        keep = first != second
        a = coarse(torch.from_numpy(np.asarray(images[first[keep]])).float(), scale)
        b = coarse(torch.from_numpy(np.asarray(images[second[keep]])).float(), scale)
        gaps.append(float((a - b).abs().mean()) / 127.5)  # uint8 distance on G's [-1, 1] scale
    return torch.tensor(gaps)


def r1_penalty(real_scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The squared norm of D's gradient with respect to each real cover, averaged over the covers
    (Mescheder et al., 2018). `real` must require grad and `real_scores` be D's scores of it; the
    result keeps its graph, so that D's loss can be pushed down through it."""
    (gradient,) = torch.autograd.grad(real_scores.float().sum(), real, create_graph=True)
    return gradient.float().square().sum(dim=tuple(range(1, gradient.dim()))).mean()


# How fast LeCam's anchors (moving averages of D's mean scores of real covers and of fakes) follow
# the scores: the decay of Tseng et al.'s code.
LECAM_ANCHOR_DECAY = 0.99


def lecam_penalty(real_scores: torch.Tensor, fake_scores: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """LeCam regularisation (Tseng et al., 2021): the squared amount by which D scores real covers
    above the fakes' moving average, plus that by which it scores fakes below the real covers'.

    `anchors` holds the two moving averages (real, fake). A D that keeps pushing its scores of a
    small set of covers apart is memorising them; this keeps them from drifting far apart (the
    paper shows the regularised game minimises a LeCam divergence, which it argues suits few
    images better). It keeps its graph through the scores, not through the anchors.
    """
    real_anchor, fake_anchor = anchors[0], anchors[1]
    return (F.relu(real_scores.float() - fake_anchor).square().mean()
            + F.relu(real_anchor - fake_scores.float()).square().mean())


def learning_rate_factor(step: int, steps: int, decay_from: float) -> float:
    """What the learning rates are multiplied by for the step after `step` steps: 1 until `decay_from`
    of the phase, then falling linearly to 0 at its last step.

    Computed from the step alone, so a resumed run continues the schedule where it stopped.
    """
    start = decay_from * steps
    if decay_from >= 1 or step < start:
        return 1.0
    return max(0.0, (steps - step) / (steps - start))


def stddev_group(batch_size: int, local: slice, largest: int = 4) -> int:
    """Images per minibatch-stddev group: the largest size up to `largest` that divides the global
    batch. Each rank must hold whole groups, or N processes would group (and train) differently
    from one."""
    group = next(g for g in range(min(largest, batch_size), 0, -1) if batch_size % g == 0)
    if (local.stop - local.start) % group or local.start % group:
        processes = batch_size // (local.stop - local.start)
        raise GanError(f"--batch-size {batch_size}: each of the {processes} processes must hold whole groups of "
                       f"{group} images for the discriminator's minibatch statistics; use a multiple of "
                       f"{group * processes}")
    return group


class PhaseTrainer:
    """Trains one phase (pre-training or fine-tuning) and writes its outputs into the run folder."""

    def __init__(self, run: RunFolder, model: ModelConfig, train: TrainConfig, data: ImageSet,
                 progress: bool | None = None, world: World | None = None):
        model.validate()
        train.validate()
        self.run, self.model_config, self.config, self.data = run, model, train, data
        self.phase = train.phase
        self.conditional = model.num_genres > 0
        if self.conditional and data.labels is None:
            raise GanError(f"{data.description.path}: fine-tuning needs genre labels (a folder per genre or a CSV)")
        if self.conditional and train.tag_sets and model.genre_classifier != "softmax":
            raise GanError(f"--tag-sets needs --genre-classifier softmax: the {model.genre_classifier} classifier "
                           "takes one genre per cover, not tag weights")
        self.device = resolve_device(train.device)
        self.world = world if world is not None else current_world()
        local_batch = train.batch_size // self.world.world_size
        self.dtype = resolve_precision(train.precision, self.device, local_batch)
        group = stddev_group(train.batch_size, rank_slice(train.batch_size, self.world.rank, self.world.world_size))
        # Fakes are drawn in runs of one genre too (train_step), when real covers are.
        self.genre_group = group if self.conditional and train.genre_groups else 1
        self.batches = RandomBatches(data.images, data.labels if self.conditional else None, train.batch_size,
                                     train.seed + 1, self.device, self.world.rank, self.world.world_size,
                                     train.channels_last, group_size=self.genre_group,
                                     tags=data.tags if self.conditional and train.tag_sets else None)
        # Multi-tag data: fakes are asked for the tag sets real covers carry, as often as they carry them.
        self.fake_tag_sets: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.conditional and train.tag_sets and data.tags is not None:
            sets, counts = np.unique(data.tags, axis=0, return_counts=True)
            self.fake_tag_sets = (torch.from_numpy(tag_weights(sets)).to(self.device),
                                  torch.from_numpy(counts).float().to(self.device))
        self.nets = build_networks(model, train, self.device, self.world)
        self.nets.discriminator.stddev_group = group
        self.genre_head = self.nets.discriminator.genre_head  # its loss and logits read D's genre output
        self.noise_rng = torch.Generator(self.device).manual_seed(train.seed + 2)
        if train.mode_seeking_weight > 0 and (local_batch % 2 or self.batches.local.start % 2):
            raise GanError(f"--mode-seeking-weight pairs covers within a batch: --batch-size {train.batch_size} "
                           f"must give each of the {self.world.world_size} process(es) an even share")
        # The distance at which the mode-seeking term stops pushing a pair of fakes apart, per genre.
        self.pair_gap_caps = (real_cover_gaps(data.images, data.labels if self.conditional else None,
                                              model.num_genres, train.seed + 5,
                                              scale=train.mode_seeking_scale).to(self.device)
                              if train.mode_seeking_weight > 0 and train.mode_seeking_cap else None)
        self.augment = DiffAugment(train.augment_policy, torch.Generator(self.device).manual_seed(train.seed + 4),
                                   train.batch_size, self.batches.local)
        self.fixed_noise = torch.randn(train.sample_rows, model.latent_dim,
                                       generator=torch.Generator().manual_seed(train.seed + 3)).to(self.device)
        self.step = 0
        self.last_r1 = torch.zeros((), device=self.device)  # logged between R1 steps; 0 before the first
        # LeCam's moving averages of D's mean score of real covers and of fakes; NaN until D's first step.
        self.lecam_anchors = torch.full((2,), math.nan, device=self.device)
        self.quality: QualityTracker | None = None  # built at the first evaluation (it trains a judge)
        self.quality_skipped: str | None = None  # why quality cannot be tracked ("" when it can), once known
        self.best_score = self._best_score_so_far()
        self.progress = (sys.stderr.isatty() if progress is None else progress) and self.world.is_main
        # g_step and d_step train (wrapped for gradient averaging across ranks); d_judge scores the
        # fakes in G's step, where D's own weights take no gradient and need no averaging.
        self.g_step, self.d_step = self.nets.generator, self.nets.discriminator
        if self.world.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_step = DistributedDataParallel(self.nets.generator, device_ids=device_ids)
            self.d_step = DistributedDataParallel(self.nets.discriminator, device_ids=device_ids)
        self.d_judge = self.nets.discriminator
        if train.compile:
            mode = train.compile_mode
            self.g_step, self.d_step = torch.compile(self.g_step, mode=mode), torch.compile(self.d_step, mode=mode)
            self.d_judge = torch.compile(self.nets.discriminator, mode=mode) if self.world.distributed else self.d_step
        # CUDA graphs replay into memory of their own: each step starts a new generation, so the
        # outputs of the previous step's graphs may be overwritten (none is kept past its step).
        self.graphs = train.compile and train.compile_mode == "reduce-overhead"

    # --- the textbook part -------------------------------------------------------------------

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's slice of the next global batch."""
        return self.batches.next()

    def train_step(self, real: torch.Tensor, real_labels: torch.Tensor | None) -> dict[str, torch.Tensor]:
        G, cfg = self.g_step, self.config
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        for _ in range(cfg.d_steps - 1):  # D's extra updates, each with covers and fakes of its own
            self.extra_d_update(*self.next_batch())
        noise, fake_labels = self.draw_noise_and_genres()
        with autocast(self.device, self.dtype):
            fake = G(noise, fake_labels)  # with its graph: the G step below reuses it
        r1_due = cfg.r1_gamma > 0 and self.step % R1_EVERY == 0
        d_loss, d_adv, d_genre, real_score, fake_score, real_genre = self.d_update(real, real_labels, fake,
                                                                                  fake_labels, r1_due)

        # G step: fool D, and be recognised as the genre asked for. D's weights need no gradient here.
        self.nets.discriminator.requires_grad_(False)
        with autocast(self.device, self.dtype):
            g_score, fake_genre = self.d_judge(self.augment(fake), fake_labels)
        g_adv = -g_score.float().mean()
        g_genre = self.genre_head.loss(fake_genre, fake_labels) if self.conditional else g_adv.new_zeros(())
        g_loss = g_adv + cfg.genre_loss_weight * g_genre
        if cfg.mode_seeking_weight > 0:
            g_spread = mode_seeking_ratio(fake, noise, scale=cfg.mode_seeking_scale)
            caps = self.pair_caps(fake_labels, len(g_spread))
            pushed = g_spread if caps is None else capped_ratio(g_spread, noise, caps)
            g_loss = g_loss + cfg.mode_seeking_weight * (1 / (pushed + 1e-5)).mean()
        self.nets.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.nets.opt_g.step()
        self.update_ema()

        with torch.no_grad():
            stats = {
                "d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_adv": d_adv.detach(),
                "g_adv": g_adv.detach(), "d_genre": d_genre.detach(), "g_genre": g_genre.detach(),
                "d_real_acc": (real_score > 0).float().mean(), "d_fake_acc": (fake_score < 0).float().mean(),
            }
            if cfg.mode_seeking_weight > 0:
                stats["g_spread"] = g_spread.mean()  # uncapped: how varied G is
            if cfg.r1_gamma > 0:
                stats["d_r1"] = self.last_r1.detach()  # as of the latest step that measured it
            if cfg.lecam_weight > 0:
                stats["d_lecam"] = lecam_penalty(real_score, fake_score, self.lecam_anchors)
            if self.conditional:
                stats["genre_acc"] = top_genre_is_a_tag(self.genre_head.logits(real_genre), real_labels).float().mean()
                stats["fake_genre_acc"] = top_genre_is_a_tag(self.genre_head.logits(fake_genre),
                                                             fake_labels).float().mean()
        return stats

    def draw_noise_and_genres(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Noise and genres for the fakes of one global batch, sliced like the data: N ranks compute
        what one process would."""
        n = self.config.batch_size
        noise = torch.randn(n, self.model_config.latent_dim, generator=self.noise_rng,
                            device=self.device)[self.batches.local]
        fake_labels = None
        if self.conditional:
            # (Pairing is a no-op with genre groups: they have an even size then.)
            fake_labels = self.draw_fake_genres(n, self.noise_rng, self.genre_group,
                                                pairs=self.config.mode_seeking_weight > 0)[self.batches.local]
        return noise, fake_labels

    def d_update(self, real: torch.Tensor, real_labels: torch.Tensor | None, fake: torch.Tensor,
                 fake_labels: torch.Tensor | None, r1_due: bool = False) -> tuple[torch.Tensor, ...]:
        """One step of D: real covers high, fakes low, and the genre of real covers (plus R1 when due).
        Returns the loss, its parts, and the scores and genre output the step's statistics need."""
        D, cfg = self.d_step, self.config
        self.nets.discriminator.requires_grad_(True)
        if r1_due:  # the penalty differentiates D's scores with respect to the real covers
            real = real.detach().requires_grad_(True)
        with autocast(self.device, self.dtype):
            if cfg.compile:
                real_score, fake_score, real_genre = self.judge_real_and_fake_in_one_pass(D, real, real_labels,
                                                                                           fake, fake_labels)
            else:
                real_score, real_genre = D(self.augment(real), real_labels)
                fake_score, _ = D(self.augment(fake.detach()), fake_labels)
        d_adv = F.relu(1 - real_score.float()).mean() + F.relu(1 + fake_score.float()).mean()
        d_genre = self.genre_head.loss(real_genre, real_labels) if self.conditional else real_score.new_zeros(())
        d_loss = d_adv + cfg.genre_loss_weight * d_genre
        if r1_due:
            self.last_r1 = r1_penalty(real_score, real)
            d_loss = d_loss + cfg.r1_gamma / 2 * R1_EVERY * self.last_r1
        if cfg.lecam_weight > 0:
            self.update_lecam_anchors(real_score, fake_score)
            d_loss = d_loss + cfg.lecam_weight * lecam_penalty(real_score, fake_score, self.lecam_anchors)
        self.nets.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.nets.opt_d.step()
        return d_loss, d_adv, d_genre, real_score, fake_score, real_genre

    @torch.no_grad()
    def update_lecam_anchors(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> None:
        """Move LeCam's anchors towards this step's mean scores over the whole global batch (so N
        processes keep the anchors one process would); D's first step sets them."""
        means = all_mean({"real": real_scores.float().mean(), "fake": fake_scores.float().mean()})
        now = torch.stack([means["real"], means["fake"]])
        first = self.lecam_anchors.isnan()
        self.lecam_anchors = torch.where(first, now, torch.lerp(self.lecam_anchors, now, 1 - LECAM_ANCHOR_DECAY))

    def extra_d_update(self, real: torch.Tensor, real_labels: torch.Tensor | None) -> None:
        """A D step with fakes of its own, drawn without a graph (no G step follows it)."""
        noise, fake_labels = self.draw_noise_and_genres()
        with torch.no_grad(), autocast(self.device, self.dtype):
            fake = self.g_step(noise, fake_labels)
        self.d_update(real, real_labels, fake, fake_labels)

    def draw_fake_genres(self, n: int, rng: torch.Generator, runs: int = 1, pairs: bool = False) -> torch.Tensor:
        """What n fakes of a global batch are asked to be: genre indices drawn uniformly, or on
        multi-tag data tag sets (weight rows) drawn as often as real covers carry them. `runs`:
        consecutive fakes share one (genre groups); `pairs`: fakes 2k and 2k+1 share one (mode seeking)."""
        if self.fake_tag_sets is None:
            drawn = torch.randint(self.model_config.num_genres, (n // runs,), generator=rng, device=self.device)
        else:
            drawn = torch.multinomial(self.fake_tag_sets[1], n // runs, replacement=True, generator=rng)
        drawn = drawn.repeat_interleave(runs)
        if pairs:
            drawn[1::2] = drawn[0::2]  # consecutive fakes pair up: same genre, other noise
        return drawn if self.fake_tag_sets is None else self.fake_tag_sets[0][drawn]

    def pair_caps(self, fake_labels: torch.Tensor | None, pairs: int) -> torch.Tensor | None:
        """The mode-seeking cap of each pair of fakes: its (main) genre's real-cover distance."""
        if self.pair_gap_caps is None:
            return None
        if not self.conditional:
            return self.pair_gap_caps.expand(pairs)
        genres = fake_labels[0::2]
        return self.pair_gap_caps[genres.argmax(1) if genres.is_floating_point() else genres]

    def set_learning_rates(self) -> None:
        factor = learning_rate_factor(self.step, self.config.steps, self.config.lr_decay_from)
        for optimizer, base in ((self.nets.opt_g, self.config.lr_g), (self.nets.opt_d, self.config.lr_d)):
            for group in optimizer.param_groups:
                group["lr"] = base * factor

    def judge_real_and_fake_in_one_pass(self, D, real: torch.Tensor, real_labels: torch.Tensor | None,
                                        fake: torch.Tensor, fake_labels: torch.Tensor | None):
        """D's step for a compiled D: real and fake covers in one forward pass.

        Each spectral norm's power iteration updates its vectors in place in every training-mode
        pass. Eager PyTorch clones them for the backward; a compiled graph saves the buffers
        themselves, so a second pass before the backward breaks it. One pass does one power
        iteration per D step (as in Miyato et al.); minibatch-stddev groups stay within each half,
        since the local batch holds whole groups. Eager training keeps the two passes the recipe was
        measured with: the one run of the whole command with one pass (and two other changes)
        measured worse (README, "What each change did", row 5).
        """
        scores, genre = D(torch.cat([self.augment(real), self.augment(fake.detach())]),
                          torch.cat([real_labels, fake_labels]) if self.conditional else None)
        local = len(real)
        return scores[:local], scores[local:], genre[:local] if genre is not None else None

    @torch.no_grad()
    def update_ema(self) -> None:
        ema = self.nets.ema
        if ema is None:
            return
        decay = ema_decay_at(self.step, self.config.ema_decay, self.config.ema_rampup)
        ema_params = list(ema.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in self.nets.generator.parameters()], 1 - decay)
        for ema_buffer, buffer in zip(ema.buffers(), self.nets.generator.buffers()):
            ema_buffer.copy_(buffer)

    # --- the loop ----------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train up to `config.steps`; return the final checkpoint folder.

        Ctrl-C or SIGTERM ends the step in flight, checkpoints it and raises TrainingStopped
        (see gan.train.stopping); under torchrun every rank stops after the same step.
        """
        cfg = self.config
        sums: dict[str, torch.Tensor] = {}
        window_start, window_steps = time.perf_counter(), 0
        started, first_step, saved_step = time.perf_counter(), self.step, None
        bar = tqdm(total=cfg.steps, initial=self.step, desc=self.phase, disable=not self.progress,
                   dynamic_ncols=True, unit="step")
        self.nets.generator.train()
        self.nets.discriminator.train()
        # However the loop ends, the bar is closed and the batches' prefetching thread stopped.
        with stop_between_steps() as stop_request, bar, contextlib.closing(self.batches):
            while self.step < cfg.steps:
                self.set_learning_rates()
                stats = self.train_step(*self.next_batch())
                self.step += 1
                window_steps += 1
                for key, value in stats.items():
                    sums[key] = sums[key] + value if key in sums else value.clone()
                bar.update(1)
                due_log = self.step % cfg.log_every == 0 or self.step == cfg.steps
                due_sample = self.step % cfg.sample_every == 0 or self.step == cfg.steps
                due_checkpoint = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
                if due_log or due_sample or due_checkpoint:
                    means = {k: v.item() / window_steps for k, v in all_mean(sums).items()}
                    self.check_finite(means)  # the same numbers on every rank: all stop together
                    if due_log:
                        elapsed = time.perf_counter() - window_start
                        row = {"phase": self.phase, "step": self.step, "time": time.time(),
                               **{k: round(v, 5) for k, v in means.items()},
                               "img_per_s": round(window_steps * cfg.batch_size / elapsed, 1)}
                        if self.world.is_main:
                            self.run.log_metrics(row)
                        bar.set_postfix(d=f"{means['d_loss']:.3f}", g=f"{means['g_loss']:.3f}",
                                        ips=f"{row['img_per_s']:.0f}")
                        if not self.progress and self.world.is_main:
                            self.log_progress(row, (time.perf_counter() - started) / (self.step - first_step))
                        sums, window_start, window_steps = {}, time.perf_counter(), 0
                    if due_sample and self.world.is_main:
                        self.save_samples()
                    if due_checkpoint:
                        check_in_sync(self.step, self.nets.generator, self.nets.discriminator)
                        if self.world.is_main:
                            self.save_checkpoint()
                        saved_step = self.step
                if self.evaluating and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                    self.evaluate()
                if any_rank(bool(stop_request)):
                    self.stop_after_step(stop_request, checkpointed=saved_step == self.step)
        return self.run.checkpoint_path(self.phase, self.step)

    def stop_after_step(self, request: StopRequest, checkpointed: bool) -> None:
        """End the phase on a stop request, right after a whole step: checkpoint it, then raise."""
        if not checkpointed:
            check_in_sync(self.step, self.nets.generator, self.nets.discriminator)
            if self.world.is_main:
                self.save_checkpoint()
        if self.world.is_main and not self.run.sample_path(self.phase, self.step).exists():
            self.save_samples()  # a stopped run shows where it stopped, not its last --sample-every step
        barrier()  # every rank leaves once rank 0 has written the checkpoint
        reason = request.signal.name if request.signal else "a stop request to another process"
        log.info("stopped by %s after %s step %d: checkpoint %s", reason, self.phase, self.step,
                 self.run.checkpoint_path(self.phase, self.step))
        raise TrainingStopped(f"stopped after {self.phase} step {self.step}")

    def log_progress(self, row: dict, seconds_per_step: float) -> None:
        """One line per --log-every steps where no progress bar is drawn (a log file, a scheduler)."""
        eta = _duration(seconds_per_step * (self.config.steps - self.step))
        log.info("%s step %d/%d  %.1f img/s  d_loss %.4f  g_loss %.4f  ETA %s", self.phase, self.step,
                 self.config.steps, row["img_per_s"], row["d_loss"], row["g_loss"], eta)

    def check_finite(self, means: dict[str, float]) -> None:
        bad = {k: v for k, v in means.items() if not math.isfinite(v) or abs(v) > self.config.max_loss}
        if bad:
            kept = self.run.checkpoints(self.phase)
            last = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint of this phase was written"
            detail = ", ".join(f"{k}={v:.4g}" for k, v in bad.items())
            raise TrainingDiverged(f"training diverged at {self.phase} step {self.step} ({detail}); {last}. "
                                   "Try a lower --lr-d/--lr-g or --precision fp32")

    @property
    def evaluating(self) -> bool:
        """Quality is tracked in fine-tuning, by rank 0 (the others go on to the next step's all-reduce),
        on data with enough covers per genre to measure it."""
        if not (self.conditional and self.config.eval_every > 0 and self.world.is_main):
            return False
        if self.quality_skipped is None:
            self.quality_skipped = too_few_covers(self.data.labels, self.model_config.genres) or ""
            if self.quality_skipped:
                log.warning("quality is not tracked: %s", self.quality_skipped)
        return not self.quality_skipped

    def evaluate(self) -> dict:
        """Score the EMA generator on the fixed sample, log it, and keep it as checkpoints/best if it is."""
        if self.quality is None:
            self.quality = QualityTracker(self.data.images, self.data.labels, self.model_config.genres,
                                          self.config.eval_covers, seed=self.config.seed + 5, device=self.device)
        self.calibrate_ema_batchnorm()
        row = self.quality.evaluate(self.sampling_generator())
        self.run.log_metrics({"phase": self.phase, "step": self.step, "time": time.time(), "kind": "eval", **row})
        log.info("quality at %s step %d: realism %.2f (mean over genres %.2f, worst %.2f), fidelity >= %.0f%%, "
                 "MS-SSIM gap <= %+.3f", self.phase, self.step, row["realism_ratio"], row["realism_mean"],
                 row["realism_worst"], 100 * row["fidelity_min"], row["msssim_gap_max"])
        if self.best_score is None or row[SCORE] < self.best_score:
            self.best_score = row[SCORE]
            write_folder_atomically(self.run.best_path, self.checkpoint_files(quality=row))
        return row

    def _best_score_so_far(self) -> float | None:
        best = self.run.best_path / "config.json"
        if not (self.conditional and best.is_file()):
            return None
        quality = read_json(best, "best checkpoint config").get("quality") or {}
        return quality.get(SCORE) if isinstance(quality.get(SCORE), (int, float)) else None

    # --- outputs -----------------------------------------------------------------------------

    def sampling_generator(self) -> Generator:
        return self.nets.ema if self.nets.ema is not None else self.nets.generator

    @torch.no_grad()
    def save_samples(self) -> Path:
        """Fixed noise x every genre: rows are noise vectors, columns are genres."""
        G = self.sampling_generator()
        was_training = G.training
        G.eval()
        rows, genres = self.config.sample_rows, max(1, self.model_config.num_genres)
        noise = self.fixed_noise.repeat_interleave(genres, dim=0)
        labels = (torch.arange(genres, device=self.device).repeat(rows) if self.conditional else None)
        images = G(noise, labels).float()
        G.train(was_training)
        path = self.run.sample_path(self.phase, self.step)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp-" + path.name)
        save_image(images, tmp, nrow=genres if self.conditional else int(math.sqrt(rows)) or 1,
                   normalize=True, value_range=(-1, 1), padding=1, format="png")
        tmp.replace(path)
        return path

    @torch.no_grad()
    def calibrate_ema_batchnorm(self) -> None:
        """Re-estimate the EMA generator's batch-norm statistics with its own weights.

        The running statistics copied from the live generator belong to slightly different
        weights; a few forward passes with a cumulative average make them match the EMA weights.
        """
        ema = self.nets.ema
        if ema is None:
            return
        rng = torch.Generator(self.device).manual_seed(self.config.seed * 1_000_003 + self.step)
        norms = [m for m in ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        ema.train()
        for _ in range(BATCHNORM_CALIBRATION_BATCHES):
            n = self.config.batch_size
            noise = torch.randn(n, self.model_config.latent_dim, generator=rng, device=self.device)
            ema(noise, self.draw_fake_genres(n, rng) if self.conditional else None)
        for m in norms:
            m.momentum = 0.1
        ema.eval()

    def checkpoint_files(self, quality: dict | None = None) -> dict:
        """The files of a checkpoint of the current step (the EMA's batch norm freshly calibrated)."""
        nets = self.nets
        self.calibrate_ema_batchnorm()
        tensors_g, plain_g = optimizer_to_files(nets.opt_g, "opt_g")
        tensors_d, plain_d = optimizer_to_files(nets.opt_d, "opt_d")
        state_tensors = {**tensors_g, **tensors_d,
                         **{f"generator.{k}": v for k, v in nets.generator.state_dict().items()},
                         "rng.data": self.batches.rng.get_state(), "rng.noise": self.noise_rng.get_state(),
                         "rng.augment": self.augment.rng.get_state()}
        if self.config.lecam_weight > 0:
            state_tensors["lecam.anchors"] = self.lecam_anchors.detach().cpu()
        state_plain = {"phase": self.phase, "step": self.step, "opt_g": plain_g, "opt_d": plain_d,
                       "device": self.device.type}
        config = checkpoint_config(self.model_config, self.config, self.data.description, self.phase, self.step,
                                   ema=nets.ema is not None)
        if quality is not None:
            config["quality"] = {"score": SCORE, **quality}
        return {
            "config.json": config,
            GENERATOR_FILE: self.sampling_generator().state_dict(),
            DISCRIMINATOR_FILE: nets.discriminator.state_dict(),
            STATE_TENSORS_FILE: state_tensors,
            STATE_JSON_FILE: state_plain,
        }

    def save_checkpoint(self) -> Path:
        path = self.run.checkpoint_path(self.phase, self.step)
        write_folder_atomically(path, self.checkpoint_files())
        self.run.prune_checkpoints(self.phase, self.config.keep_checkpoints, self.config.steps)
        return path

    def resume_from(self, checkpoint: Path) -> None:
        """Restore weights, optimiser moments, RNG streams and the step from a checkpoint."""
        nets = self.nets
        state = load_tensors(checkpoint / STATE_TENSORS_FILE, "training state")
        plain = read_json(checkpoint / STATE_JSON_FILE, "training state")
        if plain.get("phase") != self.phase:
            raise GanError(f"{checkpoint}: is a {plain.get('phase')} checkpoint, not {self.phase}")
        nets.generator.load_state_dict({k[len("generator."):]: v for k, v in state.items()
                                        if k.startswith("generator.")})
        load_weights(nets.discriminator, checkpoint / DISCRIMINATOR_FILE, "discriminator weights")
        if nets.ema is not None:
            load_weights(nets.ema, checkpoint / GENERATOR_FILE, "generator weights")
        optimizer_from_files(nets.opt_g, "opt_g", state, plain["opt_g"])
        optimizer_from_files(nets.opt_d, "opt_d", state, plain["opt_d"])
        saved_on = plain.get("device", "another kind of device")  # absent before it was recorded
        streams = {"rng.data": self.batches.rng, "rng.noise": self.noise_rng, "rng.augment": self.augment.rng}
        for name, rng in streams.items():
            if name in state:  # rng.augment is absent from checkpoints written before augmentation existed
                restore_rng(rng, state[name], f"{checkpoint / STATE_TENSORS_FILE}: {name}", saved_on)
            elif name != "rng.augment":
                raise GanError(f"{checkpoint / STATE_TENSORS_FILE}: no {name} (the checkpoint is damaged)")
        if self.config.lecam_weight > 0:
            if "lecam.anchors" not in state or state["lecam.anchors"].shape != (2,):
                raise GanError(f"{checkpoint / STATE_TENSORS_FILE}: no lecam.anchors, which a run with "
                               "--lecam-weight writes (the checkpoint is damaged)")
            self.lecam_anchors = state["lecam.anchors"].float().to(self.device)
        self.step = int(plain["step"])


def restore_rng(rng: torch.Generator, saved: torch.Tensor, what: str, saved_on: str) -> None:
    """Set a random stream to its saved state, also when the checkpoint was written on another device.

    CPU and CUDA generators are different algorithms (Mersenne Twister, Philox) whose states
    differ in size, so a stream cannot continue from one to the other. Resumed on the other kind
    of device, the stream restarts from a seed taken from the saved state, with a warning: the
    same checkpoint resumed twice still trains the same, but not as an uninterrupted run would.
    """
    current = rng.get_state()
    if saved.dtype != torch.uint8 or saved.dim() != 1:
        raise GanError(f"{what}: not a random-number generator state (the checkpoint is damaged)")
    if saved.numel() == current.numel():
        try:
            rng.set_state(saved.to(current.device))
        except RuntimeError as error:
            raise GanError(f"{what}: not a valid random-number generator state ({error})") from None
        return
    seed = int.from_bytes(hashlib.sha256(saved.numpy().tobytes()).digest()[:8], "little")
    rng.manual_seed(seed)
    log.warning("%s: saved on %s, resumed on %s: this random stream cannot continue across devices and "
                "restarts from seed %d, taken from the saved state (deterministic, but not the numbers an "
                "uninterrupted run would draw)", what, saved_on, rng.device.type, seed)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
