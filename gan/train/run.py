"""The run folder tells a run's whole story and is all that `--resume` needs.

    runs/NAME/
      config.json        the training plan: model config, each phase's train config and data path
      command.txt        the command lines that started and resumed the run
      metrics.jsonl      one JSON row per log interval
      samples/           fixed noise x every genre, every --sample-every steps
      checkpoints/       pretrain-NNNNNNN/ and finetune-NNNNNNN/ checkpoint folders
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan.atomic import write_json
from gan.checkpoint import CHECKPOINTS_DIR, PHASE_ORDER, list_checkpoints, read_json
from gan.config import ModelConfig, TrainConfig, from_dict, to_dict
from gan.errors import GanError

RUN_FORMAT = "covergan-run"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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
        phase = lambda p: PhasePlan(from_dict(TrainConfig, p["train"], source), p["data"]) if p else None  # noqa: E731
        return cls(model=from_dict(ModelConfig, data["model"], source), pretrain=phase(data.get("pretrain")),
                   finetune=phase(data.get("finetune")), init_from=data.get("init_from"))


def validate_run_name(name: str) -> None:
    """Run names are plain names, never paths: the app builds `runs/<name>` from them."""
    if not _RUN_NAME.match(name):
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

    def create(self, plan: TrainingPlan) -> None:
        if self.config_path.exists():
            raise GanError(f"{self.path}: a run already exists here; add --resume to continue it, "
                           "or choose another --out")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config_path, plan.to_json())
        self.record_command()

    def load_plan(self) -> TrainingPlan:
        if not self.config_path.is_file():
            raise GanError(f"{self.path}: no run to resume here (no config.json)")
        return TrainingPlan.from_json(read_json(self.config_path, "run config"), str(self.config_path))

    def record_command(self) -> None:
        line = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "gan", *sys.argv[1:]])
        with open(self.path / "command.txt", "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {line}\n")

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
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill: drop it
        return rows

    def truncate_metrics(self, phase: str, step: int) -> None:
        """Drop rows logged after the checkpoint a resume starts from, so no step is counted twice."""
        keep = [r for r in self.read_metrics()
                if PHASE_ORDER[r["phase"]] < PHASE_ORDER[phase] or (r["phase"] == phase and r["step"] <= step)]
        tmp = self.metrics_path.with_name(METRICS_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in keep)
        os.replace(tmp, self.metrics_path)

    def checkpoint_path(self, phase: str, step: int) -> Path:
        return self.checkpoints_dir / f"{phase}-{step:07d}"

    def checkpoints(self, phase: str | None = None) -> list[Path]:
        found = list_checkpoints(self.path)
        return [c for c in found if phase is None or c.name.startswith(phase + "-")]

    def prune_checkpoints(self, phase: str, keep: int, final_step: int) -> None:
        """Keep the newest `keep` checkpoints of a phase, and always its final one."""
        for folder in self.checkpoints(phase)[:-keep]:
            if not folder.name.endswith(f"-{final_step:07d}"):
                shutil.rmtree(folder, ignore_errors=True)

    def sample_path(self, phase: str, step: int) -> Path:
        return self.samples_dir / f"{phase}-{step:07d}.png"
