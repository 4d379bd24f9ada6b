"""Diversity, nearest neighbours, run comparison, sweeps and the report, on tiny inputs."""

import csv
import dataclasses
import json

import numpy as np
import pytest
from conftest import tiny_model, tiny_train

from gan import load_generator
from gan.cli import main
from gan.data.real import real_images_by_genre
from gan.errors import GanError
from gan.eval.compare import config_differences, load_run, write_comparison
from gan.eval.diversity import evaluate_diversity, pair_scores, write_diversity
from gan.eval.nearest import nearest_group
from gan.train.run import PhasePlan, TrainingPlan
from gan.train.sweep import run_sweep, sweep_plans


def test_diversity_outputs_and_schema(tiny_run, demo_dir, tmp_path):
    generator = load_generator(tiny_run)
    real = real_images_by_genre(demo_dir / "labelled", 32)
    result = evaluate_diversity(generator, n=6, pairs=10, seed=1, real=real, genres=["rock", "pop"])
    assert [(g.genre, g.source) for g in result.groups] == [("rock", "generated"), ("rock", "real"),
                                                           ("pop", "generated"), ("pop", "real")]
    assert all(len(g.scores) == 10 for g in result.groups)
    paths = write_diversity(result, tmp_path)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert list(rows[0]) == ["genre", "source", "i", "j", "score"] and len(rows) == 40
    summary = json.loads(paths["json"].read_text())
    assert summary["settings"]["msssim"]["upscale_to"] == 64 and summary["settings"]["pairs"] == 10
    group = summary["groups"][0]
    assert set(group) >= {"mean", "median", "q1", "q3", "outliers", "share_above_threshold"}
    assert group["q1"] <= group["median"] <= group["q3"]
    assert "plotly" in paths["html"].read_text()[:100000].lower()
    # the same seed gives the same scores
    again = evaluate_diversity(generator, n=6, pairs=10, seed=1, genres=["rock"])
    assert np.array_equal(again.group("rock", "generated").scores, result.group("rock", "generated").scores)


def test_outliers_follow_the_iqr_rule():
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    images[1] = images[0]  # one pair of identical images among random ones
    scores = pair_scores(images, "all", 0, "rock", "generated")
    summary = scores.summary()
    assert summary["pairs"] == 28
    assert summary["outliers"][0] == {"i": 0, "j": 1, "score": pytest.approx(1.0, abs=1e-5)}


def test_diversity_bad_input(tiny_run):
    generator = load_generator(tiny_run)
    with pytest.raises(GanError, match="unknown genre 'polka'"):
        evaluate_diversity(generator, n=4, pairs=3, genres=["polka"])
    with pytest.raises(GanError, match="needs at least 2 images"):
        evaluate_diversity(generator, n=4, pairs=3, genres=["rock"], real={"rock": np.zeros((1, 32, 32, 3), np.uint8)})
    with pytest.raises(GanError, match=r"real data has genre\(s\) \['metal'\]"):
        evaluate_diversity(generator, n=4, pairs=3, real={"metal": np.zeros((3, 32, 32, 3), np.uint8)})


def test_nearest_flags_a_copied_training_image():
    rng = np.random.default_rng(0)
    training = rng.integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    fresh = rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    copies = training[:10].copy()
    honest = nearest_group(fresh, training, "rock").summary()
    copying = nearest_group(copies, training, "rock")
    assert copying.summary()["share_closer_than_training"] == 1.0
    assert honest["share_closer_than_training"] < 0.5
    assert np.array_equal(copying.indices[:, 0], np.arange(10))
    assert copying.msssim[:, 0] == pytest.approx(1.0, abs=1e-5)


def test_sweep_and_comparison(demo_dir, tmp_path):
    base = TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=2, sample_every=2),
                                                               str(demo_dir / "labelled")))
    plans = sweep_plans(base, "latent_dim", ["8", "16"])
    assert [name for name, _ in plans] == ["latent_dim-8", "latent_dim-16"]
    assert [p.model.latent_dim for _, p in plans] == [8, 16]
    with pytest.raises(GanError, match="cannot be swept"):
        sweep_plans(base, "colour", ["1"])
    with pytest.raises(GanError, match="not a valid lr_g"):
        sweep_plans(base, "lr_g", ["fast"])
    assert [p.model.projection for _, p in sweep_plans(base, "projection", ["on", "off"])] == [True, False]
    with pytest.raises(GanError, match="--values for projection are 'on' and 'off'"):
        sweep_plans(base, "projection", ["yes"])
    assert [p.finetune.train.mode_seeking_weight for _, p in sweep_plans(base, "mode_seeking_weight", ["0", "0.3"])] \
        == [0.0, 0.3]
    assert [p.finetune.train.mode_seeking_cap for _, p in sweep_plans(base, "mode_seeking_cap", ["on", "off"])] \
        == [True, False]
    assert [p.finetune.train.genre_groups for _, p in sweep_plans(base, "genre_groups", ["on", "off"])] \
        == [True, False]
    assert [p.model.pixel_noise for _, p in sweep_plans(base, "pixel_noise", ["off", "on"])] == [False, True]
    assert [p.model.coordinate_channels for _, p in sweep_plans(base, "coordinate_channels", ["off", "on"])] \
        == [False, True]
    assert [p.model.generator_spectral_norm for _, p in sweep_plans(base, "generator_spectral_norm", ["on", "off"])] \
        == [True, False]
    assert [p.model.generator_min_channels for _, p in sweep_plans(base, "generator_min_channels", ["0", "32"])] \
        == [0, 32]
    assert [p.model.coordinate_frequencies for _, p in sweep_plans(base, "coordinate_frequencies", ["0", "4"])] \
        == [0, 4]
    waves = dataclasses.replace(base, model=tiny_model(coordinate_frequencies=2))
    assert [p.model.coordinate_genre_gains for _, p in sweep_plans(waves, "coordinate_genre_gains", ["off", "on"])] \
        == [False, True]
    with pytest.raises(GanError, match="^--coordinate-genre-gains needs --coordinate-frequencies N"):
        sweep_plans(base, "coordinate_genre_gains", ["on"])  # no waves to scale
    assert [p.finetune.train.d_steps for _, p in sweep_plans(base, "d_steps", ["1", "2"])] == [1, 2]
    assert [p.finetune.train.r1_gamma for _, p in sweep_plans(base, "r1_gamma", ["0", "4"])] == [0.0, 4.0]
    assert [p.finetune.train.lecam_weight for _, p in sweep_plans(base, "lecam_weight", ["0", "0.3"])] == [0.0, 0.3]
    assert [p.model.genre_classifier for _, p in sweep_plans(base, "genre_classifier", ["softmax", "contrastive"])] \
        == ["softmax", "contrastive"]
    with pytest.raises(GanError, match="--genre-classifier must be one of"):
        sweep_plans(base, "genre_classifier", ["cosine"])
    finals = run_sweep(tmp_path / "sweep", base, "latent_dim", ["8", "16"], progress=False)
    assert [f.name for f in finals] == ["finetune-0000002"] * 2
    assert run_sweep(tmp_path / "sweep", base, "latent_dim", ["8", "16"], progress=False) == finals  # done: skipped
    runs = [load_run(f.parent.parent) for f in finals]
    differences = config_differences(runs)
    assert differences == {"model.latent_dim": [8, 16]}
    page = write_comparison(runs, tmp_path / "cmp").read_text()
    assert "model.latent_dim" in page and "Sample grids at finetune step 2" in page and "d_loss" in page


def test_report_cli(tiny_run, demo_dir, tmp_path, capsys):
    main(["evaluate", "report", "--checkpoint", str(tiny_run), "--real", str(demo_dir / "labelled"), "--n", "4",
          "--pairs", "5", "--out", str(tmp_path)])
    page = (tmp_path / "report.html").read_text()
    for heading in ("Samples: rows are fixed noise", "Realism: Frechet distance", "Within-genre MS-SSIM",
                    "Colour statistics", "Memorisation"):
        assert heading in page
    assert {p.name for p in tmp_path.iterdir()} >= {"diversity_scores.csv", "colour_summary.json",
                                                    "nearest_summary.json", "realism.json", "report.html"}
    realism = json.loads((tmp_path / "realism.json").read_text())
    assert [row["genre"] for row in realism["scores"]] == ["classical", "pop", "rock", "all genres"]
    assert all(row["ratio"] > 0 and row["frechet_floor"] > 0 for row in realism["scores"])
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "diversity", "--checkpoint", str(tiny_run), "--genres", "polka", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "unknown genre 'polka'" in capsys.readouterr().err


def test_colour_nearest_and_compare_commands(tiny_run, demo_dir, tmp_path, capsys):
    main(["evaluate", "colour", "--checkpoint", str(tiny_run), "--real", str(demo_dir / "labelled"), "--n", "4",
          "--genres", "rock,pop", "--out", str(tmp_path / "colour")])
    summary = json.loads((tmp_path / "colour" / "colour_summary.json").read_text())
    assert [(g["genre"], g["source"]) for g in summary["groups"]] == [("rock", "generated"), ("rock", "real"),
                                                                     ("pop", "generated"), ("pop", "real")]
    main(["evaluate", "nearest", "--checkpoint", str(tiny_run), "--data", str(demo_dir / "labelled"), "--n", "4",
          "--out", str(tmp_path / "nearest")])
    assert "closer than training covers are to each other" in capsys.readouterr().out
    groups = json.loads((tmp_path / "nearest" / "nearest_summary.json").read_text())["groups"]
    assert {g["genre"] for g in groups} == {"classical", "pop", "rock"}
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "compare", str(tiny_run), "--out", str(tmp_path / "cmp")])
    assert exit_info.value.code == 2 and "at least two run folders" in capsys.readouterr().err
