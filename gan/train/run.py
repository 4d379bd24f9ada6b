"""A run folder tells a run's whole story and is all that `--resume` needs; `run_training` drives
a run through it: validate, lock, train each phase, checkpoint.

    runs/NAME/
      config.json        the training plan: model config, each phase's train config and data path
      command.txt        the command lines that started and resumed the run
      metrics.jsonl      one JSON row per log interval
      samples/           fixed noise x every genre, every --sample-every steps
      checkpoints/       pretrain-NNNNNNN/ and finetune-NNNNNNN/ checkpoint folders
      run.lock           locked by the process training the run; says who that is (pid, command, since)
      process.json       a run started from the app: its process, to watch and stop it
      train.log          ... and its output
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan.atomic import recover_interrupted_writes, remove_folder, write_bytes_atomically, write_json
from gan.checkpoint import (
    BEST_CHECKPOINT,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    GENERATOR_FILE,
    PHASE_ORDER,
    STATE_JSON_FILE,
    STATE_TENSORS_FILE,
    list_checkpoints,
    read_checkpoint_config,
    read_json,
    resolve_checkpoint,
)
from gan.config import ModelConfig, TrainConfig, from_dict, to_dict
from gan.data.folders import ImageSet, load_dataset
from gan.errors import GanError
from gan.models import describe_fresh
from gan.train.device import resolve_device
from gan.train.distributed import World, barrier, init_from_environment, shutdown
from gan.train.loop import PhaseTrainer, initialise_from

log = logging.getLogger(__name__)
RUN_FORMAT = "covergan-run"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
LOCK_FILE = "run.lock"
PROCESS_FILE, LOG_FILE = "process.json", "train.log"  # written by gan.train.launcher
TRAINING_CHECKPOINT_FILES = (CONFIG_FILE, GENERATOR_FILE, DISCRIMINATOR_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE)
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class PhasePlan:
    train: TrainConfig
    data: str


@dataclass
class TrainingPlan:
    """Everything a run needs to start or resume: what `config.json` in the run folder holds."""

    model: ModelConfig
    pretrain: PhasePlan | None = None
    finetune: PhasePlan | None = None
    init_from: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def phases(self) -> list[tuple[str, PhasePlan]]:
        return [(name, plan) for name, plan in (("pretrain", self.pretrain), ("finetune", self.finetune)) if plan]

    def to_json(self) -> dict[str, Any]:
        phase = lambda p: {"train": to_dict(p.train), "data": p.data} if p else None  # noqa: E731
        return {"format": RUN_FORMAT, "model": to_dict(self.model), "pretrain": phase(self.pretrain),
                "finetune": phase(self.finetune), "init_from": self.init_from, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str) -> TrainingPlan:
        if not isinstance(data, dict) or data.get("format") != RUN_FORMAT:
            raise GanError(f"{source}: not a CoverGAN run config")
        # Every field checked for type and limits, nested configs included; other keys (`extra`) are not read back.
        planned = {k: v for k, v in data.items() if k in ("model", "pretrain", "finetune", "init_from")}
        return from_dict(cls, planned, source)


def validate_run_name(name: str) -> None:
    """Run names are plain names, never paths: the app builds `runs/<name>` from them."""
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name):  # match() lets "ok\n" through
        raise GanError(f"run name {name!r}: use letters, digits, '.', '_' and '-' only (no paths, at most 100)")


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def samples_dir(self) -> Path:
        return self.path / SAMPLES_DIR

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    # --- starting, locking, resuming ------------------------------------------------------------

    def check_can_start(self) -> bool:
        """Refuse to start a new run here unless this is a new or empty folder, or a run that never
        trained a step (True: it will be replaced). Reads only; `create` checks again under the lock."""
        if not self.path.exists():
            return False
        if not self.path.is_dir():
            raise GanError(f"{self.path}: is a file, not a run folder; choose another --out")
        if self.config_path.is_file():
            try:
                self.load_plan()
            except GanError:
                raise GanError(f"{self.path}: holds a config.json that is not a CoverGAN run's; "
                               "choose another --out") from None
            if self.never_trained():
                return True
            raise GanError(f"{self.path}: a run already exists here; add --resume to continue it, "
                           "or choose another --out")
        others = sorted(e for e in os.listdir(self.path) if e not in (LOCK_FILE, PROCESS_FILE, LOG_FILE))
        if others:
            raise GanError(f"{self.path}: not empty and not a CoverGAN run ({len(others)} entries, e.g. "
                           f"{others[0]!r}); choose a new or empty folder for --out")
        return False

    def never_trained(self) -> bool:
        """A run that wrote its plan but no metrics, sample or checkpoint (it failed or was killed early)."""
        def empty(folder: Path) -> bool:
            return not folder.is_dir() or all(e.startswith(".") for e in os.listdir(folder))
        no_metrics = not self.metrics_path.is_file() or self.metrics_path.stat().st_size == 0
        return no_metrics and empty(self.samples_dir) and empty(self.checkpoints_dir)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process, so that a second `train` or `--resume` of it fails at once.

        An OS lock on `run.lock` (flock): it goes with the process, however that ends (kill -9
        too), and the file says who holds it.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise GanError(f"{self.path}: in use by {self._holder()}; wait for it to end or stop it") from None
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "command": _command_line(),
                                     "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode("utf-8"))
            yield
        finally:
            os.close(fd)  # releases the lock

    def _holder(self) -> str:
        try:
            holder = json.loads(self.lock_path.read_text(encoding="utf-8"))
            return f"process {holder['pid']} ({holder['command']}) since {holder['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"  # it is still writing its name

    def create(self, plan: TrainingPlan) -> None:
        """Write a new run's plan (under the lock: the checks that `check_can_start` made are made again)."""
        if self.check_can_start():
            log.info("%s: replacing the run there, which never trained a step", self.path)
            self.recover_interrupted_writes()
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config_path, plan.to_json())
        self.record_command()

    def recover_interrupted_writes(self) -> None:
        """Clean what a crash or kill -9 left (run under the lock, before training resumes).

        A checkpoint set aside for a replacement that never finished comes back; temporary files
        and folders go; a checkpoint folder that is missing files (a deletion cut short by an
        earlier version) goes too, since it cannot be resumed from.
        """
        done = []
        for folder in (self.path, self.samples_dir, self.checkpoints_dir):
            done += recover_interrupted_writes(folder)
        if self.checkpoints_dir.is_dir():
            for folder in sorted(self.checkpoints_dir.iterdir()):
                phase, _, step = folder.name.partition("-")
                if (phase in PHASE_ORDER and step.isdigit() and folder.is_dir()
                        and not all((folder / name).is_file() for name in TRAINING_CHECKPOINT_FILES)):
                    remove_folder(folder)
                    done.append(f"removed {folder} (an incomplete checkpoint)")
        for line in done:
            log.info("%s", line)

    def load_plan(self) -> TrainingPlan:
        if not self.config_path.is_file():
            raise GanError(f"{self.path}: no run to resume here (no config.json)")
        return TrainingPlan.from_json(read_json(self.config_path, "run config"), str(self.config_path))

    def record_command(self) -> None:
        with open(self.path / "command.txt", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {_command_line()}\n")

    # --- metrics, checkpoints, samples ----------------------------------------------------------

    def log_metrics(self, row: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        rows = []
        with open(self.metrics_path, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill: drop it
                if isinstance(row, dict) and row.get("phase") in PHASE_ORDER and isinstance(row.get("step"), int):
                    rows.append(row)
        return rows

    def truncate_metrics(self, phase: str, step: int) -> None:
        """Drop rows logged after the step a phase (re)starts from, so no step is counted twice:
        after a crash, rows beyond the last checkpoint, or all of the phase's when none was written."""
        if not self.metrics_path.is_file():
            return
        keep = [r for r in self.read_metrics()
                if PHASE_ORDER[r["phase"]] < PHASE_ORDER[phase] or (r["phase"] == phase and r["step"] <= step)]
        write_bytes_atomically(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep).encode("utf-8"))

    @property
    def best_path(self) -> Path:
        """The best fine-tuning checkpoint by the quality score (see gan.train.quality); never pruned."""
        return self.checkpoints_dir / BEST_CHECKPOINT

    def checkpoint_path(self, phase: str, step: int) -> Path:
        return self.checkpoints_dir / f"{phase}-{step:07d}"

    def checkpoints(self, phase: str | None = None) -> list[Path]:
        found = list_checkpoints(self.path)
        return [c for c in found if phase is None or c.name.startswith(phase + "-")]

    def prune_checkpoints(self, phase: str, keep: int, final_step: int) -> None:
        """Keep the newest `keep` checkpoints of a phase, and always its final one."""
        for folder in self.checkpoints(phase)[:-keep]:
            if not folder.name.endswith(f"-{final_step:07d}"):
                remove_folder(folder)  # hidden first: a kill while deleting leaves no half checkpoint

    def sample_path(self, phase: str, step: int) -> Path:
        return self.samples_dir / f"{phase}-{step:07d}.png"


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "gan", *sys.argv[1:]])


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[1])


# --- a run, start to end --------------------------------------------------------------------------

def run_training(run_dir: str | Path, plan: TrainingPlan | None = None, resume: bool = False,
                 progress: bool | None = None, finetune_steps: int | None = None) -> Path:
    """Start (with `plan`) or resume (from the run folder) a run; return its final checkpoint.

    Pre-training, when planned, runs first and its final checkpoint seeds fine-tuning. Resuming
    picks up the phase and step of the newest checkpoint, with the same optimiser and RNG state;
    `finetune_steps` then moves the end of fine-tuning (to train a finished run for longer).

    Everything a user can get wrong (the folder, data, --init-from, the configs) is checked before
    a new run's folder is written; the run folder is locked while this runs.
    """
    run = RunFolder(run_dir)
    if resume:
        plan = run.load_plan()
    elif plan is None:
        raise ValueError("a new run needs a plan")
    else:
        run.check_can_start()  # the quick refusals, before any data is read
    phases = plan.phases()
    if not phases:
        raise GanError("nothing to train: give --data (fine-tuning) and/or --pretrain-data with --pretrain-steps")
    world = init_from_environment(phases[0][1].train.device)
    if not world.is_main:  # one log, rank 0's; the other ranks still report errors
        logging.getLogger("gan").setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as held:
            return _train(run, plan, resume, progress, finetune_steps, world, held)
    finally:
        if world.distributed:
            shutdown()


def _train(run: RunFolder, plan: TrainingPlan, resume: bool, progress: bool | None,
           finetune_steps: int | None, world: World, held: contextlib.ExitStack) -> Path:
    # Under torchrun every rank reads the plan, the data and the checkpoints; only rank 0 writes.
    if resume:
        if world.is_main:
            held.enter_context(run.lock())
            run.recover_interrupted_writes()
            run.record_command()
        barrier()  # the other ranks read the checkpoints once rank 0 has put them in order
        if finetune_steps is not None:
            _extend(run, plan, finetune_steps, write=world.is_main)

    last: Path | None = None
    pending = []
    for phase, phase_plan in plan.phases():
        done = run.checkpoints(phase)
        latest = done[-1] if done else None
        if latest is not None and checkpoint_step(latest) >= phase_plan.train.steps:
            log.info("%s already complete at step %d", phase, checkpoint_step(latest))
            last = latest
        else:
            pending.append((phase, phase_plan, latest))
    # Every phase's data is read now, so that bad data fails before a new run's folder is written.
    datasets = {}
    for phase, phase_plan, latest in pending:
        resolve_device(phase_plan.train.device)  # a missing GPU fails before minutes of data loading
        datasets[phase] = load_dataset(phase_plan.data, plan.model.resolution, labelled=phase == "finetune")
    init_from = None  # the checkpoint that seeds fine-tuning, when it starts in this call
    if plan.init_from and any(phase == "finetune" and latest is None for phase, _, latest in pending):
        init_from = resolve_checkpoint(plan.init_from)
        _check_compatible(read_checkpoint_config(init_from)["model"], plan.model, init_from)

    for index, (phase, phase_plan, latest) in enumerate(pending):
        trainer = _start_phase(run, plan, phase, phase_plan, datasets.pop(phase), latest, last, init_from, progress,
                               world)
        if index == 0 and not resume:
            if world.is_main:  # all checked: now the run folder is written
                held.enter_context(run.lock())
                run.create(plan)
            barrier()
        if world.is_main:
            run.truncate_metrics(phase, trainer.step)
        last = trainer.fit()
        barrier()  # rank 0 has written the phase's final checkpoint; the next phase starts from it
    assert last is not None
    return last


def _start_phase(run: RunFolder, plan: TrainingPlan, phase: str, phase_plan: PhasePlan, data: ImageSet,
                 latest: Path | None, last: Path | None, init_from: Path | None, progress: bool | None,
                 world: World) -> PhaseTrainer:
    """A trainer for the phase, resumed from its newest checkpoint or seeded from an earlier one."""
    conditional = phase == "finetune"
    model = dataclasses.replace(plan.model, genres=data.genres if conditional else [])
    if latest is not None and conditional and read_checkpoint_config(latest)["model"].genres != model.genres:
        raise GanError(f"{phase_plan.data}: its genres {model.genres} differ from those of the run being "
                       f"resumed {read_checkpoint_config(latest)['model'].genres}")
    trainer = PhaseTrainer(run, model, phase_plan.train, data, progress=progress, world=world)
    if latest is not None:
        trainer.resume_from(latest)
        log.info("resuming %s from step %d", phase, trainer.step)
    else:
        seed_from = last if last is not None else (init_from if conditional else None)
        if seed_from is not None:
            _check_compatible(read_checkpoint_config(seed_from)["model"], model, seed_from)
            fresh = initialise_from(trainer.nets, seed_from)
            log.info("%s starts from %s (freshly initialised: %s)", phase, seed_from, describe_fresh(fresh))
    return trainer


def _extend(run: RunFolder, plan: TrainingPlan, steps: int, write: bool) -> None:
    """Move the end of fine-tuning to `steps` in `plan`, and in the run's config when `write`."""
    if plan.finetune is None:
        raise GanError(f"{run.path}: this run has no fine-tuning phase to train for longer")
    done = run.checkpoints("finetune")
    reached = checkpoint_step(done[-1]) if done else 0
    if steps < reached:
        raise GanError(f"--steps {steps}: the run is already at fine-tuning step {reached}")
    plan.finetune.train.steps = steps
    plan.finetune.train.validate()
    if write:
        write_json(run.config_path, plan.to_json())


# Settings that reshape or rename the generator's layers: weights are carried over by name and shape,
# so a checkpoint that differs in one of them would hand over few layers or none (spectral norm
# renames `conv.weight` to `conv.parametrizations.weight.original`; coordinate channels widen the
# first convolution of every block, and the waves of coordinate frequencies more; a channel floor widens
# the last blocks).
MUST_MATCH_TO_SEED = ("resolution", "latent_dim", "width", "architecture", "coordinate_channels",
                      "coordinate_frequencies", "coordinate_rings", "generator_spectral_norm",
                      "generator_min_channels")


def _check_compatible(source: ModelConfig, target: ModelConfig, path: Path) -> None:
    for name in MUST_MATCH_TO_SEED:
        theirs, ours = getattr(source, name), getattr(target, name)
        if theirs != ours:
            flag = name.replace("_", "-")
            fix = (f"--{flag}" if theirs else f"--no-{flag}") if isinstance(theirs, bool) else f"--{flag} {theirs}"
            raise GanError(f"{path}: its {name} is {theirs}, this run's is {ours}; pass {fix}")
