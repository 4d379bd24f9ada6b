"""Quality tracked during fine-tuning: eval rows in metrics.jsonl and the best checkpoint."""

import json

import pytest
from conftest import tiny_model, tiny_train

from gan.checkpoint import read_json, resolve_checkpoint
from gan.cli import main
from gan.data.demo import write_demo_dataset
from gan.errors import GanError
from gan.train import PhasePlan, TrainingPlan, run_training
from gan.train.quality import SCORE, QualityTracker

GENRES = ("rock", "pop", "classical")


@pytest.fixture(scope="module")
def enough_covers(tmp_path_factory):
    """36 covers per genre: enough for a reference, a floor and a judge of 12 each."""
    out = tmp_path_factory.mktemp("demo36")
    write_demo_dataset(out, per_genre=36, unlabelled=0, size=32, seed=0, genres=GENRES, workers=1)
    return out / "labelled"


@pytest.fixture(autouse=True)
def quick_judge(monkeypatch, tmp_path):
    monkeypatch.setattr("gan.train.quality.JUDGE_STEPS", 20)
    monkeypatch.setenv("COVERGAN_CACHE_DIR", str(tmp_path / "cache"))


def _plan(data, **overrides) -> TrainingPlan:
    train = tiny_train(**{"steps": 4, "eval_every": 2, "eval_covers": 8, "checkpoint_every": 1,
                          "keep_checkpoints": 1, **overrides})
    return TrainingPlan(model=tiny_model(), finetune=PhasePlan(train, str(data)))


def _eval_rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == "eval"]


def test_quality_is_logged_and_the_best_checkpoint_kept(tmp_path, enough_covers):
    run = tmp_path / "run"
    run_training(run, _plan(enough_covers), progress=False)
    rows = _eval_rows(run)
    assert [r["step"] for r in rows] == [2, 4]
    for row in rows:
        assert row["phase"] == "finetune" and row["eval_covers"] == 8
        assert row["realism_ratio"] > 0 and row["realism_worst"] >= row["realism_mean"] > 0
        assert 0 <= row["fidelity_min"] <= row["fidelity_mean"] <= 1
        assert -1 <= row["msssim_gap_max"] <= 1
    best = resolve_checkpoint(run, best=True)
    quality = read_json(best / "config.json")["quality"]
    chosen = min(rows, key=lambda r: r[SCORE])
    assert quality["score"] == SCORE and quality[SCORE] == chosen[SCORE]
    assert read_json(best / "config.json")["step"] == chosen["step"]
    # Pruning (--keep-checkpoints 1) keeps the final step and never touches the best.
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "finetune-0000004"]

    out = tmp_path / "covers"
    main(["generate", "--checkpoint", str(run), "--best", "--n", "2", "--out", str(out)])
    assert sorted(p.name for p in out.iterdir()) == sorted(GENRES)
    main(["export", "--checkpoint", str(run), "--best", "--out", str(tmp_path / "export")])
    assert read_json(tmp_path / "export" / "config.json")["step"] == chosen["step"]


def test_the_best_is_the_lowest_score_and_survives_a_resume(tmp_path, enough_covers, monkeypatch):
    scores = iter([2.0, 1.0, 3.0, 1.5])

    def scripted(self, generator):
        row = {"realism_ratio": 1.0, "realism_mean": 1.0, "realism_worst": 1.0, "fidelity_min": 1.0,
               "fidelity_mean": 1.0, "msssim_gap_max": 0.0, "eval_covers": 8, "eval_seconds": 0.0}
        return {**row, SCORE: next(scores)}

    monkeypatch.setattr(QualityTracker, "evaluate", scripted)
    run = tmp_path / "run"
    run_training(run, _plan(enough_covers, steps=6), progress=False)
    best = run / "checkpoints" / "best"
    assert read_json(best / "config.json")["step"] == 4  # scores 2.0, 1.0, 3.0 at steps 2, 4, 6
    # Trained on to step 8 (score 1.5): still worse than the best so far, read back from its folder.
    run_training(run, resume=True, progress=False, finetune_steps=8)
    assert read_json(best / "config.json")["step"] == 4
    assert [r[SCORE] for r in _eval_rows(run)] == [2.0, 1.0, 3.0, 1.5]


def test_no_tracking_on_too_few_covers_and_no_best(tmp_path, demo_dir, caplog):
    run = tmp_path / "run"
    run_training(run, _plan(demo_dir / "labelled"), progress=False)  # 12 covers per genre
    assert _eval_rows(run) == []
    assert "quality is not tracked: genre(s) with fewer than 30 covers" in caplog.text
    with pytest.raises(GanError, match="no best checkpoint"):
        resolve_checkpoint(run, best=True)
