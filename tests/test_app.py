"""Every page of the Streamlit app, driven by AppTest: the bundled checkpoint, runs, uploads, forms."""

import dataclasses
import json
import os
import re
import shutil
import tempfile
import tomllib

import pytest
from conftest import ROOT, tiny_model, tiny_train, write_checkpoint
from streamlit.testing.v1 import AppTest

PAGES = {name: f"app_pages/{name}.py" for name in
         ("home", "latent_explorer", "genre_grid", "diversity", "colour", "quality", "train", "runs")}


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An empty runs/ folder for the app, instead of the project's own."""
    import gan.studio

    monkeypatch.setattr(gan.studio, "RUNS_DIR", tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.fixture
def run_in_app(runs_dir, tiny_run):
    """runs/tiny: a finished 3-step fine-tuning run (3 genres, 32 px) trained on demo covers."""
    shutil.copytree(tiny_run, runs_dir / "tiny")
    return runs_dir / "tiny"


def app(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(PAGES[page])
        at.run()
    assert not at.exception, at.exception
    return at


def image_urls(at: AppTest) -> list[str]:
    return [img.url for element in at.get("image") for img in element.proto.imgs]


def image_captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def html_bodies(at: AppTest) -> list[str]:
    """The HTML elements' markup with embedded images cut out: a PNG's base64 can spell a genre name."""
    return [re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]*", "data:image", element.proto.body)
            for element in at.get("html")]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_every_page_renders_without_errors(runs_dir):
    at = app()
    assert "CoverGAN Studio" in at.title[0].value
    assert html_bodies(at)  # the first grid
    for page in PAGES:
        at.switch_page(PAGES[page])
        at.run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])


# --- 1. the checkpoint choice holds on every page ----------------------------------------------------


def test_a_chosen_checkpoint_holds_on_every_page(run_in_app):
    at = app()
    at.selectbox(key="checkpoint").set_value("runs/tiny").run()
    newest = str(run_in_app / "checkpoints" / "finetune-0000003")
    for page in ["latent_explorer", "genre_grid", "diversity", "colour", "train", "runs", "home"]:
        at.switch_page(PAGES[page]).run()
        assert not at.exception, (page, at.exception)
        assert at.selectbox(key="checkpoint").value == "runs/tiny", page
        assert at.session_state["checkpoint_path"] == newest, page
        if page not in ("train", "runs"):  # the pages that draw covers say which checkpoint they draw from
            assert "Checkpoint: **runs/tiny (finetune-0000003)**" in captions(at), page


def test_a_link_with_a_checkpoint_opens_it(run_in_app):
    at = app("genre_grid", checkpoint="runs/tiny")
    assert at.selectbox(key="checkpoint").value == "runs/tiny"
    assert "rock" in html_bodies(at)[0] and "jazz" not in html_bodies(at)[0]


def test_a_valid_upload_is_selected_and_confirmed(run_in_app):
    checkpoint = run_in_app / "checkpoints" / "finetune-0000003"
    at = app()
    at.file_uploader(key="upload_config").set_value(("config.json", (checkpoint / "config.json").read_bytes(),
                                                    "application/json"))
    at.file_uploader(key="upload_weights").set_value(
        ("generator.safetensors", (checkpoint / "generator.safetensors").read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="upload_use").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="checkpoint").value == "uploaded"
    assert any("Using the uploaded checkpoint: 3 genre(s), 32 px" in s.value for s in at.success)
    uploaded = at.session_state["checkpoint_path"]
    assert os.path.basename(uploaded).startswith("covergan-upload-")
    at.switch_page(PAGES["genre_grid"]).run()
    assert at.selectbox(key="checkpoint").value == "uploaded" and "classical" in html_bodies(at)[0]
    shutil.rmtree(uploaded)


def test_upload_mistakes_are_named_without_server_paths(runs_dir):
    at = app()
    at.file_uploader(key="upload_config").set_value(("cover.png", b"\x89PNG", "image/png")).run()
    assert any("cover.png is not a .json file" in e.value for e in at.error)
    at.file_uploader(key="upload_config").set_value(("config.json", b'{"format": "covergan-checkpoint"}',
                                                    "application/json"))
    at.file_uploader(key="upload_weights").set_value(("generator.safetensors", b"not safetensors", "x/y"))
    at.run()
    at.button(key="upload_use").click().run()
    assert at.error and not at.exception
    assert all(tempfile.gettempdir() not in e.value for e in at.error), [e.value for e in at.error]
    assert at.selectbox(key="checkpoint").value == "demo"


# --- issue 15: uploads are private, never follow links, and rejects leave nothing ---------------------


def test_uploads_never_write_through_a_planted_link(tmp_path, monkeypatch, tiny_run):
    """The old scheme wrote to $TMPDIR/covergan-uploads/<sha256[:16]>/config.json, following links."""
    import hashlib

    from gan.uploads import save_upload

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    checkpoint = tiny_run / "checkpoints" / "finetune-0000003"
    config, weights = (checkpoint / "config.json").read_bytes(), (checkpoint / "generator.safetensors").read_bytes()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    predictable = tmp_path / "covergan-uploads" / hashlib.sha256(config + weights).hexdigest()[:16]
    predictable.mkdir(parents=True)
    (predictable / "config.json").symlink_to(victim)
    folder = save_upload(config, weights)
    assert victim.read_text() == "keep me"
    assert folder.parent == tmp_path and (folder.stat().st_mode & 0o777) == 0o700
    assert save_upload(config, weights) != folder  # a fresh, unpredictable folder per upload
    assert (folder / "config.json").read_bytes() == config


def test_a_rejected_upload_leaves_nothing_on_disk(tmp_path, monkeypatch):
    from gan.errors import GanError
    from gan.uploads import save_upload

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(GanError) as error:
        save_upload(b'{"format": "covergan-checkpoint", "model": {}}', b"junk")
    assert list(tmp_path.iterdir()) == []
    assert str(tmp_path) not in str(error.value)


def test_uploads_are_limited_to_what_a_checkpoint_needs():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    limit_mb = config["server"]["maxUploadSize"]
    assert limit_mb <= 64
    demo = ROOT / "checkpoints" / "demo" / "generator.safetensors"
    assert demo.stat().st_size < limit_mb * 2**20


# --- 2. a real baseline by default -------------------------------------------------------------------


def sources_drawn(at: AppTest) -> set[str]:
    return {trace.get("name") for chart in charts(at) for trace in chart["data"]}


def test_diversity_and_colour_compare_with_held_out_demo_covers_by_default(runs_dir):
    at = app("diversity")
    at.number_input(key="div_n").set_value(4)
    at.number_input(key="div_pairs").set_value(5)
    at.number_input(key="div_max_real").set_value(4)
    at.multiselect(key="div_genres").set_value(["jazz", "rock"])
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert {"generated", "real"} <= sources_drawn(at)
    assert any("held-out demo covers (seed 2" in c for c in captions(at))

    at = app("colour")
    at.number_input(key="col_n").set_value(4)
    at.multiselect(key="col_genres").set_value(["pop"])
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert "real" in sources_drawn(at)


def test_a_checkpoint_not_trained_on_demo_covers_says_it_has_no_baseline(runs_dir):
    write_checkpoint(runs_dir / "other" / "checkpoints" / "finetune-0000001", ["rock", "pop"])
    at = app("diversity", checkpoint="runs/other")
    assert at.radio(key="div_baseline").value == "none"
    assert any("No real baseline is shown" in i.value and "a folder or CSV" in i.value for i in at.info)


def test_checkpoints_record_that_they_were_trained_on_demo_covers(tiny_run):
    from gan.checkpoint import read_checkpoint_config
    from gan.data.demo import demo_origin
    from gan.sampling import DEFAULT_CHECKPOINT

    data = read_checkpoint_config(tiny_run / "checkpoints" / "finetune-0000003")["data"]
    assert data.demo_covers == {"seed": 0, "size": 32}
    assert demo_origin(data).recorded and demo_origin(data).held_out_seed == 2
    bundled = read_checkpoint_config(DEFAULT_CHECKPOINT)["data"]
    assert demo_origin(bundled).recorded and bundled.demo_covers == {"seed": 0, "size": 64}
    # A checkpoint trained on demo-data/labelled before the marker existed (the previous bundled one)
    older = dataclasses.replace(bundled, demo_covers={})
    assert (demo_origin(older).seed, demo_origin(older).size, demo_origin(older).recorded) == (0, 64, False)


def test_held_out_covers_are_never_training_covers():
    from gan.data.demo import demo_covers, held_out_covers

    training, labels = demo_covers(("rock", "pop"), 20, 32, seed=0)
    held_out = held_out_covers(("rock", "pop"), 20, 32, training_seed=0)
    assert held_out["rock"].shape == (20, 32, 32, 3)
    seen = {image.tobytes() for image in training}
    assert not any(image.tobytes() in seen for images in held_out.values() for image in images)
    assert held_out_covers(("rock",), 3, 64, 0, resolution=32)["rock"].shape == (3, 32, 32, 3)


def test_train_writes_the_demo_covers_its_form_points_at(runs_dir, tmp_path, monkeypatch):
    import gan.train.options

    monkeypatch.setattr(gan.train.options, "DEMO_DATA_DIR", tmp_path / "demo-data")
    monkeypatch.setattr(gan.train.options, "DEMO_DATA_SIZES", {"per_genre": 2, "unlabelled": 3, "size": 16})
    at = app("train")
    at.button(key="train_start").click().run()  # the defaults point at demo-data, which is not there yet
    assert any("data not found" in e.value and "write the demo covers" in e.value for e in at.error)
    at.button(key="write_demo").click().run()
    assert not at.exception
    assert json.loads((tmp_path / "demo-data" / "labelled" / "demo.json").read_text())["seed"] == 0
    assert len(list((tmp_path / "demo-data" / "unlabelled").glob("*.png"))) == 3
    assert any("Wrote the demo covers" in s.value for s in at.success)
    assert not any(b.key == "write_demo" for b in at.button)


# --- 3. and issue 15: grids fit, are labelled, and draw a bounded number of genres --------------------


def test_genre_grid_names_its_columns_and_rows(runs_dir):
    at = app("genre_grid")
    at.multiselect(key="grid_genres").set_value(["rock", "pop"]).run()
    body = html_bodies(at)[0]
    assert body.index(">rock<") < body.index(">pop<") < body.index(">seed 0<")
    assert "max-width" in body and "width:100%" in body  # at most the zoomed size, narrower on a narrow page
    at.multiselect(key="grid_genres").set_value([]).run()
    assert at.error and "at least one genre" in at.error[0].value


def test_pages_draw_a_bounded_number_of_genres(runs_dir):
    genres = [f"g{k:03d}" for k in range(200)]
    write_checkpoint(runs_dir / "many" / "checkpoints" / "finetune-0000001", genres)
    at = app(checkpoint="runs/many")
    assert not at.exception
    assert html_bodies(at)[0].count("title='g") == 8
    at.switch_page(PAGES["genre_grid"]).run()
    assert html_bodies(at)[0].count("title='g") == 8
    assert at.multiselect(key="grid_genres").max_selections == 16
    for page, key in (("diversity", "div_genres"), ("colour", "col_genres")):
        at.switch_page(PAGES[page]).run()
        assert len(at.multiselect(key=key).value) == 8


# --- 4. forms keep their values; a failed compute leaves only its error -------------------------------


def test_form_values_and_results_survive_leaving_the_page(runs_dir):
    at = app("diversity")
    at.number_input(key="div_n").set_value(4)
    at.number_input(key="div_pairs").set_value(5)
    at.number_input(key="div_seed").set_value(7)
    at.multiselect(key="div_genres").set_value(["rock"])
    at.radio(key="div_baseline").set_value("none")
    at.button[0].click().run()
    assert at.get("plotly_chart")
    at.switch_page(PAGES["home"]).run()
    at.switch_page(PAGES["diversity"]).run()
    assert at.number_input(key="div_n").value == 4 and at.number_input(key="div_seed").value == 7
    assert at.multiselect(key="div_genres").value == ["rock"] and at.radio(key="div_baseline").value == "none"
    assert at.get("plotly_chart"), "the result shows again without pressing Compute"


def test_a_failed_compute_leaves_no_progress_bar(runs_dir):
    at = app("diversity")
    at.number_input(key="div_n").set_value(4)
    at.radio(key="div_baseline").set_value("folder")
    at.text_input(key="div_real").set_value("/no/such/folder")
    at.button[0].click().run()
    assert at.error and "not found" in at.error[0].value
    assert not at.get("progress")


# --- 5. the Train page --------------------------------------------------------------------------------


def test_train_page_validates_and_starts_a_run_that_shows_at_once(runs_dir, demo_dir):
    at = app("train")
    top = list(at.main.children.values())
    runs_at = next(k for k, c in enumerate(top) if getattr(c, "value", None) == "Runs"
                   or any(s.value == "Runs" for s in getattr(c, "subheader", [])))
    assert runs_at < next(k for k, c in enumerate(top) if getattr(c, "type", None) == "form")  # the runs come first
    at.text_input(key="train_name").set_value("../escape")
    at.button(key="train_start").click().run()
    assert at.error and "no paths" in at.error[0].value
    at.text_input(key="train_name").set_value("tiny")
    at.text_input(key="train_data").set_value(str(demo_dir / "labelled"))
    at.checkbox(key="train_pretrain").set_value(False)
    at.number_input(key="train_steps").set_value(2)
    at.number_input(key="train_batch_size").set_value(4)
    at.selectbox(key="train_resolution").set_value(32)
    at.number_input(key="train_width").set_value(8)
    at.selectbox(key="train_device").set_value("cpu")
    at.checkbox(key="train_projection").set_value(True)  # an Advanced option
    at.number_input(key="train_log_every").set_value(1)
    at.button(key="train_start").click().run()
    assert at.success and not at.error, [e.value for e in at.error]
    assert not any("No runs yet" in i.value for i in at.info)
    assert any(m.value.startswith("**tiny**: starting") or m.value.startswith("**tiny**: running")
               for m in at.markdown)
    from gan.train.launcher import wait

    assert wait(runs_dir / "tiny", timeout=120).state == "finished"
    config = json.loads((runs_dir / "tiny" / "config.json").read_text())
    assert config["model"]["projection"] is True and config["finetune"]["train"]["log_every"] == 1
    at.run()
    assert any(m.value == "**tiny**: finished · fine-tuning 2/2" for m in at.markdown)


def test_the_form_offers_every_training_option_with_its_default(runs_dir, monkeypatch):
    """A field the trainer gains (with a CLI flag) appears on the form without editing the page."""
    import dataclasses

    import gan.cli
    import gan.train.options
    from gan.config import TrainConfig

    @dataclasses.dataclass
    class Extended(TrainConfig):
        warmup_steps: int = 7

    monkeypatch.setattr(gan.cli, "TrainConfig", Extended)
    monkeypatch.setattr(gan.train.options, "TrainConfig", Extended)
    monkeypatch.setitem(gan.cli.TRAIN_HELP, "warmup_steps", "steps of learning-rate warm-up")
    at = app("train")
    assert at.number_input(key="train_warmup_steps").value == 7
    assert at.number_input(key="train_warmup_steps").help == "steps of learning-rate warm-up"
    offered = {w.key for w in [*at.number_input, *at.text_input, *at.checkbox, *at.selectbox]}
    for field in ("mode_seeking_weight", "augment", "sample_every", "genre_loss_weight", "ema_decay", "compile"):
        assert f"train_{field}" in offered, field
    assert at.number_input(key="train_sample_every").value == TrainConfig().sample_every


def test_the_form_leaves_a_resnet_box_at_its_default_to_the_architecture_chosen(demo_dir):
    """The form passes every option; DCGAN with the coordinate-channels box left ticked (its ResNet
    default) trains without them, as on the command line; a ResNet box the user ticked is refused."""
    from gan.cli import plan_from_args
    from gan.errors import GanError
    from gan.train.options import _train_parser, train_options, training_args

    def model(values):
        args = training_args(values, str(demo_dir / "labelled"), 2)
        return plan_from_args(_train_parser().parse_args([*args, "--out", "unused"])).model

    defaults = {option.name: option.default for option in train_options()}
    assert defaults["coordinate_channels"] is True and model(defaults).coordinate_channels is True
    dcgan = {**defaults, "architecture": "dcgan"}
    assert (model(dcgan).architecture, model(dcgan).coordinate_channels) == ("dcgan", False)
    assert model({**dcgan, "coordinate_channels": False}).coordinate_channels is False
    with pytest.raises(GanError, match="^--generator-spectral-norm is for --architecture resnet, not dcgan$"):
        model({**dcgan, "generator_spectral_norm": True})


def finished_run(runs_dir, demo_dir, name="two", **train):
    from gan.train import PhasePlan, TrainingPlan, run_training

    plan = TrainingPlan(model=tiny_model(),
                        pretrain=PhasePlan(tiny_train(phase="pretrain", steps=2, sample_every=2),
                                           str(demo_dir / "unlabelled")),
                        finetune=PhasePlan(tiny_train(**{"steps": 2, "sample_every": 2, **train}),
                                           str(demo_dir / "labelled")))
    run_training(runs_dir / name, plan, progress=False)
    return runs_dir / name


def test_train_page_shows_steps_per_phase_every_metric_and_quality(runs_dir, demo_dir):
    run = finished_run(runs_dir, demo_dir)
    with open(run / "metrics.jsonl", "a") as f:  # what periodic quality evaluations will log
        f.write(json.dumps({"phase": "finetune", "step": 2, "kind": "eval", "realism_ratio": 1.2,
                            "realism_mean": 1.4, "fidelity_min": 0.9, "msssim_gap_max": -0.05,
                            "eval_covers": 100}) + "\n")
    at = app("train")
    assert any(m.value == "**two**: finished · pre-training 2/2 · fine-tuning 2/2" for m in at.markdown)
    titles = {c["layout"]["title"]["text"]: {t["name"] for t in c["data"]} for c in charts(at)}
    assert {"genre_acc", "fake_genre_acc"} <= titles["Accuracies"]
    assert titles["Quality"] == {"fidelity_min", "msssim_gap_max"}
    assert titles[next(t for t in titles if t.startswith("Quality: realism"))] == {"realism_ratio", "realism_mean"}
    assert any("Latest sample: fine-tuning step 2" in c for c in image_captions(at))


def test_a_finished_run_opens_in_the_explorer_and_trains_on(runs_dir, demo_dir):
    from gan.train.launcher import run_status, wait

    finished_run(runs_dir, demo_dir)
    at = app("train")
    at.button(key="open-two").click().run()
    assert at.title[0].value == "Latent explorer"
    assert at.selectbox(key="checkpoint").value == "runs/two"
    at.switch_page(PAGES["train"]).run()
    at.number_input(key="more-steps-two").set_value(3)
    at.button(key="more-two").click().run()
    assert not at.error, [e.value for e in at.error]
    wait(runs_dir / "two", timeout=120)
    assert [(p.phase, p.step, p.total_steps) for p in run_status(runs_dir / "two").phases] == \
        [("pretrain", 2, 2), ("finetune", 3, 3)]


def test_a_stopped_run_has_a_sample_of_where_it_stopped(runs_dir, demo_dir):
    """Stop (SIGTERM, the Train page's button) checkpoints and samples the step it stopped at."""
    import time

    from gan.checkpoint import list_checkpoints
    from gan.train.launcher import launch, stop, wait

    launch(runs_dir, "long", ["--data", str(demo_dir / "labelled"), "--steps", "100000", "--batch-size", "4",
                              "--resolution", "32", "--width", "8", "--latent-dim", "16", "--device", "cpu",
                              "--log-every", "1", "--sample-every", "100000", "--checkpoint-every", "100000"])
    deadline = time.time() + 120
    while time.time() < deadline and len((runs_dir / "long" / "metrics.jsonl").read_text().splitlines()
                                         if (runs_dir / "long" / "metrics.jsonl").exists() else []) < 3:
        time.sleep(0.2)
    assert stop(runs_dir / "long", timeout=60)
    status = wait(runs_dir / "long", timeout=60)
    assert status.state == "stopped"
    step = int(list_checkpoints(runs_dir / "long")[-1].name.rsplit("-", 1)[1])
    assert status.latest_sample == runs_dir / "long" / "samples" / f"finetune-{step:07d}.png"
    at = app("train")  # right after Stop: the curves so far and the sample of the stop step
    losses = next(c for c in charts(at) if c["layout"]["title"]["text"] == "Losses")
    assert {t["name"] for t in losses["data"]} == {"d_loss", "g_loss"} and len(losses["data"][0]["x"]) >= 3
    assert f"Latest sample: fine-tuning step {step:,} (rows: noise, columns: genres)" in image_captions(at)
    assert at.button(key="resume-long")


# --- 6. the Runs page --------------------------------------------------------------------------------


def test_runs_page_compares_runs_of_different_lengths_at_their_nearest_steps(runs_dir, demo_dir):
    finished_run(runs_dir, demo_dir, "short", steps=4, sample_every=2)
    finished_run(runs_dir, demo_dir, "long", steps=6, sample_every=3, genre_loss_weight=0.5)
    at = app("runs")
    assert not at.error and not at.exception
    table = at.dataframe[0].value
    assert "finetune.train.steps" in table.index and all(isinstance(v, str) for v in table.values.ravel())
    assert any("nearest fine-tuning steps" in s.value for s in at.subheader)
    assert any("long at 3" in c and "short at 4" in c for c in captions(at))
    at.radio(key="runs_phase").set_value("pretrain").run()
    curves = at.selectbox(key="runs_metric").options
    assert "d_loss" in curves and "genre_acc" not in curves  # pre-training has no genres


# --- 7. the Latent explorer ---------------------------------------------------------------------------


def test_latent_explorer_widgets_change_the_image(runs_dir):
    at = app("latent_explorer")
    first = image_urls(at)[0]
    at.selectbox(key="genre").set_value("jazz").run()
    jazz = image_urls(at)[0]
    assert jazz != first
    at.number_input(key="seed").set_value(3).run()
    seeded = image_urls(at)[0]
    assert seeded != jazz
    at.slider(key="pc0").set_value(2.0).run()
    assert image_urls(at)[0] != seeded
    at.radio(key="interp_mode").set_value("genres").run()
    assert not at.exception


def test_latent_explorer_restores_its_state_from_the_url(runs_dir):
    at = app("latent_explorer", genre="metal", seed="7", pc1="-1.5", psi="0.7", interp_mode="genres",
             interp_t="0.25", other_genre="rock")
    assert at.selectbox(key="genre").value == "metal"
    assert at.number_input(key="seed").value == 7
    assert at.slider(key="pc1").value == -1.5 and at.slider(key="psi").value == 0.7
    assert at.radio(key="interp_mode").value == "genres" and at.slider(key="interp_t").value == 0.25
    assert at.selectbox(key="other_genre").value == "rock"


def test_the_interpolation_starts_from_the_edited_cover_and_edits_are_named(runs_dir):
    at = app("latent_explorer")
    strip = image_urls(at)[-8:-1]
    at.slider(key="pc0").set_value(2.0).run()
    at.slider(key="z1").set_value(-0.5).run()
    assert image_urls(at)[-8:-1][0] != strip[0]  # t = 0 is the edited cover now
    assert "classical, seed 0, direction 1 +2, z[1] -0.5" in image_captions(at)
    assert len(image_urls(at)) >= 1 + 2 * 8 + 7 + 1  # cover, -/+ previews per direction, strip, t
    at.button(key="reset").click().run()
    assert at.slider(key="pc0").value == 0 and at.slider(key="z1").value == 0
    assert "classical, seed 0" in image_captions(at)


def test_the_explorer_s_tag_mixer_draws_the_mix_and_the_url_keeps_it(runs_dir):
    at = app("latent_explorer", genre="jazz")
    single = image_urls(at)[0]
    at.multiselect(key="mix_genres").set_value(["electronic"]).run()
    assert image_urls(at)[0] != single and "jazz+electronic, seed 0" in image_captions(at)
    at.slider(key="mix_w1").set_value(0.5).run()
    assert "jazz 67%+electronic 33%, seed 0" in image_captions(at)
    # A link restores the mix (the browser test sees the URL follow the widgets); at most three genres.
    linked = app("latent_explorer", genre="jazz", mix_genres=["electronic", "pop"], mix_w2="0.5")
    assert "jazz 40%+electronic 40%+pop 20%, seed 0" in image_captions(linked)
    assert linked.multiselect(key="mix_genres").proto.max_selections == 2
    # Picking the main genre again drops it from the mix rather than failing.
    linked.selectbox(key="genre").set_value("pop").run()
    assert not linked.exception and linked.multiselect(key="mix_genres").value == ["electronic"]


def test_the_genre_grid_adds_a_mix_column_and_a_blend_row(runs_dir):
    at = app("genre_grid", grid_mix_genres=["rock", "jazz"])
    at.multiselect(key="grid_genres").set_value(["rock", "jazz"]).run()
    grid, blend = html_bodies(at)[:2]
    assert grid.index(">rock<") < grid.index(">jazz<") < grid.index(">rock+jazz<")
    assert ">classical<" in blend and ">classical+electronic<" in blend  # the first two genres, 5 steps
    at.selectbox(key="blend_from").set_value("pop").run()
    at.selectbox(key="blend_to").set_value("metal").run()
    blend = html_bodies(at)[1]
    heads = [">pop<", ">pop 75%+metal 25%<", ">pop+metal<", ">pop 25%+metal 75%<", ">metal<"]
    assert [blend.index(h) for h in heads] == sorted(blend.index(h) for h in heads)
    linked = app("genre_grid", blend_from="jazz", blend_to="rock", blend_steps="3")
    assert ">jazz+rock<" in html_bodies(linked)[1] and ">jazz 75%+rock 25%<" not in html_bodies(linked)[1]


def test_two_sessions_do_not_interfere(runs_dir):
    a, b = app("latent_explorer"), app("latent_explorer")
    a.selectbox(key="genre").set_value("metal").run()
    b.selectbox(key="genre").set_value("pop").run()
    a.run()
    assert a.selectbox(key="genre").value == "metal" and b.selectbox(key="genre").value == "pop"
    assert image_urls(a)[0] != image_urls(b)[0]


# --- 8. Diversity outliers: the chart's points are the list, and can be picked ------------------------


def test_diversity_outliers_on_the_chart_are_the_ones_listed(runs_dir):
    at = app("diversity")
    at.number_input(key="div_n").set_value(12)
    at.number_input(key="div_pairs").set_value(60)
    at.number_input(key="div_max_real").set_value(12)
    at.multiselect(key="div_genres").set_value(["electronic", "classical", "pop"])
    at.button[0].click().run()
    points = {f"{g}|{s}|{i}|{j}" for chart in charts(at) for trace in chart["data"]
              for g, s, i, j, _ in trace.get("customdata", [])}
    listed = set(at.selectbox(key="div_outlier").options) - {"choose a pair"}
    assert points and len(points) == len(listed)
    assert {p.split("|")[1] for p in points} == {"generated", "real"}
    choice = next(iter(points))
    at.selectbox(key="div_outlier").set_value(choice).run()
    genre, source, i, j = choice.split("|")
    assert any(c.startswith(f"{genre}, {source} cover {i} of 12: MS-SSIM ") and c.endswith(f"with cover {j}")
               for c in image_captions(at))


# --- 10. Colour: every genre's hue histogram shows, statistics get room --------------------------------


def test_colour_figures_show_every_genre_readably(runs_dir):
    at = app("colour")
    at.number_input(key="col_n").set_value(4)
    at.radio(key="col_baseline").set_value("none")
    at.button[0].click().run()
    specs = charts(at)
    hue = next(c for c in specs if c["layout"]["title"]["text"].startswith("Hue"))
    assert all(trace.get("visible", True) is True for trace in hue["data"])
    assert sum(trace["showlegend"] for trace in hue["data"]) == 1  # one entry per source, not per genre
    assert sum(1 for key in hue["layout"] if key.startswith("polar")) == 8  # a panel per genre
    statistics = next(c for c in specs if c["layout"]["title"]["text"].startswith("Colour statistics"))
    assert statistics["layout"]["xaxis2"]["domain"][1] - statistics["layout"]["xaxis2"]["domain"][0] > 0.4



def test_quality_page_measures_realism_against_held_out_demo_covers(monkeypatch, tmp_path):
    monkeypatch.setattr("gan.eval.realism.DEMO_JUDGE_COVERS_PER_GENRE", 12)
    monkeypatch.setattr("gan.eval.realism.DEMO_JUDGE_STEPS", 10)
    monkeypatch.setenv("COVERGAN_CACHE_DIR", str(tmp_path))
    at = app("quality")
    assert at.radio(key="q_baseline").value == "demo"  # the bundled checkpoint has a default
    at.number_input(key="q_n").set_value(10)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    labels = {m.label: m.value for m in at.metric}
    assert labels["Realism over all genres"].endswith("x the floor")
    assert "Worst genre" in labels
    assert any("realism" in c["layout"]["title"]["text"].lower() for c in charts(at))
    at.radio(key="q_baseline").set_value("none")
    at.button[0].click().run()
    assert not at.metric  # nothing to compare with: nothing measured
    assert any("Generated covers only" in i.value for i in at.info)


def test_quality_page_measures_genre_pairs_of_a_multi_tag_run(runs_dir, monkeypatch, tmp_path):
    from gan.data.demo import write_demo_dataset
    from gan.train import PhasePlan, TrainingPlan, run_training

    for name, value in (("DEMO_JUDGE_SINGLES_PER_GENRE", 8), ("DEMO_JUDGE_COVERS_PER_PAIR", 6),
                        ("DEMO_JUDGE_STEPS", 10)):
        monkeypatch.setattr(f"gan.eval.pairs.{name}", value)
    monkeypatch.setenv("COVERGAN_CACHE_DIR", str(tmp_path / "cache"))
    write_demo_dataset(tmp_path / "demo", per_genre=12, unlabelled=0, size=32, genres=("pop", "metal", "jazz",
                                                                                        "classical"), workers=1)
    plan = TrainingPlan(model=tiny_model(), finetune=PhasePlan(tiny_train(steps=2), str(tmp_path / "demo/labelled")))
    run_training(runs_dir / "tagged", plan, progress=False)
    at = app("quality", checkpoint="runs/tagged")
    at.button(key="pairs_compute").click().run()  # with the form's covers per genre: 200
    assert not at.exception and not at.error, [e.value for e in at.error]
    pairs = next(c for c in charts(at) if "Genre pairs" in c["layout"]["title"]["text"])
    assert pairs["data"][0]["x"] == ["classical+jazz *", "jazz+pop *", "metal+pop *"]
    table = at.dataframe[-1].value
    assert list(table["pair"]) == ["classical+jazz", "jazz+pop", "metal+pop"] and list(table["n"]) == [200] * 3
    write_checkpoint(runs_dir / "single" / "checkpoints" / "finetune-0000001", ["rock", "pop"])
    single_genre = app("quality", checkpoint="runs/single")  # data without tag pairs: no section
    assert not single_genre.exception and "Genre pairs" not in [h.value for h in single_genre.subheader]
