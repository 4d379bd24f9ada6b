import dataclasses
import json
import logging
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_GENRES, tiny_model, tiny_train
from safetensors.torch import load_file

from gan.checkpoint import GENERATOR_FILE, read_checkpoint_config
from gan.cli import main
from gan.config import R1_EVERY, ModelConfig, TrainConfig
from gan.data.folders import load_labelled_folder
from gan.errors import GanError
from gan.train import PhasePlan, RunFolder, TrainingDiverged, TrainingPlan, run_training
from gan.train.loop import PhaseTrainer


def _trainer(tmp_path, demo_dir, **train_overrides):
    data = load_labelled_folder(demo_dir / "labelled", 32)
    model = tiny_model(genres=data.genres)
    return PhaseTrainer(RunFolder(tmp_path / "run"), model, tiny_train(**train_overrides), data, progress=False)


def _d_after_one_step(tmp_path, demo_dir, step=0, **train_overrides):
    """A fresh trainer at `step` after one training step, its stats, and D's weights then."""
    trainer = _trainer(tmp_path, demo_dir, **train_overrides)
    trainer.step = step
    return trainer, trainer.train_step(*trainer.next_batch()), trainer.nets.discriminator.state_dict()


def test_training_steps_change_weights_and_losses_are_finite(tmp_path, demo_dir):
    trainer = _trainer(tmp_path, demo_dir)
    before_g = {k: v.clone() for k, v in trainer.nets.generator.state_dict().items()}
    before_d = {k: v.clone() for k, v in trainer.nets.discriminator.state_dict().items()}
    # Two steps: the genre embedding moves from the second, once conditional batch norm's genre
    # weights (zero at the start) have moved in the first.
    for _ in range(2):
        stats = trainer.train_step(*trainer.next_batch())
    assert all(torch.isfinite(v) for v in stats.values())
    assert set(stats) >= {"d_loss", "g_loss", "d_genre", "g_genre", "genre_acc", "d_real_acc"}
    after_g, after_d = trainer.nets.generator.state_dict(), trainer.nets.discriminator.state_dict()
    assert not torch.equal(before_g["to_rgb.0.weight"], after_g["to_rgb.0.weight"])
    assert not torch.equal(before_g["genre_embedding.weight"], after_g["genre_embedding.weight"])
    assert not torch.equal(before_d["genre_head.weight"], after_d["genre_head.weight"])


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_the_compile_mode_reaches_torch_compile_and_graphs_start_a_generation_each_step(tmp_path, demo_dir,
                                                                                       monkeypatch, mode):
    # CUDA graphs replay into memory of their own: each step must start a new generation (once, with
    # D's extra updates inside it), and only then. Compiling for real is the gpu_check test's part;
    # here torch.compile is recorded and hands the module back.
    modes, marks = [], []
    monkeypatch.setattr(torch, "compile", lambda module, mode=None: modes.append(mode) or module)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(trainer.step))
    trainer = _trainer(tmp_path, demo_dir, compile=True, compile_mode=mode, d_steps=2)
    assert modes == [mode, mode]  # G and D
    for step in range(3):
        trainer.step = step
        trainer.train_step(*trainer.next_batch())
    assert marks == ([0, 1, 2] if mode == "reduce-overhead" else [])


def _plan(demo_dir, pretrain_steps=0, steps=6, **overrides):
    """A plan for the tiny model; `overrides` name TrainConfig or ModelConfig fields."""
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model_overrides = {k: v for k, v in overrides.items() if k in model_fields}
    train_overrides = {k: v for k, v in overrides.items() if k not in model_fields}
    pretrain = (PhasePlan(tiny_train(phase="pretrain", steps=pretrain_steps, **train_overrides),
                          str(demo_dir / "unlabelled")) if pretrain_steps else None)
    finetune = PhasePlan(tiny_train(steps=steps, **train_overrides), str(demo_dir / "labelled")) if steps else None
    return TrainingPlan(model=tiny_model(**model_overrides), pretrain=pretrain, finetune=finetune)


def test_run_folder_tells_the_whole_story(tmp_path, demo_dir):
    final = run_training(tmp_path / "run", _plan(demo_dir, pretrain_steps=3, steps=6), progress=False)
    run = RunFolder(tmp_path / "run")
    assert final == run.checkpoint_path("finetune", 6)
    rows = run.read_metrics()
    assert [(r["phase"], r["step"]) for r in rows] == [("pretrain", 2), ("pretrain", 3), ("finetune", 2),
                                                      ("finetune", 4), ("finetune", 6)]
    assert all(r["img_per_s"] > 0 for r in rows)
    assert (run.path / "command.txt").read_text().strip()
    assert json.loads(run.config_path.read_text())["finetune"]["train"]["steps"] == 6
    assert run.sample_path("finetune", 6).is_file() and run.sample_path("pretrain", 3).is_file()
    config = read_checkpoint_config(final)
    assert config["model"].genres == list(sorted(TINY_GENRES)) and config["step"] == 6
    assert config["data"].num_images == 36 and config["train"].lr_g == 2e-4 and config["ema"]


def test_pretraining_weights_carry_into_finetuning(tmp_path, demo_dir):
    run_training(tmp_path / "pre", _plan(demo_dir, pretrain_steps=3, steps=0), progress=False)
    pre_state = load_file(str(tmp_path / "pre/checkpoints/pretrain-0000003/training_state.safetensors"))
    plan = _plan(demo_dir, steps=1, lr_g=1e-12, lr_d=1e-12)  # a tiny lr: weights barely move in one step
    plan.init_from = str(tmp_path / "pre")
    final = run_training(tmp_path / "fine", plan, progress=False)
    fine_state = load_file(str(final / "training_state.safetensors"))
    pre_w, fine_w = pre_state["generator.to_rgb.2.weight"], fine_state["generator.to_rgb.2.weight"]
    assert torch.allclose(pre_w, fine_w, atol=1e-6)
    # ...and the same run without --init-from starts elsewhere.
    final_fresh = run_training(tmp_path / "fresh", _plan(demo_dir, steps=1, lr_g=1e-12, lr_d=1e-12,
                                                         seed=5), progress=False)
    fresh_w = load_file(str(final_fresh / "training_state.safetensors"))["generator.to_rgb.2.weight"]
    assert not torch.allclose(pre_w, fresh_w, atol=1e-3)


def test_an_exported_generator_seeds_finetuning_with_a_fresh_discriminator(tmp_path, demo_dir):
    source = run_training(tmp_path / "run", _plan(demo_dir, steps=2), progress=False)
    main(["export", "--checkpoint", str(source), "--out", str(tmp_path / "export"), "--fp16"])
    plan = _plan(demo_dir, steps=1, lr_g=1e-12, lr_d=1e-12)
    plan.init_from = str(tmp_path / "export")
    final = run_training(tmp_path / "fine", plan, progress=False)

    exported = load_file(str(tmp_path / "export" / "generator.safetensors"))
    state = load_file(str(final / "training_state.safetensors"))
    assert torch.allclose(state["generator.to_rgb.2.weight"], exported["to_rgb.2.weight"].float(), atol=1e-3)
    # The discriminator is the one a run of that seed starts with.
    fresh = run_training(tmp_path / "fresh", _plan(demo_dir, steps=1, lr_g=1e-12, lr_d=1e-12), progress=False)
    fine_d = load_file(str(final / "discriminator.safetensors"))
    fresh_d = load_file(str(fresh / "discriminator.safetensors"))
    assert all(torch.allclose(fine_d[name], fresh_d[name], atol=1e-6) for name in fresh_d)


@pytest.mark.parametrize("overrides", [{"augment": "none"},
                                       {"augment": "translation,cutout", "coordinate_channels": True},
                                       {"d_steps": 2, "r1_gamma": 1.0, "lecam_weight": 0.3},
                                       {"genre_classifier": "contrastive", "generator_spectral_norm": True}],
                         ids=["plain", "augmented-coordinates", "d-steps-r1-lecam", "contrastive-generator-sn"])
def test_resume_continues_exactly_where_it_stopped(tmp_path, demo_dir, overrides):
    straight = run_training(tmp_path / "straight", _plan(demo_dir, steps=6, checkpoint_every=2, **overrides),
                            progress=False)

    plan = _plan(demo_dir, steps=6, checkpoint_every=2, **overrides)
    plan.finetune.train.steps = 4  # an interrupted run: stopped after its step-4 checkpoint
    run_training(tmp_path / "resumed", plan, progress=False)
    config_path = tmp_path / "resumed" / "config.json"
    config = json.loads(config_path.read_text())
    config["finetune"]["train"]["steps"] = 6
    config_path.write_text(json.dumps(config))
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as f:  # a row written after the last checkpoint
        f.write(json.dumps({"phase": "finetune", "step": 5, "d_loss": 0}) + "\n{\"cut")
    resumed = run_training(tmp_path / "resumed", resume=True, progress=False)

    assert resumed.name == straight.name == "finetune-0000006"
    for name in ("generator.safetensors", "discriminator.safetensors", "training_state.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(resumed / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    steps = [r["step"] for r in RunFolder(tmp_path / "resumed").read_metrics()]
    assert steps == [2, 4, 6]


def test_existing_run_is_never_overwritten(tmp_path, demo_dir):
    run_training(tmp_path / "run", _plan(demo_dir, steps=3), progress=False)
    with pytest.raises(GanError, match="already exists.*--resume"):
        run_training(tmp_path / "run", _plan(demo_dir, steps=3), progress=False)
    with pytest.raises(GanError, match="no run to resume"):
        run_training(tmp_path / "nothing", resume=True, progress=False)


def test_divergence_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, demo_dir):
    trainer = _trainer(tmp_path, demo_dir, steps=9, checkpoint_every=3, log_every=3, sample_every=100)
    original = trainer.train_step

    def poisoned(real, labels):
        stats = original(real, labels)
        if trainer.step >= 4:
            stats["d_loss"] = stats["d_loss"] * float("nan")
        return stats

    trainer.train_step = poisoned
    with pytest.raises(TrainingDiverged, match=r"diverged at finetune step 6 \(d_loss=nan\).*finetune-0000003"):
        trainer.fit()
    assert [c.name for c in trainer.run.checkpoints()] == ["finetune-0000003"]


def test_sample_grid_is_noise_rows_by_genre_columns(tmp_path, demo_dir):
    trainer = _trainer(tmp_path, demo_dir, sample_rows=2)
    from PIL import Image

    image = Image.open(trainer.save_samples())
    # 3 genres x 2 rows of 32 px tiles with 1 px padding
    assert image.size == (3 * 33 + 1, 2 * 33 + 1)


def test_bad_training_flags_are_one_line_errors(tmp_path, demo_dir):
    with pytest.raises(GanError, match="--batch-size must be at least 1"):
        tiny_train(batch_size=0).validate()
    with pytest.raises(GanError, match="--compile-mode reduce-overhead needs --compile"):
        tiny_train(compile_mode="reduce-overhead").validate()
    with pytest.raises(GanError, match="--resolution must be one of"):
        dataclasses.replace(tiny_model(), resolution=48).validate()
    plan = _plan(demo_dir, steps=3)
    plan.finetune.data = str(demo_dir / "unlabelled")
    with pytest.raises(GanError, match="no genre sub-folders"):
        run_training(tmp_path / "x", plan, progress=False)


def test_a_finished_run_trains_on_for_longer(tmp_path, demo_dir):
    run_training(tmp_path / "run", _plan(demo_dir, steps=3), progress=False)
    final = run_training(tmp_path / "run", resume=True, progress=False, finetune_steps=6)
    assert final.name == "finetune-0000006"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["finetune"]["train"]["steps"] == 6
    with pytest.raises(GanError, match="already at fine-tuning step 6"):
        run_training(tmp_path / "run", resume=True, progress=False, finetune_steps=4)


def test_a_run_from_before_newer_options_still_resumes(tmp_path, demo_dir):
    """Run folders and checkpoints written before the projection discriminator, augmentation and
    the mode-seeking term existed lack those fields and the augmentation RNG state: they read as
    off and train on."""
    from safetensors.torch import save_file

    plan = _plan(demo_dir, steps=3, augment="none")  # what such a run did
    plan.model.projection = False
    run_training(tmp_path / "run", plan, progress=False)
    for path in (tmp_path / "run").rglob("config.json"):
        config = json.loads(path.read_text())
        del config["model"]["projection"]
        train = config["train"] if "train" in config else config["finetune"]["train"]  # checkpoint or run folder
        for name in ("augment", "mode_seeking_weight", "lr_decay_from", "mode_seeking_cap", "genre_groups"):
            del train[name]
        path.write_text(json.dumps(config))
    for path in (tmp_path / "run").rglob("training_state.safetensors"):
        state = load_file(str(path))
        del state["rng.augment"]
        save_file(state, str(path))
    final = run_training(tmp_path / "run", resume=True, progress=False, finetune_steps=6)
    config = read_checkpoint_config(final)
    assert config["model"].projection is False
    old = config["train"]
    assert (old.augment, old.mode_seeking_weight, old.lr_decay_from, old.mode_seeking_cap, old.genre_groups) \
        == ("none", 0.0, 1.0, False, False)
    assert not any(name.startswith("genre_projection") for name in load_file(str(final / "discriminator.safetensors")))


def test_mode_seeking_term_pairs_fakes_and_is_logged(tmp_path, demo_dir):
    from gan.train.loop import mode_seeking_ratio

    noise = torch.randn(4, 16)
    same = torch.ones(4, 3, 8, 8)
    assert torch.equal(mode_seeking_ratio(same, noise), torch.zeros(2))  # noise ignored: ratio 0
    apart = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)] * 2)
    expected = 1 / (noise[0::2] - noise[1::2]).abs().mean(1)
    assert torch.allclose(mode_seeking_ratio(apart, noise), expected)

    trainer = _trainer(tmp_path, demo_dir, mode_seeking_weight=1.0)
    stats = trainer.train_step(*trainer.next_batch())
    assert stats["g_spread"] > 0 and torch.isfinite(stats["g_loss"])
    with pytest.raises(GanError, match="--batch-size 7 must give each of the 1 process"):
        _trainer(tmp_path, demo_dir, mode_seeking_weight=1.0, batch_size=7)
    with pytest.raises(GanError, match="--mode-seeking-weight must not be negative"):
        tiny_train(mode_seeking_weight=-1).validate()


def test_mode_seeking_stops_at_the_real_covers_distance(tmp_path, demo_dir):
    from gan.train.loop import capped_ratio, mode_seeking_ratio, real_cover_gaps

    noise = torch.randn(4, 16)
    fakes = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)] * 2).requires_grad_()  # pairs 1 apart
    noise_gap = (noise[0::2] - noise[1::2]).abs().mean(1)
    capped = capped_ratio(mode_seeking_ratio(fakes, noise), noise, torch.tensor([0.25, 2.0]))
    assert torch.allclose(capped, torch.tensor([0.25, 1.0]) / noise_gap)  # the first pair is over its cap
    (1 / capped).sum().backward()
    assert fakes.grad[:2].abs().sum() == 0 and fakes.grad[2:].abs().sum() > 0  # only the second is pushed

    # Genre 0: one image repeated (distance 0); genre 1: black and white (distance 2 on [-1, 1]);
    # genre 2: a single cover (no pair: no cap).
    images = np.concatenate([np.full((3, 3, 4, 4), 90, np.uint8), np.zeros((1, 3, 4, 4), np.uint8),
                             np.full((1, 3, 4, 4), 255, np.uint8), np.zeros((1, 3, 4, 4), np.uint8)])
    labels = np.array([0, 0, 0, 1, 1, 2])
    gaps = real_cover_gaps(images, labels, 3, seed=0, pairs=64)
    assert gaps[0] == 0 and gaps[1] == pytest.approx(2.0) and gaps[2] == math.inf
    assert torch.equal(gaps, real_cover_gaps(images, labels, 3, seed=0, pairs=64))  # fixed seed: every rank agrees
    assert real_cover_gaps(images, None, 0, seed=0).shape == (1,)  # unlabelled: one distance for all covers

    trainer = _trainer(tmp_path, demo_dir, mode_seeking_weight=1.0, mode_seeking_cap=True)
    assert trainer.pair_gap_caps.shape == (len(trainer.data.genres),) and (trainer.pair_gap_caps > 0).all()
    assert torch.isfinite(trainer.train_step(*trainer.next_batch())["g_loss"])
    assert _trainer(tmp_path, demo_dir, mode_seeking_weight=1.0).pair_gap_caps is None  # off by default


def test_mode_seeking_sees_layout_and_colour_not_grain():
    """At a coarse scale, grain that averages out buys a generator no variety; a change of colour or
    layout counts as much as at full resolution."""
    from gan.train.loop import coarse, mode_seeking_ratio, real_cover_gaps

    noise = torch.randn(2, 16)
    grain = torch.tensor([1.0, -1.0]).repeat(32)  # a checkerboard: every 2x2 block averages to 0
    grainy = torch.stack([torch.zeros(3, 64, 64), (grain[:64, None] * grain[None, :64]).expand(3, 64, 64)])
    assert mode_seeking_ratio(grainy, noise) > 0  # at full resolution the grain looks like variety
    assert mode_seeking_ratio(grainy, noise, scale=16) == 0  # averaged down it is none
    recoloured = torch.stack([torch.zeros(3, 64, 64), torch.full((3, 64, 64), 0.5)])
    assert torch.allclose(mode_seeking_ratio(recoloured, noise, scale=16), mode_seeking_ratio(recoloured, noise))
    assert coarse(grainy, 16).shape == (2, 3, 16, 16) and coarse(grainy, 0) is grainy and coarse(grainy, 64) is grainy
    # The cap (--mode-seeking-cap) measures real covers the same way: a cover and its inverse grain differ
    # by 255 a pixel, and not at all averaged down.
    real = ((grainy[1:] + 1) * 127.5).to(torch.uint8).numpy()
    real = np.concatenate([real, 255 - real])
    assert real_cover_gaps(real, None, 0, seed=0, pairs=16) > 1.5
    assert real_cover_gaps(real, None, 0, seed=0, pairs=16, scale=16) == 0


def test_r1_is_the_squared_gradient_norm_on_real_covers(tmp_path, demo_dir):
    """R1 on a linear critic is its weight's squared norm; in training it is charged every R1_EVERY
    steps, scaled up as much, and changes D's step only when charged."""
    from gan.train.loop import r1_penalty

    weight = torch.randn(3, 4, 4, requires_grad=True)
    real = torch.randn(5, 3, 4, 4, requires_grad=True)
    penalty = r1_penalty((real * weight).sum(dim=(1, 2, 3)), real)
    assert penalty.item() == pytest.approx(weight.square().sum().item(), rel=1e-5)
    penalty.backward()  # it keeps its graph, so D's weights learn from it
    assert torch.allclose(weight.grad, 2 * weight.detach())

    _, plain_stats, plain_d = _d_after_one_step(tmp_path / "plain", demo_dir, R1_EVERY)
    penalised, stats, penalised_d = _d_after_one_step(tmp_path / "charged", demo_dir, R1_EVERY, r1_gamma=10.0)
    assert "d_r1" not in plain_stats and stats["d_r1"] > 0
    assert stats["d_loss"] > stats["d_adv"] + penalised.config.genre_loss_weight * stats["d_genre"]
    assert any(not torch.equal(plain_d[k], penalised_d[k]) for k in plain_d)  # same seed, same batch
    _, _, uncharged_d = _d_after_one_step(tmp_path / "uncharged", demo_dir, R1_EVERY + 1, r1_gamma=10.0)
    _, _, plain_uncharged_d = _d_after_one_step(tmp_path / "plain-uncharged", demo_dir, R1_EVERY + 1)
    assert all(torch.equal(plain_uncharged_d[k], uncharged_d[k]) for k in plain_d)
    assert TrainConfig().r1_gamma == 0  # off by default


def test_lecam_penalises_scores_beyond_the_other_sides_anchor():
    """Real scores above the fakes' anchor and fake scores below the real covers' count, squared;
    scores on the near side count nothing; the anchors take no gradient."""
    from gan.train.loop import lecam_penalty

    anchors = torch.tensor([0.5, -1.0], requires_grad=True)  # (real, fake)
    real = torch.tensor([-2.0, 1.0], requires_grad=True)  # 0 and 2 above the fakes' anchor
    fake = torch.tensor([0.0, 2.0, 1.5], requires_grad=True)  # 0.5, 0 and 0 below the real covers'
    penalty = lecam_penalty(real, fake, anchors.detach())
    assert penalty.item() == pytest.approx((0 + 4) / 2 + (0.25 + 0 + 0) / 3)
    penalty.backward()
    assert torch.allclose(real.grad, torch.tensor([0.0, 2.0]))  # d/dx of (x + 1)^2 / 2 at 1
    assert torch.allclose(fake.grad, torch.tensor([-1 / 3, 0.0, 0.0]))
    assert anchors.grad is None


def test_lecam_anchors_start_at_the_first_scores_then_follow_them_slowly(tmp_path, demo_dir):
    from gan.train.loop import LECAM_ANCHOR_DECAY

    trainer = _trainer(tmp_path, demo_dir, lecam_weight=0.5)
    assert trainer.lecam_anchors.isnan().all()  # nothing seen yet
    trainer.update_lecam_anchors(torch.tensor([1.0, 3.0]), torch.tensor([-4.0]))
    assert trainer.lecam_anchors.tolist() == [2.0, -4.0]
    trainer.update_lecam_anchors(torch.tensor([12.0]), torch.tensor([6.0]))
    moved = 1 - LECAM_ANCHOR_DECAY
    assert trainer.lecam_anchors.tolist() == pytest.approx([2 + 10 * moved, -4 + 10 * moved])

    # In training: D's step charges the penalty at its weight, and it changes D.
    _, plain_stats, plain_d = _d_after_one_step(tmp_path / "plain", demo_dir)
    charged, stats, charged_d = _d_after_one_step(tmp_path / "charged", demo_dir, lecam_weight=10.0)
    assert "d_lecam" not in plain_stats and stats["d_lecam"] > 0
    assert not charged.lecam_anchors.isnan().any()
    expected = stats["d_adv"] + charged.config.genre_loss_weight * stats["d_genre"] + 10 * stats["d_lecam"]
    assert stats["d_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert any(not torch.equal(plain_d[k], charged_d[k]) for k in plain_d)  # same seed, same batch
    assert TrainConfig().lecam_weight == 0  # off by default


def test_a_lecam_checkpoint_without_its_anchors_is_refused_in_one_line(tmp_path, demo_dir):
    from safetensors.torch import save_file

    final = run_training(tmp_path / "run", _plan(demo_dir, steps=2, lecam_weight=0.3), progress=False)
    state_file = final / "training_state.safetensors"
    state = load_file(str(state_file))
    assert state["lecam.anchors"].shape == (2,) and state["lecam.anchors"].isfinite().all()
    save_file({k: v for k, v in state.items() if k != "lecam.anchors"}, str(state_file))
    trainer = _trainer(tmp_path / "resumed", demo_dir, lecam_weight=0.3)
    with pytest.raises(GanError, match=r"training_state.safetensors: no lecam.anchors.*--lecam-weight.*damaged"):
        trainer.resume_from(final)


def test_extra_d_steps_each_take_a_batch_of_their_own(tmp_path, demo_dir):
    trainer = _trainer(tmp_path, demo_dir, d_steps=3)
    seen, d_update = [], trainer.d_update

    def spy(real, *args, **kwargs):
        seen.append(real.clone())
        return d_update(real, *args, **kwargs)

    trainer.d_update = spy
    stats = trainer.train_step(*trainer.next_batch())
    assert len(seen) == 3 and all(torch.isfinite(v) for v in stats.values())
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    assert TrainConfig().d_steps == 1  # one by default


def test_fakes_and_real_covers_come_in_groups_of_one_genre(tmp_path, demo_dir):
    """With genre groups (`--genre-groups`) each minibatch-stddev group of real covers, and of fakes, is
    one genre, so D compares within-genre variety; without them genres mix within a group."""
    trainer = _trainer(tmp_path, demo_dir, batch_size=16, mode_seeking_weight=0.3, genre_groups=True)
    group = trainer.nets.discriminator.stddev_group
    assert group == trainer.genre_group == 4
    seen = {}

    def spy(images, genres=None):
        seen.setdefault("real" if "real" not in seen else "fake", genres.clone())
        return real_forward(images, genres)

    real_forward, trainer.d_step = trainer.d_step, spy
    trainer.train_step(*trainer.next_batch())
    for genres in seen.values():
        assert (genres.view(-1, group) == genres.view(-1, group)[:, :1]).all()
    assert len(torch.cat(list(seen.values())).unique()) > 1
    mixed = _trainer(tmp_path / "mixed", demo_dir, batch_size=16)  # off by default
    labels = torch.cat([mixed.next_batch()[1] for _ in range(5)]).view(-1, 4)
    assert mixed.genre_group == 1 and not (labels == labels[:, :1]).all()


def test_learning_rates_hold_then_fall_linearly_to_zero(tmp_path, demo_dir):
    from gan.train.loop import learning_rate_factor

    assert [learning_rate_factor(step, 10, 0.6) for step in range(10)] == [1.0] * 7 + [0.75, 0.5, 0.25]
    assert {learning_rate_factor(step, 10, 1.0) for step in range(10)} == {1.0}
    assert [learning_rate_factor(step, 4, 0.0) for step in range(4)] == [1.0, 0.75, 0.5, 0.25]

    trainer = _trainer(tmp_path, demo_dir, steps=4, lr_decay_from=0.5, lr_g=1e-3, lr_d=3e-3)
    trainer.step = 3  # as when resumed from a checkpoint of step 3: the schedule follows the step
    trainer.set_learning_rates()
    assert [g["lr"] for g in trainer.nets.opt_g.param_groups] == [pytest.approx(0.5e-3)]
    assert [g["lr"] for g in trainer.nets.opt_d.param_groups] == [pytest.approx(1.5e-3)]
    with pytest.raises(GanError, match=r"--lr-decay-from must be in \[0, 1\], got 1.5"):
        tiny_train(lr_decay_from=1.5).validate()


def test_the_ema_averages_a_growing_share_of_the_steps_up_to_its_decay(tmp_path, demo_dir):
    from gan.train.loop import ema_decay_at

    # The recipe's ramp: an average over about the last ninth of the steps so far.
    assert [ema_decay_at(step, 0.999, 1 / 9) for step in (0, 8, 2999)] == [0.1, 0.5, 3000 / 3009]
    assert ema_decay_at(2999, 0.999, 1 / 3) == pytest.approx(0.999)  # a third: the cap at the 3,000th step
    assert ema_decay_at(10_000, 0.999, 1 / 3) == 0.999
    assert ema_decay_at(0, 0.99, 0.0) == 0.99  # no ramp

    trainer = _trainer(tmp_path, demo_dir, ema_decay=0.999, ema_rampup=0.5)
    trainer.step = 1  # decay 2 / 4: the EMA moves halfway to G
    before = [p.clone() for p in trainer.nets.ema.parameters()]
    with torch.no_grad():
        for p in trainer.nets.generator.parameters():
            p.add_(1.0)
    trainer.update_ema()
    for old, new, live in zip(before, trainer.nets.ema.parameters(), trainer.nets.generator.parameters()):
        torch.testing.assert_close(new, (old + live) / 2)
    with pytest.raises(GanError, match=r"--ema-rampup must be in \[0, 1\], got 2.0"):
        tiny_train(ema_rampup=2.0).validate()


def test_a_resume_after_kill_9_before_any_checkpoint_counts_no_step_twice(tmp_path, demo_dir):
    """kill -9 after metrics rows but before the first checkpoint: the resume starts at step 0
    and the phase's rows go, so metrics.jsonl holds each step once."""
    run = RunFolder(tmp_path / "run")
    run_training(run.path, _plan(demo_dir, pretrain_steps=2, steps=4, checkpoint_every=100), progress=False)
    for folder in run.checkpoints("finetune"):  # as if killed before fine-tuning's first checkpoint
        shutil.rmtree(folder)
    run_training(run.path, resume=True, progress=False)
    assert [(r["phase"], r["step"]) for r in run.read_metrics()] == [("pretrain", 2), ("finetune", 2),
                                                                    ("finetune", 4)]


def test_a_run_that_failed_before_training_leaves_nothing_in_the_way(tmp_path, demo_dir, caplog):
    plan = _plan(demo_dir, steps=2)
    plan.finetune.data = str(tmp_path / "missing")
    with pytest.raises(GanError, match="missing: data folder not found"):
        run_training(tmp_path / "run", plan, progress=False)
    plan.init_from = str(tmp_path / "no-such-checkpoint")
    plan.finetune.data = str(demo_dir / "labelled")
    with pytest.raises(GanError, match="no-such-checkpoint: checkpoint not found"):
        run_training(tmp_path / "run", plan, progress=False)
    assert not (tmp_path / "run").exists()  # checked before the run folder was written
    plan.init_from = None
    assert run_training(tmp_path / "run", plan, progress=False).name == "finetune-0000002"

    # A run that wrote its plan and then died before its first step (killed, or by an earlier
    # version) may be started again; one that trained may not.
    never = RunFolder(tmp_path / "never")
    never.path.mkdir()
    (never.path / "config.json").write_text(json.dumps(_plan(demo_dir, steps=5).to_json()))
    with caplog.at_level(logging.INFO, logger="gan"):
        assert run_training(never.path, plan, progress=False).name == "finetune-0000002"
    assert "replacing the run there, which never trained a step" in caplog.text
    with pytest.raises(GanError, match="a run already exists here; add --resume"):
        run_training(never.path, plan, progress=False)


@pytest.mark.parametrize("change, fix", [(dict(generator_spectral_norm=True), "--no-generator-spectral-norm"),
                                         (dict(architecture="dcgan", coordinate_channels=False, upsample="nearest",
                                               discriminator_min_channels=0),
                                          "--architecture resnet"),
                                         (dict(coordinate_channels=False), "--coordinate-channels"),
                                         (dict(generator_min_channels=64), "--generator-min-channels 0"),
                                         (dict(coordinate_frequencies=4), "--coordinate-frequencies 0"),
                                         (dict(coordinate_frequencies=1, coordinate_rings=True),
                                          "--coordinate-frequencies 0")])
def test_init_from_a_model_whose_layers_differ_is_refused_with_the_flag_to_pass(tmp_path, demo_dir, tiny_run,
                                                                                change, fix):
    """Weights carry over by name and shape: a generator with other layer names (spectral norm),
    widths (coordinate channels) or architecture would hand over little or nothing, so the run is
    refused before it starts."""
    plan = _plan(demo_dir, steps=2, **change)
    plan.init_from = str(tiny_run)
    field = next(iter(change))
    with pytest.raises(GanError, match=f"its {field} is {getattr(ModelConfig(), field)}, .* pass {fix}$"):
        run_training(tmp_path / "run", plan, progress=False)
    assert not (tmp_path / "run").exists()

def test_a_checkpoint_replacement_cut_short_is_recovered_and_temporaries_are_swept(tmp_path, demo_dir, caplog):
    """What kill -9 can leave in a run folder, and what the next start makes of it."""
    run = RunFolder(tmp_path / "run")
    run_training(run.path, _plan(demo_dir, steps=6, checkpoint_every=3, keep_checkpoints=5), progress=False)
    newest = run.checkpoint_path("finetune", 6)
    os.rename(newest, newest.with_name(".old-finetune-0000006-4242"))  # replaced: the first rename done...
    (run.checkpoints_dir / ".tmp-finetune-0000006-4242").mkdir()  # ...the new copy not yet in place
    (run.checkpoints_dir / ".tmp-finetune-0000006-4242" / "config.json").write_text("{}")
    (run.checkpoints_dir / ".trash-finetune-0000001-4242").mkdir()  # a deletion cut short
    (run.checkpoints_dir / "finetune-0000002").mkdir()  # a deletion cut short by an earlier version
    shutil.copy(run.checkpoint_path("finetune", 3) / "config.json", run.checkpoints_dir / "finetune-0000002")
    (run.samples_dir / ".tmp-finetune-0000007.png").write_bytes(b"half a png")
    (run.path / ".config.json.tmp-4242").write_text("{")

    with caplog.at_level(logging.INFO, logger="gan"):
        final = run_training(run.path, resume=True, progress=False, finetune_steps=9)
    assert "resuming finetune from step 6" in caplog.text  # the set-aside checkpoint was found again
    assert final.name == "finetune-0000009"
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == ["finetune-0000003", "finetune-0000006",
                                                                     "finetune-0000009"]
    assert not [p for p in run.path.rglob(".*")]


def test_a_kill_while_pruning_leaves_no_half_deleted_checkpoint(tmp_path, demo_dir, monkeypatch):
    run = RunFolder(tmp_path / "run")
    run_training(run.path, _plan(demo_dir, steps=6, checkpoint_every=2, keep_checkpoints=5), progress=False)

    def killed_after_one_file(path, *args, **kwargs):
        next(p for p in Path(path).iterdir()).unlink()
        raise KeyboardInterrupt  # stands for kill -9: nothing after this runs

    monkeypatch.setattr(shutil, "rmtree", killed_after_one_file)
    with pytest.raises(KeyboardInterrupt):
        run.prune_checkpoints("finetune", keep=1, final_step=6)
    monkeypatch.undo()
    for folder in run.checkpoints_dir.iterdir():
        if not folder.name.startswith("."):
            assert len(list(folder.iterdir())) == 5, folder  # whole, or out of sight
    run.recover_interrupted_writes()
    assert len(list(run.checkpoints_dir.iterdir())) == 2


def test_resuming_on_another_kind_of_device_reseeds_the_random_streams_with_a_warning(tmp_path, tiny_run, caplog):
    """A CUDA generator's state (16 bytes, Philox) does not fit a CPU generator (Mersenne Twister) or the
    other way round: faked here by giving a CPU run the state sizes a GPU run would have saved."""
    from safetensors.torch import save_file

    shutil.copytree(tiny_run, tmp_path / "gpu-run")
    checkpoint = tmp_path / "gpu-run" / "checkpoints" / "finetune-0000003"
    state = load_file(str(checkpoint / "training_state.safetensors"))
    state["rng.noise"] = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)
    state["rng.augment"] = torch.tensor([11] + [0] * 15, dtype=torch.uint8)
    save_file(state, str(checkpoint / "training_state.safetensors"))
    plain = json.loads((checkpoint / "training_state.json").read_text())
    (checkpoint / "training_state.json").write_text(json.dumps({**plain, "device": "cuda"}))
    shutil.copytree(tmp_path / "gpu-run", tmp_path / "again")

    with caplog.at_level(logging.WARNING, logger="gan"):
        first = run_training(tmp_path / "gpu-run", resume=True, progress=False, finetune_steps=5)
    assert "rng.noise: saved on cuda, resumed on cpu" in caplog.text
    second = run_training(tmp_path / "again", resume=True, progress=False, finetune_steps=5)
    a, b = load_file(str(first / "training_state.safetensors")), load_file(str(second / "training_state.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # reseeded the same way both times

    state["rng.noise"] = torch.zeros(4, dtype=torch.float32)
    save_file(state, str(checkpoint / "training_state.safetensors"))
    shutil.rmtree(first)
    with pytest.raises(GanError, match="rng.noise: not a random-number generator state"):
        run_training(tmp_path / "gpu-run", resume=True, progress=False)


def test_init_from_carries_genres_over_by_name(tmp_path, tiny_run, caplog):
    """The source knows classical, pop, rock; the new run rock, jazz, classical (another order, one new)."""
    from gan.train.loop import build_networks, initialise_from

    source = tiny_run / "checkpoints" / "finetune-0000003"
    live_g = {k[len("generator."):]: v for k, v in load_file(str(source / "training_state.safetensors")).items()
              if k.startswith("generator.")}
    source_d, source_ema = load_file(str(source / "discriminator.safetensors")), load_file(str(source / GENERATOR_FILE))
    model, train = tiny_model(genres=["rock", "jazz", "classical"]), tiny_train()
    nets = build_networks(model, train, torch.device("cpu"))
    with caplog.at_level(logging.INFO, logger="gan"):
        fresh = initialise_from(nets, source)
    untouched = build_networks(model, train, torch.device("cpu"))  # what a fresh start has

    rows = {"rock": 2, "jazz": None, "classical": 0}  # each genre's row in the source
    for row, genre in enumerate(model.genres):
        pairs = [(nets.generator.genre_embedding.weight, live_g["genre_embedding.weight"],
                  untouched.generator.genre_embedding.weight),
                 (nets.ema.genre_embedding.weight, source_ema["genre_embedding.weight"],
                  untouched.ema.genre_embedding.weight),
                 (nets.discriminator.genre_head.weight, source_d["genre_head.weight"],
                  untouched.discriminator.genre_head.weight),
                 (nets.discriminator.genre_head.bias, source_d["genre_head.bias"],
                  untouched.discriminator.genre_head.bias)]
        for got, saved, initial in pairs:
            expected = initial[row] if rows[genre] is None else saved[rows[genre]]
            assert torch.equal(got[row].detach(), expected.detach()), genre
    assert "genre_embedding.weight[1]" in fresh and "genre_head.weight[1]" in fresh
    assert ("carried over by name: rock, classical; new, freshly initialised: jazz; not in this run: pop"
            in caplog.text)


def test_a_run_without_a_progress_bar_logs_a_progress_line_every_log_interval(tmp_path, demo_dir, caplog):
    trainer = _trainer(tmp_path, demo_dir, steps=4, log_every=2, sample_every=100, checkpoint_every=100)
    with caplog.at_level(logging.INFO, logger="gan"):
        trainer.fit()
    lines = [r.getMessage() for r in caplog.records if " img/s " in r.getMessage()]
    assert len(lines) == 2
    for line, step in zip(lines, (2, 4)):
        assert re.fullmatch(rf"finetune step {step}/4  [\d.]+ img/s  d_loss [\d.-]+  g_loss [\d.-]+  ETA \d+s", line)
