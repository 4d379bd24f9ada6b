"""Config files from anywhere: every field checked for type and limits, one-line errors naming the
file and the field, and nothing allocated before the weight file is known to fit the config."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import pytest
from conftest import ROOT

from gan import load_generator
from gan.checkpoint import CONFIG_FILE, GENERATOR_FILE, read_checkpoint_config
from gan.cli import main
from gan.config import DataConfig, ModelConfig, TrainConfig, check_genre_names, from_dict, to_dict
from gan.errors import GanError
from gan.train.launcher import list_runs
from gan.train.run import validate_run_name


@pytest.fixture
def checkpoint(tiny_run):
    return tiny_run / "checkpoints" / "finetune-0000003"


def _edited(checkpoint, tmp_path, edit, name="edited"):
    """A copy of `checkpoint` whose config.json went through `edit(config)` (or is `edit` as text)."""
    folder = tmp_path / name
    shutil.copytree(checkpoint, folder)
    if isinstance(edit, str):
        (folder / CONFIG_FILE).write_text(edit)
    else:
        config = json.loads((checkpoint / CONFIG_FILE).read_text())
        edit(config)
        (folder / CONFIG_FILE).write_text(json.dumps(config))
    return folder


def _set(section, key, value):
    def edit(config):
        (config[section] if section else config)[key] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (_set("model", "latent_dim", "128"), "model.latent_dim must be a whole number, got '128'"),
    (_set("model", "latent_dim", 128.0), "model.latent_dim must be a whole number, got 128.0"),
    (_set("model", "width", "32"), "model.width must be a whole number, got '32'"),
    (_set("model", "projection", 1), "model.projection must be true or false, got 1"),
    (_set("model", "genres", None), "model.genres must be a list, got None"),
    (_set("model", "genres", [["rock"], "pop", "jazz"]), "model.genres[0] must be a string, got a list of 1"),
    (_set("model", "genres", [1, 2, 3]), "model.genres[0] must be a string, got 1"),
    (_set("model", "genres", ["../../escaped", "pop", "rock"]), "genre '../../escaped' cannot be a folder name"),
    (_set("model", "genres", ["/tmp/x", "pop", "rock"]), "genre '/tmp/x' cannot be a folder name"),
    (_set("model", "genres", ["rock", "pop", "Rock"]), "genres 'rock' and 'Rock' differ only in case"),
    (_set("model", "genre_embedding_dim", 10**9), "model.genre_embedding_dim must be at most 4096, got 1000000000"),
    (_set("model", "resolution", 48), "model.resolution must be one of (32, 64, 128), got 48"),
    (_set("model", "colour", "red"), "unknown field(s) ['colour'] in model"),
    (_set("train", "lr_g", "0.1"), "train.lr_g must be a finite number, got '0.1'"),
    (_set("train", "batch_size", 0), "train.batch_size must be at least 1, got 0"),
    (_set("train", "augment", "blur"), "train: --augment: unknown augmentation(s) ['blur']"),
    (_set("data", "num_images", -1), "data.num_images must not be negative, got -1"),
    (_set(None, "model", None), "model must be a JSON object, got None"),
    (_set(None, "format_version", "2"), "format_version must be a whole number from 1, got '2'"),
    (_set(None, "format_version", None), "format_version must be a whole number from 1, got None"),
    (_set(None, "format_version", True), "format_version must be a whole number from 1, got True"),
    (_set(None, "step", "3"), "step must be a whole number, got '3'"),
    (_set(None, "phase", "warmup"), "phase must be one of ('pretrain', 'finetune'), got 'warmup'"),
    (lambda config: config.pop("model"), "missing field(s) ['model']"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON (nested too deeply)"),
])
def test_bad_checkpoint_configs_are_one_line_errors_naming_file_and_field(checkpoint, tmp_path, edit, message):
    folder = _edited(checkpoint, tmp_path, edit)
    with pytest.raises(GanError) as error:
        load_generator(folder)
    text = str(error.value)
    assert text.startswith(f"{folder / CONFIG_FILE}: ") and message in text and "\n" not in text


def test_cli_reports_a_bad_checkpoint_config_in_one_line(checkpoint, tmp_path, capsys):
    folder = _edited(checkpoint, tmp_path, _set("model", "latent_dim", "128"))
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--checkpoint", str(folder), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == \
        f"error: {folder / CONFIG_FILE}: model.latent_dim must be a whole number, got '128'\n"


def test_a_checkpoint_written_before_newer_fields_loads_with_their_defaults(checkpoint, tmp_path):
    def strip(config):
        del config["model"]["projection"], config["train"]["augment"], config["ema"], config["versions"]
    config = read_checkpoint_config(_edited(checkpoint, tmp_path, strip))
    assert config["model"].projection is False and config["train"].augment == "none"
    assert config["model"].latent_dim == 16 and config["data"].genres == ["classical", "pop", "rock"]


def test_huge_config_with_small_weights_fails_before_allocating(checkpoint, tmp_path):
    """Width 1024, latent 4096 at 128 px is 8.7 GiB of weights: the shapes are checked against the
    weight file's header first, so this fails in one line under a memory limit far below that."""
    def huge(config):
        config["model"].update(resolution=128, latent_dim=4096, width=1024)
    folder = _edited(checkpoint, tmp_path, huge)
    script = f"""
import resource
from gan.cli import main
import gan.models, gan.sampling, gan.checkpoint, torch
vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (2 << 30), resource.RLIM_INFINITY))
main(["generate", "--checkpoint", {str(folder)!r}, "--out", {str(tmp_path / "out")!r}])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith(f"error: {folder / GENERATOR_FILE}: weights do not match the model in config.json")
    assert result.stderr.count("\n") == 1


def test_new_plain_fields_are_checked_without_new_code():
    @dataclass
    class Future:
        count: int = 1
        rate: float = 0.5
        enabled: bool = False
        label: str = "x"
        tags: list[str] = field(default_factory=list)
        note: str | None = None

    assert from_dict(Future, {"rate": 1, "note": None}, "f.json") == Future(rate=1.0)
    for key, value, expected in [("count", 1.5, "a whole number"), ("rate", "fast", "a finite number"),
                                 ("enabled", "yes", "true or false"), ("label", 3, "a string"),
                                 ("tags", ["a", 2], "a string"), ("note", [], "a string"),
                                 ("label", "x" * 5000, "at most 4096 characters"),
                                 ("rate", float("inf"), "a finite number")]:
        with pytest.raises(GanError, match=f"^f.json: {key}.* must be {expected}" if "at most" not in expected
                           else f"^f.json: {key} must be {expected}"):
            from_dict(Future, {key: value}, "f.json")


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig, DataConfig])
def test_defaults_validate_and_round_trip(cls):
    """Also catches a field added with a type the checks do not know (a TypeError here)."""
    config = cls()
    config.validate()
    assert from_dict(cls, json.loads(json.dumps(to_dict(config))), "c.json") == config


def test_every_size_is_bounded():
    for field_name, value in [("latent_dim", 10**6), ("width", 10**6), ("genre_embedding_dim", 10**9)]:
        with pytest.raises(GanError, match=f"--{field_name.replace('_', '-')} must be at most"):
            ModelConfig(**{field_name: value}).validate()
    with pytest.raises(GanError, match="--genres must be at most 1000 entries, got 1001"):
        ModelConfig(genres=[f"g{i}" for i in range(1001)]).validate()
    with pytest.raises(GanError, match="--batch-size must be at most 65536"):
        TrainConfig(batch_size=10**8).validate()
    with pytest.raises(GanError, match="--sample-rows must be at most 256"):
        TrainConfig(sample_rows=10**6).validate()


def test_genre_names_are_safe_folder_names():
    check_genre_names(["hip hop", "r&b", "drum & bass", "children's music", "k-pop", "música", "8-bit", "a+b"], "s")
    for bad in ["..", ".", ".hidden", "a/b", "a\\b", "/", "", " rock", "rock ", "rock.", "ok\n", "x" * 65, "a,b",
                "c:d"]:
        with pytest.raises(GanError, match="^s: genre .* cannot be a folder name"):
            check_genre_names([bad], "s")
    with pytest.raises(GanError, match="^s: genre 'rock' appears twice"):
        check_genre_names(["rock", "pop", "rock"], "s")


def _run_config(path, **changes):
    config = {"format": "covergan-run", "model": to_dict(ModelConfig()), "pretrain": None,
              "finetune": {"train": to_dict(TrainConfig()), "data": "somewhere"}, "init_from": None}
    config.update(changes)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))


def test_run_config_missing_model_or_train_is_one_line_and_the_train_page_still_lists_runs(tmp_path, capsys):
    runs = tmp_path / "runs"
    _run_config(runs / "good")
    _run_config(runs / "no-model", model=None)
    del_model = json.loads((runs / "no-model" / "config.json").read_text())
    del del_model["model"]
    (runs / "no-model" / "config.json").write_text(json.dumps(del_model))
    _run_config(runs / "no-train", finetune={"data": "somewhere"})
    for name, message in [("no-model", "config.json: missing field(s) ['model']"),
                          ("no-train", "config.json: missing field(s) ['train'] in finetune")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--out", str(runs / name), "--resume"])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert [status.name for status in list_runs(runs)] == ["good"]


def test_run_names_are_matched_whole():
    validate_run_name("ok")
    for bad in ["ok\n", "../x", "a/b", ".hidden", "x" * 101]:
        with pytest.raises(GanError, match="run name"):
            validate_run_name(bad)
