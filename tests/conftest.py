import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan.config import ModelConfig, TrainConfig  # noqa: E402
from gan.data.demo import write_demo_dataset  # noqa: E402

# Two cores: keep PyTorch from oversubscribing them when pytest runs beside other work. A thread
# count the caller set (OMP_NUM_THREADS=1 beside a one-thread training run) is kept: more threads
# than cores slow PyTorch several-fold (a two-thread training fell from 110 to 10-20 img/s beside
# the two-thread suite).
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(min(2, os.cpu_count() or 1))

TINY_GENRES = ("rock", "pop", "classical")


@pytest.fixture(scope="session", autouse=True)
def judge_cache(tmp_path_factory) -> Path:
    """Judges trained by tests are cached in a folder of the test session, never in the user's ~/.cache."""
    folder = tmp_path_factory.mktemp("judges")
    os.environ["COVERGAN_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset: 3 genres x 12 labelled covers and 24 unlabelled, 32 px."""
    out = tmp_path_factory.mktemp("demo")
    write_demo_dataset(out, per_genre=12, unlabelled=24, size=32, seed=0, genres=TINY_GENRES, workers=1)
    return out


def tiny_model(**overrides) -> ModelConfig:
    values = dict(resolution=32, latent_dim=16, width=8, genre_embedding_dim=8)
    values.update(overrides)
    return ModelConfig(**values)


def tiny_train(**overrides) -> TrainConfig:
    values = dict(steps=6, batch_size=8, device="cpu", precision="fp32", log_every=2, sample_every=3,
                  checkpoint_every=3, sample_rows=2, ema_decay=0.9, eval_every=0)
    values.update(overrides)
    return TrainConfig(**values)


def write_checkpoint(folder, genres, resolution=32):
    """A generator-only checkpoint folder with fresh weights; its data records nothing (no tag pairs)."""
    from gan.atomic import write_folder_atomically
    from gan.checkpoint import GENERATOR_FILE, checkpoint_config
    from gan.models import build_generator

    model = tiny_model(genres=list(genres), resolution=resolution)
    write_folder_atomically(folder, {"config.json": checkpoint_config(model, None, None, "finetune", 1, ema=False),
                                     GENERATOR_FILE: build_generator(model).state_dict()})
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_dir) -> Path:
    """A finished 3-step fine-tuning run of a tiny model on `demo_dir` (32 px, 3 genres)."""
    from gan.train import PhasePlan, TrainingPlan, run_training

    run = tmp_path_factory.mktemp("tiny") / "run"
    plan = TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=3), str(demo_dir / "labelled")))
    run_training(run, plan, progress=False)
    return run
