"""Parameter sweeps: one run per value of one parameter, the rest fixed, run one after another.

A sweep is resumable like a run: re-running the same command skips finished runs and resumes
an interrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

from gan.config import ModelConfig, TrainConfig
from gan.errors import GanError
from gan.train import run_training
from gan.train.run import RunFolder, TrainingPlan

log = logging.getLogger(__name__)
MODEL_PARAMS = ("resolution", "latent_dim", "width", "genre_embedding_dim", "projection", "pixel_noise",
                "genre_classifier", "coordinate_channels", "coordinate_frequencies", "coordinate_rings",
                "coordinate_genre_gains", "noise_in_norms", "generator_spectral_norm", "generator_min_channels",
                "discriminator_min_channels", "upsample")
TRAIN_PARAMS = ("batch_size", "lr_g", "lr_d", "lr_decay_from", "beta1", "beta2", "genre_loss_weight",
                "mode_seeking_weight", "mode_seeking_scale", "mode_seeking_cap", "genre_groups", "tag_sets",
                "r1_gamma", "d_steps", "lecam_weight", "ema_decay", "ema_rampup", "seed", "steps")
SWEEPABLE = (*MODEL_PARAMS, *TRAIN_PARAMS, "pretrain")


def _parse(param: str, raw: str):
    kind = bool if param == "pretrain" else type(getattr(ModelConfig() if param in MODEL_PARAMS else TrainConfig(),
                                                         param))
    if kind is bool:
        if raw not in ("on", "off"):
            raise GanError(f"--values for {param} are 'on' and 'off', got {raw!r}")
        return raw == "on"
    try:
        return kind(raw)
    except ValueError:
        raise GanError(f"--values: {raw!r} is not a valid {param} ({kind.__name__})") from None


def sweep_plans(base: TrainingPlan, param: str, values: list[str]) -> list[tuple[str, TrainingPlan]]:
    """(run name, plan) for each value; the name is `<param>-<value>`."""
    if param not in SWEEPABLE:
        raise GanError(f"--param {param!r} cannot be swept; choose one of {', '.join(SWEEPABLE)}")
    if not values:
        raise GanError("--values needs at least one value")
    plans = []
    for raw in values:
        value = _parse(param, raw.strip())
        plan = copy.deepcopy(base)
        if param == "pretrain":
            if value and plan.pretrain is None:
                raise GanError("--param pretrain needs --pretrain-data and --pretrain-steps for the 'on' runs")
            if not value:
                plan.pretrain = None
        elif param in MODEL_PARAMS:
            plan.model = dataclasses.replace(plan.model, **{param: value})
            plan.model.validate()
        else:
            for _, phase in plan.phases():
                setattr(phase.train, param, value)
                phase.train.validate()
        plans.append((f"{param}-{raw.strip()}", plan))
    return plans


def run_sweep(out_root: str | Path, base: TrainingPlan, param: str, values: list[str],
              progress: bool | None = None) -> list[Path]:
    """Train every run of the sweep in turn; return their final checkpoints."""
    finals = []
    for name, plan in sweep_plans(base, param, values):
        run_dir = Path(out_root) / name
        resume = RunFolder(run_dir).config_path.is_file()
        log.info("sweep %s: %s run %s", param, "resuming" if resume else "starting", run_dir)
        finals.append(run_training(run_dir, None if resume else plan, resume=resume, progress=progress))
    return finals
