"""One process at a time trains a run folder: a second `train` or `--resume` fails at once, naming
the holder, and the lock goes with its holder however that ends (kill -9 too)."""

import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, tiny_model, tiny_train

from gan.cli import main
from gan.errors import GanError
from gan.train import PhasePlan, RunFolder, TrainingPlan, run_training


def _plan(demo_dir, steps=2):
    return TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=steps), str(demo_dir / "labelled")))


def test_a_run_in_use_refuses_a_second_train_or_resume(tmp_path, demo_dir, capsys):
    run = tmp_path / "run"
    run_training(run, _plan(demo_dir), progress=False)
    with RunFolder(run).lock():
        with pytest.raises(GanError, match=rf"in use by process {os.getpid()} \(.*\) since 20"):
            run_training(run, resume=True, progress=False, finetune_steps=4)
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--out", str(run), "--resume", "--steps", "4", "--no-progress"])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {run}: in use by")
    # Two new runs into one folder: whichever gets there second fails.
    with RunFolder(tmp_path / "new").lock(), pytest.raises(GanError, match="in use by"):
        run_training(tmp_path / "new", _plan(demo_dir), progress=False)
    assert sorted(p.name for p in RunFolder(run).checkpoints()) == ["finetune-0000002"]  # nothing trained meanwhile
    # Released with the holder: the run goes on.
    assert run_training(run, resume=True, progress=False, finetune_steps=4).name == "finetune-0000004"


def test_the_lock_goes_with_a_killed_holder(tmp_path, demo_dir):
    run = tmp_path / "run"
    run_training(run, _plan(demo_dir), progress=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from gan.train.run import RunFolder\n"
                               "with RunFolder(sys.argv[1]).lock():\n    print('locked', flush=True); time.sleep(600)",
         str(run)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(GanError, match=f"in use by process {holder.pid} "):
            run_training(run, resume=True, progress=False, finetune_steps=3)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert run_training(run, resume=True, progress=False, finetune_steps=3).name == "finetune-0000003"
