"""The training options the app's Train form offers, and starting a run from them.

The options are read from the config dataclasses (names, types, defaults) and from the flags of
`python -m gan train` (help texts), so a field added to ModelConfig or TrainConfig with a flag shows
up in the form, with its default, and is passed on, without editing the page.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan.config import PRECISIONS, RESNET_ONLY, SUPPORTED_RESOLUTIONS, ModelConfig, TrainConfig
from gan.errors import GanError
from gan.train.launcher import PROJECT_ROOT, launch, run_status
from gan.train.run import validate_run_name

# Shown first on the form; every other option goes under "Advanced".
MAIN_OPTIONS = ("batch_size", "resolution", "width", "latent_dim", "device")
# The form sets these itself (steps per phase) or the data decides them (genres).
FORM_FIELDS = ("phase", "steps", "genres")
# A first run that finishes in minutes on a CPU, as in the README's first training command.
QUICK_START = {"steps": 600, "pretrain_steps": 300}
CHOICES: dict[str, tuple] = {"resolution": SUPPORTED_RESOLUTIONS, "precision": PRECISIONS}
LABEL_WORDS = {"lr": "learning rate", "g": "G", "d": "D", "ema": "EMA", "dim": "size", "lecam": "LeCam"}
DEMO_DATA_DIR = PROJECT_ROOT / "demo-data"  # where `python -m gan demo-data --out demo-data` writes
DEMO_DATA_SIZES: dict[str, int] = {}  # write_demo_dataset's defaults, as the CLI's; tests make it small


@dataclass(frozen=True)
class TrainOption:
    name: str  # the config field, e.g. "lr_g"
    flag: str  # its `python -m gan train` flag, e.g. "--lr-g"
    kind: type  # bool, int, float or str
    default: Any
    help: str
    choices: tuple = ()
    switch: bool = False  # a --flag / --no-flag pair

    @property
    def label(self) -> str:
        """'lr_g' -> 'Learning rate G', 'ema_decay' -> 'EMA decay': the name, read out."""
        words = [LABEL_WORDS.get(word, word) for word in self.name.split("_")]
        text = " ".join(words)
        return text[0].upper() + text[1:]


def _train_parser() -> argparse.ArgumentParser:
    from gan.cli import _add_train_flags

    parser = argparse.ArgumentParser(prog="python -m gan train", add_help=False, exit_on_error=False)
    _add_train_flags(parser)
    return parser


def _help_text(field: dataclasses.Field, action: argparse.Action) -> str:
    if field.metadata.get("help"):
        return str(field.metadata["help"])
    # The widget shows the default: drop "(default %(default)s)" and "; default %(default)s".
    text = re.sub(r"\s*\(default %\(default\)s\)|;\s*default %\(default\)s", "", action.help or "")
    return text.replace("%(default)s", str(action.default)).strip()


def _kind(field: dataclasses.Field, default: Any) -> type:
    """The field's declared type (annotations are strings here), else its default's: a float field
    with the default 0 must still take 0.5."""
    declared = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    return {"bool": bool, "int": int, "float": float, "str": str}.get(declared, type(default))


def train_options(device_choices: list[str] | None = None) -> list[TrainOption]:
    """Every ModelConfig and TrainConfig field that `python -m gan train` takes a flag for, main ones first."""
    actions = {a.dest: a for a in _train_parser()._actions if a.option_strings}
    options = []
    for cls in (ModelConfig, TrainConfig):
        defaults = cls()
        for field in dataclasses.fields(cls):
            action = actions.get(field.name)
            if field.name in FORM_FIELDS or action is None:
                continue
            default = QUICK_START.get(field.name, getattr(defaults, field.name))
            choices = CHOICES.get(field.name, tuple(action.choices or ()))
            if field.name == "device" and device_choices:
                choices = tuple(device_choices)
            options.append(TrainOption(field.name, action.option_strings[0], _kind(field, default), default,
                                       _help_text(field, action), choices,
                                       isinstance(action, argparse.BooleanOptionalAction)))
    return sorted(options, key=lambda o: MAIN_OPTIONS.index(o.name) if o.name in MAIN_OPTIONS else len(MAIN_OPTIONS))


def device_choices() -> list[str]:
    import torch

    return ["auto", "cpu"] + [f"cuda:{k}" for k in range(torch.cuda.device_count())]


def resolve_user_path(text: str) -> Path:
    """A path as a person typed it: relative paths are relative to the project folder."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _option_args(values: dict[str, Any]) -> list[str]:
    args = []
    resnet = values.get("architecture", ModelConfig.architecture) == "resnet"
    for option in train_options():
        value = values.get(option.name, option.default)
        if option.name in RESNET_ONLY and not resnet and value == option.default:
            # A ResNet-only option left at its (ResNet) default: the CLI turns it off for the
            # architecture chosen, as it does when the flag is not given; only a changed value is
            # the user's request.
            continue
        if option.switch:
            args.append(option.flag if value else "--no-" + option.flag[2:])
        elif option.kind is bool:  # a plain type=bool flag reads any non-empty text as True
            args += [option.flag, "1" if value else ""]
        else:
            args += [option.flag, str(value)]
    return args


def _data_path(text: str, what: str) -> Path:
    if not text.strip():
        raise GanError(f"{what}: give a folder, a CSV manifest, archive(s) or a pack")
    path = resolve_user_path(text.strip())
    if not path.exists():
        hint = ""
        if path.resolve().is_relative_to(DEMO_DATA_DIR.resolve()):
            hint = (": write the demo covers first (the button on this page, or "
                    "`python -m gan demo-data --out demo-data`)")
        raise GanError(f"{what} {text.strip()}: data not found{hint}")
    return path


def training_args(values: dict[str, Any], data: str, steps: int, pretrain_data: str | None = None,
                  pretrain_steps: int = 0) -> list[str]:
    """`python -m gan train` arguments for the form's values, checked as the CLI checks them."""
    from gan.cli import plan_from_args

    args = ["--data", str(_data_path(data, "fine-tuning data")), "--steps", str(steps), *_option_args(values)]
    if pretrain_data is not None:
        args += ["--pretrain-data", str(_data_path(pretrain_data, "pre-training data")),
                 "--pretrain-steps", str(pretrain_steps)]
    try:
        parsed = _train_parser().parse_args([*args, "--out", "unused"])
    except argparse.ArgumentError as error:
        raise GanError(str(error)) from None
    plan_from_args(parsed)  # the CLI's own checks: one-line errors before any process starts
    return args


def start_run(runs_dir: Path, name: str, values: dict[str, Any], data: str, steps: int,
              pretrain_data: str | None = None, pretrain_steps: int = 0) -> subprocess.Popen:
    """Start `python -m gan train` in runs_dir/name with the form's values (see train_options)."""
    validate_run_name(name)
    return launch(runs_dir, name, training_args(values, data, steps, pretrain_data, pretrain_steps))


def train_more(runs_dir: Path, name: str, steps: int) -> subprocess.Popen:
    """Resume a run with fine-tuning extended to `steps` (`python -m gan train --resume --steps N`)."""
    status = run_status(runs_dir / name)
    finetune = next((p for p in status.phases if p.phase == "finetune"), None) if status else None
    if finetune is None:
        raise GanError(f"run {name!r} has no fine-tuning phase to train for longer")
    if steps <= finetune.total_steps:
        raise GanError(f"run {name!r} is planned to fine-tuning step {finetune.total_steps}: "
                       "choose a later step to train on to")
    return launch(runs_dir, name, ["--steps", str(steps)], resume=True)


def write_demo_data(out: Path | None = None) -> Path:
    """Write the demo covers the Train form's default paths point at (as `python -m gan demo-data`)."""
    from gan.data.demo import write_demo_dataset

    out = out or DEMO_DATA_DIR
    # One process: forking the app's multi-threaded server for a few seconds' gain is not worth the risk.
    write_demo_dataset(out, workers=1, **DEMO_DATA_SIZES)
    return out
