"""Multi-process training: `torchrun --nproc_per_node 2` on CPU (gloo) against one process."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, tiny_model, tiny_train
from safetensors.torch import load_file

from gan.data.folders import load_labelled_folder
from gan.errors import GanError
from gan.train import RunFolder
from gan.train.distributed import GlobalBatchNorm2d, World, weights_digest
from gan.train.loop import PhaseTrainer, stddev_group

TRAIN_ARGS = ["--resolution", "32", "--latent-dim", "16", "--width", "8", "--genre-embedding-dim", "8",
              "--batch-size", "16", "--checkpoint-every", "1", "--keep-checkpoints", "100", "--sample-every", "3",
              "--log-every", "1",
              "--ema-decay", "0.9", "--precision", "fp32", "--device", "cpu", "--no-progress",
              "--augment", "translation,cutout", "--mode-seeking-weight", "1", "--projection"]
CHECKPOINT_FILES = ("generator.safetensors", "discriminator.safetensors", "training_state.safetensors")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _train(args: list[str], processes: int, cwd) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    result = subprocess.run([*launcher, "-m", "gan", "train", *args], cwd=cwd, env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _weights(checkpoint) -> torch.Tensor:
    """Every weight and batch-norm statistic of a checkpoint as one float64 vector (Adam's moments and
    the RNG states left out); the RNG states and step counters must be equal."""
    parts = []
    for name in CHECKPOINT_FILES:
        tensors = load_file(checkpoint / name)
        for key in sorted(tensors):
            if tensors[key].is_floating_point() and not key.startswith("opt_"):
                parts.append(tensors[key].double().flatten())
    return torch.cat(parts)


def _assert_same_state(a, b) -> None:
    for name in CHECKPOINT_FILES:
        ta, tb = load_file(a / name), load_file(b / name)
        assert ta.keys() == tb.keys()
        for key in ta:
            if not ta[key].is_floating_point():
                assert torch.equal(ta[key], tb[key]), key


def _relative_difference(run_a, run_b, step: int) -> float:
    """How far run A's weights at `step` are from run B's, as a share of how far run B moved in that step.

    Two processes sum each gradient in another order than one process, so the runs differ by float32
    rounding from the first step. Adam's first update is the sign of each gradient element, so an
    element whose gradient is rounding-sized can move by a learning rate either way (a handful of
    ~50,000 do here), and the GAN's dynamics then spread the gap step by step. Measured with this
    test's settings (ResNet, AMD EPYC with bf16 hardware, fp32 training): 0.29% of a step's movement
    at step 2, 0.46% at 3, 1.2% at 6, 2.1% at 8; another CI machine measured 3.0% at step 8. A real
    difference is larger: scaling one noise vector of the batch by 1% on each rank gave 2.5%, 4.1%
    and 5.6% at steps 3, 6 and 8 (measured on the ResNet before its batch-norm-cancelled biases went);
    batch norm over each rank's slice instead of the global batch stops the run at the first
    weight-sync check. An element-wise bound cannot separate these: rounding alone moves
    single weights by a learning rate.
    """
    a = run_a / f"checkpoints/finetune-{step:07d}"
    b = run_b / f"checkpoints/finetune-{step:07d}"
    before = run_b / f"checkpoints/finetune-{step - 1:07d}"
    _assert_same_state(a, b)
    moved = (_weights(b) - _weights(before)).norm()
    return float((_weights(a) - _weights(b)).norm() / moved)


MAX_RELATIVE_DIFFERENCE = 0.015


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_dir):
    """The same 6 steps (global batch 16) on two processes and on one, then both resumed to 8."""
    cwd = tmp_path_factory.mktemp("ddp")
    data = ["--data", str(demo_dir / "labelled")]
    two = _train(["--out", "two", "--steps", "6", *data, *TRAIN_ARGS], 2, cwd)
    _train(["--out", "one", "--steps", "6", *data, *TRAIN_ARGS], 1, cwd)
    return cwd, two


def test_two_processes_train_exactly_like_one(runs):
    cwd, _ = runs
    # Same global batches, noise, batch-norm statistics and averaged gradients: only the order of
    # floating-point sums differs. The GAN's dynamics spread that rounding step by step (1.6% of a
    # step's movement at step 8 on an AMD EPYC, 3.0% on another CI machine), so it is checked at
    # steps 2 and 3, where rounding is still small and a real difference is not (see above).
    for step in (2, 3):
        assert _relative_difference(cwd / "two", cwd / "one", step) < MAX_RELATIVE_DIFFERENCE


def test_two_processes_train_on_tag_sets_exactly_like_one(tmp_path):
    """Covers of several genres (real tag weights in the batches, fakes drawn from the data's tag sets)."""
    from gan.data.demo import write_demo_dataset

    genres = ("pop", "metal", "jazz", "classical")  # 4 of their first 12 covers carry two of these
    write_demo_dataset(tmp_path / "demo", per_genre=12, unlabelled=0, size=32, seed=0, genres=genres, workers=1)
    assert (tmp_path / "demo" / "labelled" / "tags.csv").read_text().count("\n") == 5
    args = ["--steps", "3", "--data", str(tmp_path / "demo" / "labelled"), "--tag-sets", *TRAIN_ARGS]
    _train(["--out", "two", *args], 2, tmp_path)
    _train(["--out", "one", *args], 1, tmp_path)
    config = json.loads((tmp_path / "one" / "checkpoints" / "finetune-0000003" / "config.json").read_text())
    assert config["data"]["tag_pairs"] == {"jazz+pop": 1, "metal+pop": 2, "classical+jazz": 1}
    assert config["train"]["tag_sets"] is True
    for step in (2, 3):
        assert _relative_difference(tmp_path / "two", tmp_path / "one", step) < MAX_RELATIVE_DIFFERENCE


def test_two_processes_train_with_the_contrastive_classifier_exactly_like_one(tmp_path, demo_dir):
    """D2D-CE compares each cover with the covers of the whole global batch, gathered across ranks in
    the backward pass too; the gather itself is checked exactly in test_genre_heads."""
    args = ["--steps", "3", "--data", str(demo_dir / "labelled"), "--genre-classifier", "contrastive", *TRAIN_ARGS]
    _train(["--out", "two", *args], 2, tmp_path)
    _train(["--out", "one", *args], 1, tmp_path)
    for step in (2, 3):
        assert _relative_difference(tmp_path / "two", tmp_path / "one", step) < MAX_RELATIVE_DIFFERENCE


def test_two_processes_keep_the_lecam_anchors_of_one(tmp_path, demo_dir):
    """LeCam's anchors average D's scores over the global batch, not over each rank's half."""
    args = ["--steps", "3", "--data", str(demo_dir / "labelled"), "--lecam-weight", "1", *TRAIN_ARGS]
    _train(["--out", "two", *args], 2, tmp_path)
    _train(["--out", "one", *args], 1, tmp_path)
    for step in (2, 3):
        assert _relative_difference(tmp_path / "two", tmp_path / "one", step) < MAX_RELATIVE_DIFFERENCE
    anchors = [load_file(tmp_path / run / "checkpoints/finetune-0000003/training_state.safetensors")["lecam.anchors"]
               for run in ("two", "one")]
    assert torch.allclose(*anchors, atol=1e-4), anchors


def test_only_rank_zero_writes(runs):
    cwd, result = runs
    rows = [json.loads(line) for line in (cwd / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5, 6]  # one row per step, not one per rank
    assert result.stdout.count("done: final checkpoint") == 1
    assert sorted(p.name for p in (cwd / "two" / "samples").iterdir()) == ["finetune-0000003.png",
                                                                          "finetune-0000006.png"]
    assert (cwd / "two" / "command.txt").read_text().count("\n") == 1


def test_a_run_resumes_on_two_processes_or_on_one(runs):
    """Both continue from the same step-6 checkpoint, so they differ by the rounding of two steps only,
    however far the 6 steps before had spread `two` from `one`: measured 4e-6 and 6e-6 of a step's
    movement at steps 7 and 8 (AMD EPYC), against 1.2% between `two` and `one` at step 6. Adam's
    first update, which turns rounding-sized gradients into whole steps, is behind them by then.
    (The random streams are global, so a run may continue on another number of processes.)"""
    cwd, _ = runs
    shutil.copytree(cwd / "two", cwd / "two-then-one")
    resumed = _train(["--out", "two", "--resume", "--steps", "8", *TRAIN_ARGS], 2, cwd)
    assert resumed.stderr.count("resuming finetune from step 6") == 1  # rank 0 logs, rank 1 does not
    _train(["--out", "two-then-one", "--resume", "--steps", "8", *TRAIN_ARGS], 1, cwd)
    for step in (7, 8):
        assert _relative_difference(cwd / "two-then-one", cwd / "two", step) < 1e-3


def test_a_stop_that_reaches_one_process_stops_all_after_the_same_step(runs, demo_dir):
    """SIGTERM to rank 1 alone, between D's and G's optimiser steps of step 4: both ranks finish
    step 4, rank 0 checkpoints it, and the run resumed on two processes ends as the run that never
    stopped (`two`: same processes, same sums, so equal to the bit)."""
    cwd, _ = runs
    env = {**_env(), "SIGNAL_AT_CALL": "7", "SIGNAL_RANK": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(ROOT / "tests" / "signal_during_step.py"), "train", "--out", "stopped", "--steps", "6",
               "--data", str(demo_dir / "labelled"), *TRAIN_ARGS, "--checkpoint-every", "100"]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.stderr.count("interrupted; continue with") == 2, result.stdout + result.stderr
    assert [p.name for p in (cwd / "stopped" / "checkpoints").iterdir()] == ["finetune-0000004"]

    _train(["--out", "stopped", "--resume"], 2, cwd)
    for name in CHECKPOINT_FILES:
        a = load_file(cwd / "stopped" / "checkpoints" / "finetune-0000006" / name)
        b = load_file(cwd / "two" / "checkpoints" / "finetune-0000006" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), name


def test_global_batch_must_split_evenly(tmp_path, demo_dir):
    data = load_labelled_folder(demo_dir / "labelled", 32)
    with pytest.raises(GanError, match="multiple of the 3 training processes"):
        PhaseTrainer(RunFolder(tmp_path / "run"), tiny_model(genres=data.genres), tiny_train(batch_size=8), data,
                     progress=False, world=World(rank=0, world_size=3))


def test_global_batchnorm_is_plain_batchnorm_in_one_process():
    torch.manual_seed(0)
    plain, ours = torch.nn.BatchNorm2d(4), GlobalBatchNorm2d(4)
    x = torch.randn(8, 4, 5, 5)
    torch.testing.assert_close(ours(x), plain(x))
    torch.testing.assert_close(ours.running_var, plain.running_var)


def test_weights_digest_sees_a_tiny_change():
    module = torch.nn.Linear(64, 64)
    before = weights_digest(module)
    with torch.no_grad():
        module.weight[17, 3] += 1e-6
    assert not torch.equal(before, weights_digest(module))


def test_minibatch_stddev_groups_are_whole_on_every_rank(tmp_path, demo_dir):
    """Batch 24 on 4 processes would give each rank 6 covers: groups of 3 there, of 4 in one process."""
    data = load_labelled_folder(demo_dir / "labelled", 32)
    with pytest.raises(GanError, match="whole groups of 4 .* multiple of 16"):
        PhaseTrainer(RunFolder(tmp_path / "run"), tiny_model(genres=data.genres), tiny_train(batch_size=24), data,
                     progress=False, world=World(rank=1, world_size=4))
    assert stddev_group(32, slice(8, 16)) == 4
    assert stddev_group(6, slice(0, 6)) == 3  # one process: the largest group up to 4 that divides the batch
    with pytest.raises(GanError, match="whole groups of 3"):
        stddev_group(6, slice(2, 4))
