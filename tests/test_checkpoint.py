import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gan import load_generator
from gan.atomic import write_folder_atomically
from gan.checkpoint import GENERATOR_FILE
from gan.errors import GanError


@pytest.fixture
def trained(tiny_run):
    return tiny_run / "checkpoints" / "finetune-0000003"


def test_save_load_round_trip_is_bit_exact(trained):
    generator = load_generator(trained)
    saved = load_file(str(trained / GENERATOR_FILE))
    loaded = generator.model.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert generator.genres == ["classical", "pop", "rock"]
    assert (generator.latent_dim, generator.resolution) == (16, 32)


def test_run_folder_resolves_to_its_latest_checkpoint(trained):
    assert load_generator(trained.parent.parent).checkpoint == trained


def test_generate_is_deterministic_and_genre_dependent(trained):
    generator = load_generator(trained)
    noise = generator.sample_noise(4, seed=3)
    assert torch.equal(noise, generator.sample_noise(4, seed=3))
    assert not torch.equal(noise, generator.sample_noise(4, seed=4))
    a = generator.generate(noise, "rock")
    assert a.shape == (4, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, load_generator(trained).generate(noise, "rock"))
    assert not np.array_equal(a, generator.generate(noise, "pop"))
    mixed = generator.generate(noise, ["rock", "pop", 0, "rock"], output="pil")
    assert mixed[0].size == (32, 32) and np.array_equal(np.asarray(mixed[0]), a[0])
    with pytest.raises(GanError, match="unknown genre 'polka'; this model knows: classical, pop, rock"):
        generator.generate(noise, "polka")


def test_bad_checkpoints_give_one_line_errors(trained, tmp_path):
    with pytest.raises(GanError, match="checkpoint not found"):
        load_generator(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match="not a checkpoint"):
        load_generator(tmp_path / "empty")

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_bytes((trained / "config.json").read_bytes())
    weights = (trained / GENERATOR_FILE).read_bytes()
    (truncated / GENERATOR_FILE).write_bytes(weights[: len(weights) // 2])
    with pytest.raises(GanError, match="truncated/generator.safetensors: not a readable safetensors file"):
        load_generator(truncated)

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (foreign / GENERATOR_FILE).write_bytes(weights)
    with pytest.raises(GanError, match="not a CoverGAN checkpoint"):
        load_generator(foreign)

    mismatched = tmp_path / "mismatched"
    config = json.loads((trained / "config.json").read_text())
    config["model"]["width"] = 16
    tensors = load_file(str(trained / GENERATOR_FILE))
    write_folder_atomically(mismatched, {"config.json": config, GENERATOR_FILE: tensors})
    with pytest.raises(GanError, match="weights do not match the model"):
        load_generator(mismatched)

    (tmp_path / "badjson").mkdir()
    (tmp_path / "badjson" / "config.json").write_text("{not json")
    (tmp_path / "badjson" / GENERATOR_FILE).write_bytes(weights)
    with pytest.raises(GanError, match="badjson/config.json: not valid JSON"):
        load_generator(tmp_path / "badjson")


def test_atomic_write_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "ckpt"
    write_folder_atomically(target, {"config.json": {"v": 1}, "w.safetensors": {"x": torch.zeros(2)}})
    write_folder_atomically(target, {"config.json": {"v": 2}, "w.safetensors": {"x": torch.ones(2)}})
    assert json.loads((target / "config.json").read_text()) == {"v": 2}
    assert torch.equal(load_file(str(target / "w.safetensors"))["x"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary folders left behind


def test_weight_files_get_the_same_permissions_as_the_config(tmp_path):
    """safetensors alone writes 0600: a checkpoint copied to share would then be unreadable to others."""
    target = tmp_path / "ckpt"
    write_folder_atomically(target, {"config.json": {"v": 1}, "w.safetensors": {"x": torch.zeros(2)}})
    assert (target / "w.safetensors").stat().st_mode & 0o777 == (target / "config.json").stat().st_mode & 0o777
