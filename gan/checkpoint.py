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

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
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
PHASE_ORDER = {"pretrain": 0, "finetune": 1}


def versions() -> dict[str, str]:
    return {"covergan": __version__, "torch": torch.__version__, "python": platform.python_version()}


def read_json(path: Path, what: str = "file") -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise GanError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise GanError(f"{path}: not valid JSON ({error})") from None


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


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Accept a checkpoint folder or a run folder (its latest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise GanError(f"{path}: checkpoint not found")
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
    """Read and check `config.json`; return it with `model` rebuilt as a ModelConfig."""
    config = read_json(folder / CONFIG_FILE, "checkpoint config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GanError(f"{folder / CONFIG_FILE}: not a CoverGAN checkpoint (missing \"format\": \"{FORMAT}\")")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise GanError(f"{folder / CONFIG_FILE}: checkpoint format {config['format_version']} is newer than this "
                       f"CoverGAN understands ({FORMAT_VERSION}); upgrade CoverGAN")
    config["model"] = from_dict(ModelConfig, config.get("model"), str(folder / CONFIG_FILE))
    config["model"].validate()
    if config.get("train"):
        config["train"] = from_dict(TrainConfig, config["train"], str(folder / CONFIG_FILE))
    if config.get("data"):
        config["data"] = from_dict(DataConfig, config["data"], str(folder / CONFIG_FILE))
    return config


def load_weights(module: torch.nn.Module, path: Path, what: str) -> None:
    """Load safetensors weights into a module; a shape or name mismatch is a user-facing error."""
    tensors = load_tensors(path, what)
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [k for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape mismatch in {wrong[:3]}")
        raise GanError(f"{path}: weights do not match the model in {CONFIG_FILE} ({detail})")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
