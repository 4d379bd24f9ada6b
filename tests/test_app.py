"""Every page of the Streamlit app, driven by AppTest on the bundled checkpoint."""

import json

import pytest
from conftest import ROOT, tiny_model, tiny_train
from streamlit.testing.v1 import AppTest

PAGES = ["pages/1_Latent_explorer.py", "pages/2_Genre_grid.py", "pages/3_Diversity.py", "pages/4_Colour.py",
         "pages/5_Train.py", "pages/6_Runs.py"]


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An empty runs/ folder for the app, instead of the project's own."""
    import gan.studio

    monkeypatch.setattr(gan.studio, "RUNS_DIR", tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


def app(page: str | None = None, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def image_urls(at: AppTest) -> list[str]:
    return [img.url for element in at.get("image") for img in element.proto.imgs]


def test_every_page_renders_without_errors(runs_dir):
    at = app()
    assert "CoverGAN Studio" in at.title[0].value
    assert image_urls(at)
    for page in PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])


def test_home_seed_changes_the_grid(runs_dir):
    at = app()
    before = image_urls(at)
    at.number_input(key="home_seed").set_value(5).run()
    assert image_urls(at) != before


def test_latent_explorer_widgets_change_the_image_and_the_url(runs_dir):
    at = app(PAGES[0])
    first = image_urls(at)[0]
    at.selectbox(key="genre").set_value("jazz").run()
    jazz = image_urls(at)[0]
    assert jazz != first
    at.number_input(key="seed").set_value(3).run()
    seeded = image_urls(at)[0]
    assert seeded != jazz
    at.slider(key="pc0").set_value(2.0).run()
    assert image_urls(at)[0] != seeded
    assert at.query_params["genre"] == "jazz" and at.query_params["seed"] == "3"
    assert at.query_params["pc0"] == "2"
    at.radio(key="interp_mode").set_value("between two genres").run()
    assert not at.exception


def test_latent_explorer_restores_its_state_from_the_url(runs_dir):
    at = app(PAGES[0], genre="metal", seed="7", pc1="-1.5", psi="0.7")
    assert at.selectbox(key="genre").value == "metal"
    assert at.number_input(key="seed").value == 7
    assert at.slider(key="pc1").value == -1.5 and at.slider(key="psi").value == 0.7


def test_genre_grid_choices_and_bad_input(runs_dir):
    at = app(PAGES[1])
    before = image_urls(at)[0]
    at.multiselect(key="grid_genres").set_value(["rock", "pop"]).run()
    assert image_urls(at)[0] != before
    at.multiselect(key="grid_genres").set_value([]).run()
    assert at.error and "at least one genre" in at.error[0].value


def test_diversity_and_colour_pages_compute_and_report_bad_folders(runs_dir, demo_dir):
    at = app(PAGES[2])
    at.number_input(key="div_n").set_value(4)
    at.number_input(key="div_pairs").set_value(5)
    at.text_input(key="div_real").set_value("")
    at.button[0].click().run()
    assert not at.exception and at.get("plotly_chart") and at.dataframe
    at.text_input(key="div_real").set_value("/no/such/folder")
    at.button[0].click().run()
    assert at.error and "data folder not found" in at.error[0].value

    at = app(PAGES[3])
    at.number_input(key="col_n").set_value(4)
    at.text_input(key="col_real").set_value("")
    at.button[0].click().run()
    assert not at.exception and len(at.get("plotly_chart")) == 3


def test_train_page_validates_and_starts_a_run(runs_dir, demo_dir):
    at = app(PAGES[4])
    at.text_input(key="train_name").set_value("../escape")
    at.button[0].click().run()
    assert at.error and "no paths" in at.error[0].value
    at.text_input(key="train_name").set_value("tiny")
    at.text_input(key="train_data").set_value(str(demo_dir / "labelled"))
    at.checkbox(key="train_pretrain").set_value(False)
    at.number_input(key="train_steps").set_value(2)
    at.number_input(key="train_batch").set_value(4)
    at.selectbox(key="train_resolution").set_value(32)
    at.number_input(key="train_width").set_value(8)
    at.selectbox(key="train_device").set_value("cpu")
    at.checkbox(key="train_projection").set_value(True)
    at.button[0].click().run()
    assert at.success and not at.error, [e.value for e in at.error]
    from gan.train.launcher import wait

    assert wait(runs_dir / "tiny", timeout=120).state == "finished"
    assert json.loads((runs_dir / "tiny" / "config.json").read_text())["model"]["projection"] is True
    at.run()
    assert any("tiny" in m.value and "finished" in m.value for m in at.markdown)


def test_runs_page_compares_two_runs(runs_dir, demo_dir):
    from gan.train import PhasePlan, TrainingPlan, run_training

    for width in (8, 16):
        plan = TrainingPlan(model=tiny_model(width=width),
                            finetune=PhasePlan(tiny_train(steps=2, sample_every=2), str(demo_dir / "labelled")))
        run_training(runs_dir / f"w{width}", plan, progress=False)
    at = app(PAGES[5])
    assert not at.error
    assert any("model.width" in str(df.value) for df in at.dataframe)
    assert any("Sample grids at finetune step 2" in s.value for s in at.subheader)


def test_two_sessions_do_not_interfere(runs_dir):
    a, b = app(PAGES[0]), app(PAGES[0])
    a.selectbox(key="genre").set_value("metal").run()
    b.selectbox(key="genre").set_value("pop").run()
    a.run()
    assert a.selectbox(key="genre").value == "metal" and b.selectbox(key="genre").value == "pop"
    assert image_urls(a)[0] != image_urls(b)[0]
