"""Checkpoints are folders anyone can open: `config.json` plus safetensors weights.

    config.json                   model, training and data config, genre names, phase, step, versions
    generator.safetensors         the generator to sample from (EMA weights when EMA is on)
    discriminator.safetensors     for resuming and fine-tuning
    training_state.safetensors    live G weights, optimiser moments, RNG states (tensors only)
    training_state.json           optimiser hyper-parameters and counters

Nothing here unpickles: safetensors holds tensors and JSON holds the rest, so a checkpoint
from an untrusted source cannot run code. Folders are written with `gan.atomic`, so a crash or
`kill -9` leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from gan import __version__
from gan.config import DataConfig, ModelConfig, TrainConfig, from_dict, to_dict
from gan.errors import GanError

FORMAT = "covergan-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
STATE_TENSORS_FILE = "training_state.safetensors"
STATE_JSON_FILE = "training_state.json"
CHECKPOINTS_DIR = "checkpoints"
BEST_CHECKPOINT = "best"  # the best fine-tuning checkpoint of a run by the quality score (gan.train.quality)
PHASE_ORDER = {"pretrain": 0, "finetune": 1}
MAX_JSON_BYTES = 32 << 20


def versions() -> dict[str, str]:
    return {"covergan": __version__, "torch": torch.__version__, "python": platform.python_version()}


def read_json(path: Path, what: str = "file") -> Any:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:  # ours are kilobytes: refuse before reading
            raise GanError(f"{path}: {path.stat().st_size} bytes, too large for a {what} (at most {MAX_JSON_BYTES})")
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise GanError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GanError(f"{path}: not valid JSON ({error})") from None
    except RecursionError:
        raise GanError(f"{path}: not valid JSON (nested too deeply)") from None
    except OSError as error:
        raise GanError(f"{path}: cannot read the {what} ({error.strerror})") from None


def checkpoint_config(model: ModelConfig, train: TrainConfig | None, data: DataConfig | None, phase: str,
                      step: int, ema: bool) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "phase": phase,
        "step": step,
        "ema": ema,
        "model": to_dict(model),
        "train": to_dict(train) if train else None,
        "data": to_dict(data) if data else None,
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def optimizer_to_files(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimiser's state into tensors (for safetensors) and plain values (for JSON)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor],
                         plain: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            index, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(index), {})[key] = value
    for index, values in plain["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


def load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise GanError(f"{path}: {what} not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise GanError(f"{path}: not a readable safetensors file ({error})") from None


def tensor_shapes(path: Path, what: str) -> dict[str, tuple[int, ...]]:
    """The names and shapes of the tensors in a safetensors file, from its header alone."""
    if not path.is_file():
        raise GanError(f"{path}: {what} not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise GanError(f"{path}: not a readable safetensors file ({error})") from None


def check_weights(path: Path, expected: dict[str, torch.Tensor], what: str) -> None:
    """Refuse a weights file whose tensor names or shapes differ from `expected` (a state dict,
    possibly on the meta device), reading the file's header only."""
    found = tensor_shapes(path, what)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [k for k in expected if k in found and found[k] != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else "shape mismatch in " + ", ".join(f"{k} {list(found[k])} (expected {list(expected[k].shape)})"
                                                        for k in wrong[:3]))
        raise GanError(f"{path}: weights do not match the model in {CONFIG_FILE} ({detail})")


def _is_checkpoint(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and (folder / GENERATOR_FILE).is_file()


def list_checkpoints(run_dir: Path) -> list[Path]:
    """A run's checkpoints, oldest first (pre-training before fine-tuning, then by step)."""
    root = run_dir / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        phase, _, step = folder.name.partition("-")
        if phase in PHASE_ORDER and step.isdigit() and _is_checkpoint(folder):
            found.append((PHASE_ORDER[phase], int(step), folder))
    return [folder for _, _, folder in sorted(found)]


def resolve_checkpoint(path: str | os.PathLike, best: bool = False) -> Path:
    """Accept a checkpoint folder or a run folder (its latest checkpoint, or with `best` the best one
    by the quality tracked during training: `checkpoints/best`)."""
    path = Path(path)
    if not path.exists():
        raise GanError(f"{path}: checkpoint not found")
    if best:
        folder = path / CHECKPOINTS_DIR / BEST_CHECKPOINT
        if not _is_checkpoint(folder):
            raise GanError(f"{path}: no best checkpoint ({CHECKPOINTS_DIR}/{BEST_CHECKPOINT}); a run keeps one when "
                           "quality is tracked during fine-tuning (--eval-every, on by default)")
        return folder
    if path.is_file():
        path = path.parent if path.name in (CONFIG_FILE, GENERATOR_FILE) else path
        if path.is_file():
            raise GanError(f"{path}: a checkpoint is a folder with {CONFIG_FILE} and {GENERATOR_FILE}")
    checkpoints = list_checkpoints(path)
    if checkpoints:  # a run folder (it has a config.json too, the run's)
        return checkpoints[-1]
    if (path / CONFIG_FILE).is_file():
        return path
    raise GanError(f"{path}: not a checkpoint (no {CONFIG_FILE}) and not a run folder with checkpoints")


@dataclass
class CheckpointConfig:
    """What a checkpoint's config.json holds (see `checkpoint_config`), checked field by field on
    reading; keys not listed here are kept as they are."""

    format: str
    format_version: int
    model: ModelConfig
    phase: str | None = None
    step: int | None = None
    ema: bool | None = None
    train: TrainConfig | None = None
    data: DataConfig | None = None
    versions: dict[str, str] | None = None
    created: str | None = None
    exported_from: str | None = None
    weights_dtype: str | None = None

    def validate(self) -> None:
        if self.phase is not None and self.phase not in PHASE_ORDER:
            raise GanError(f"phase must be one of {tuple(PHASE_ORDER)}, got {self.phase!r}")
        if self.step is not None and self.step < 0:
            raise GanError(f"step must not be negative, got {self.step}")


def check_export_target(out: Path, source: Path) -> None:
    """Refuse an `export --out` that must not be replaced: only a new or empty folder, or an earlier
    export (a checkpoint with no training state), is written over; never a run, a training checkpoint,
    a folder of other files, or one holding the checkpoint being exported."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GanError(f"{out}: is a file; export writes a checkpoint folder, choose another --out")
    if out.resolve() == source.resolve() or out.resolve() in source.resolve().parents:
        raise GanError(f"{out}: holds the checkpoint being exported ({source}); choose another --out")
    if not os.listdir(out):
        return
    try:
        config = read_json(out / CONFIG_FILE)
    except GanError:
        config = None
    exported = (isinstance(config, dict) and config.get("format") == FORMAT and (out / GENERATOR_FILE).is_file()
                and not any((out / name).exists() for name in (DISCRIMINATOR_FILE, STATE_TENSORS_FILE,
                                                                STATE_JSON_FILE, CHECKPOINTS_DIR)))
    if not exported:
        raise GanError(f"{out}: not empty and not an exported checkpoint; export replaces only an earlier "
                       "export, so choose a new or empty folder for --out")


def read_checkpoint_config(folder: Path) -> dict[str, Any]:
    """Read and check `config.json`; return it with `model`, `train` and `data` as config dataclasses."""
    path = folder / CONFIG_FILE
    config = read_json(path, "checkpoint config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GanError(f"{path}: not a CoverGAN checkpoint (missing \"format\": \"{FORMAT}\")")
    version = config.get("format_version")
    if type(version) is not int or version < 1:  # noqa: E721 (a bool is not a version)
        raise GanError(f"{path}: format_version must be a whole number from 1, got {version!r}")
    if version > FORMAT_VERSION:
        raise GanError(f"{path}: checkpoint format {version} is newer than this CoverGAN understands "
                       f"({FORMAT_VERSION}); upgrade CoverGAN")
    known = {f.name for f in dataclasses.fields(CheckpointConfig)}
    checked = from_dict(CheckpointConfig, {k: v for k, v in config.items() if k in known}, str(path))
    return {**config, **{name: getattr(checked, name) for name in known}}


def load_weights(module: torch.nn.Module, path: Path, what: str) -> None:
    """Load safetensors weights into a module; a shape or name mismatch is a user-facing error,
    found from the file's header before any tensor is read."""
    own = module.state_dict()
    check_weights(path, own, what)
    tensors = load_tensors(path, what)
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
