"""Stopping a run (Ctrl-C, SIGTERM) finishes the step in flight and checkpoints that step, so a
resumed run ends exactly where one that never stopped does."""

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from gan.cli import main

STEPS = 3
TINY = ["--resolution", "32", "--width", "8", "--latent-dim", "16", "--genre-embedding-dim", "8",
        "--batch-size", "8", "--device", "cpu", "--precision", "fp32", "--log-every", "2", "--no-progress",
        "--ema-decay", "0.9", "--augment", "translation,cutout", "--checkpoint-every", "100",
        "--sample-every", "100"]
CHECKPOINT_FILES = ("generator.safetensors", "discriminator.safetensors", "training_state.safetensors")


def _gan(*args) -> int:
    try:
        main([str(a) for a in args])
    except SystemExit as exit_info:
        return exit_info.code
    return 0


@pytest.fixture
def signal_in_optimiser_step():
    """Arm a signal to this process from inside the N-th optimiser step (D's and G's alternate:
    call 2k-1 is D's step of training step k, call 2k is G's)."""
    handles = []
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def arm(signum: int, call: int, hook: str):
        calls = 0

        def send(optimizer, args, kwargs):  # noqa: ARG001
            nonlocal calls
            calls += 1
            if calls == call:
                os.kill(os.getpid(), signum)  # its handler runs here, inside optimizer.step()

        register = register_optimizer_step_post_hook if hook == "after" else register_optimizer_step_pre_hook
        handles.append(register(send))
        return handles[-1]

    yield arm
    for handle in handles:
        handle.remove()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, demo_dir):
    """The final checkpoint of a run that was never stopped."""
    out = tmp_path_factory.mktemp("straight") / "run"
    assert _gan("train", "--data", demo_dir / "labelled", "--steps", STEPS, *TINY, "--out", out) == 0
    return out / "checkpoints" / f"finetune-{STEPS:07d}"


def _assert_same_checkpoint(a, b):
    for name in CHECKPOINT_FILES:  # weights, EMA, optimiser moments and every RNG state
        ta, tb = load_file(str(a / name)), load_file(str(b / name))
        assert ta.keys() == tb.keys()
        for key in ta:
            assert torch.equal(ta[key], tb[key]), (a, name, key)
    assert json.loads((a / "training_state.json").read_text()) == json.loads((b / "training_state.json").read_text())


@pytest.mark.parametrize("signal_name, call, hook", [
    *[("SIGTERM", call, "after") for call in range(1, 2 * STEPS + 1)],  # after every optimiser step
    ("SIGTERM", 3, "before"),  # D's gradients computed, not yet applied
    ("SIGINT", 2, "after"),  # Ctrl-C: the same
])
def test_a_stop_anywhere_in_a_step_checkpoints_that_step_and_resumes_exactly(
        tmp_path, demo_dir, straight, signal_in_optimiser_step, capsys, signal_name, call, hook):
    armed = signal_in_optimiser_step(getattr(signal, signal_name), call, hook)
    assert _gan("train", "--data", demo_dir / "labelled", "--steps", STEPS, *TINY, "--out", tmp_path / "stopped") == 130
    armed.remove()
    step = (call + 1) // 2  # the step in flight when the signal came
    assert [p.name for p in (tmp_path / "stopped" / "checkpoints").iterdir()] == [f"finetune-{step:07d}"]
    assert json.loads((tmp_path / "stopped" / "checkpoints" / f"finetune-{step:07d}" / "training_state.json"
                       ).read_text())["step"] == step
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line == f"interrupted; continue with: python -m gan train --out {tmp_path / 'stopped'} --resume"

    assert _gan("train", "--out", tmp_path / "stopped", "--resume") == 0
    _assert_same_checkpoint(straight, tmp_path / "stopped" / "checkpoints" / f"finetune-{STEPS:07d}")
