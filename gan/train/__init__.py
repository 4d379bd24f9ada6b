"""Training: the two-phase plan (pre-training, then genre fine-tuning) over one run folder."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from gan.atomic import write_json
from gan.checkpoint import read_checkpoint_config, resolve_checkpoint
from gan.config import ModelConfig
from gan.data.folders import load_dataset
from gan.errors import GanError
from gan.train.device import resolve_device
from gan.train.distributed import barrier, init_from_environment, shutdown
from gan.train.loop import PhaseTrainer, TrainingDiverged, initialise_from
from gan.train.run import PhasePlan, RunFolder, TrainingPlan
from gan.train.stopping import TrainingStopped

__all__ = ["PhasePlan", "PhaseTrainer", "RunFolder", "TrainingDiverged", "TrainingPlan", "TrainingStopped",
           "run_training"]
log = logging.getLogger(__name__)


def run_training(run_dir: str | Path, plan: TrainingPlan | None = None, resume: bool = False,
                 progress: bool | None = None, finetune_steps: int | None = None) -> Path:
    """Start (with `plan`) or resume (from the run folder) a run; return its final checkpoint.

    Pre-training, when planned, runs first and its final checkpoint seeds fine-tuning. Resuming
    picks up the phase and step of the newest checkpoint, with the same optimiser and RNG state;
    `finetune_steps` then moves the end of fine-tuning (to train a finished run for longer).
    """
    run = RunFolder(run_dir)
    if resume:
        plan = run.load_plan()
    elif plan is None:
        raise ValueError("a new run needs a plan")
    phases = plan.phases()
    world = init_from_environment(phases[0][1].train.device if phases else "auto")
    if not world.is_main:  # one log, rank 0's; the other ranks still report errors
        logging.getLogger("gan").setLevel(logging.ERROR)
    try:
        return _train(run, plan, resume, progress, finetune_steps, world)
    finally:
        if world.distributed:
            shutdown()


def _train(run: RunFolder, plan: TrainingPlan, resume: bool, progress: bool | None,
           finetune_steps: int | None, world) -> Path:
    # Under torchrun every rank reads the plan and checkpoints; only rank 0 writes.
    if resume:
        if world.is_main:
            run.record_command()
        if finetune_steps is not None:
            _extend(run, plan, finetune_steps, write=world.is_main)
        barrier()
    else:
        if not plan.phases():
            raise GanError("nothing to train: give --data (fine-tuning) and/or --pretrain-data with --pretrain-steps")
        if world.is_main:
            run.create(plan)
        barrier()

    last: Path | None = None
    for phase, phase_plan in plan.phases():
        done = run.checkpoints(phase)
        latest = done[-1] if done else None
        latest_step = int(latest.name.rsplit("-", 1)[1]) if latest else 0
        if latest_step >= phase_plan.train.steps:
            log.info("%s already complete at step %d", phase, latest_step)
            last = latest
            continue
        conditional = phase == "finetune"
        resolve_device(phase_plan.train.device)  # a missing GPU fails before minutes of data loading
        data = load_dataset(phase_plan.data, plan.model.resolution, labelled=conditional)
        model = dataclasses.replace(plan.model, genres=data.genres if conditional else [])
        if latest is not None and conditional and read_checkpoint_config(latest)["model"].genres != model.genres:
            raise GanError(f"{phase_plan.data}: its genres {model.genres} differ from those of the run being "
                           f"resumed {read_checkpoint_config(latest)['model'].genres}")
        trainer = PhaseTrainer(run, model, phase_plan.train, data, progress=progress, world=world)
        if latest is not None:
            trainer.resume_from(latest)
            log.info("resuming %s from step %d", phase, trainer.step)
        else:
            seed_from = last if last is not None else (
                resolve_checkpoint(plan.init_from) if plan.init_from and conditional else None)
            if seed_from is not None:
                _check_compatible(read_checkpoint_config(seed_from)["model"], model, seed_from)
                fresh = initialise_from(trainer.nets, seed_from)
                log.info("%s starts from %s (freshly initialised: %s)", phase, seed_from, ", ".join(fresh) or "none")
        last = trainer.fit()
        barrier()  # rank 0 has written the phase's final checkpoint; the next phase starts from it
    assert last is not None
    return last


def _extend(run: RunFolder, plan: TrainingPlan, steps: int, write: bool) -> None:
    """Move the end of fine-tuning to `steps` in `plan`, and in the run's config when `write`."""
    if plan.finetune is None:
        raise GanError(f"{run.path}: this run has no fine-tuning phase to train for longer")
    done = run.checkpoints("finetune")
    reached = int(done[-1].name.rsplit("-", 1)[1]) if done else 0
    if steps < reached:
        raise GanError(f"--steps {steps}: the run is already at fine-tuning step {reached}")
    plan.finetune.train.steps = steps
    plan.finetune.train.validate()
    if write:
        write_json(run.config_path, plan.to_json())


def _check_compatible(source: ModelConfig, target: ModelConfig, path: Path) -> None:
    for name in ("resolution", "latent_dim", "width"):
        if getattr(source, name) != getattr(target, name):
            raise GanError(f"{path}: its {name} is {getattr(source, name)}, this run's is {getattr(target, name)}; "
                           f"pass --{name.replace('_', '-')} {getattr(source, name)}")
