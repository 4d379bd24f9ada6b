"""End to end: `streamlit run app.py` in a real headless Chromium, driven by Playwright.

Chromium comes from Debian (`apt-get install chromium`, done by .ci/run); Playwright's own browser
download does not work here. Screenshots of every page land in test-artifacts/ (whole pages, at a
width of 1400 px), and the server's own log is checked for errors at the end.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import tiny_model, tiny_train  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
WIDTH, HEIGHT = 1400, 1000
# Sidebar entry -> (URL path, page title). A person reaches every page through the sidebar.
PAGES = {"Home": ("", "CoverGAN Studio"), "Latent explorer": ("Latent_explorer", "Latent explorer"),
         "Genre grid": ("Genre_grid", "Genre grid"), "Diversity": ("Diversity", "Diversity"),
         "Colour": ("Colour", "Colour statistics"), "Quality": ("Quality", "Quality: realism"),
         "Train": ("Train", "Train"), "Runs": ("Runs", "Compare runs")}
DRAWS_COVERS = {"Home", "Latent explorer", "Genre grid", "Diversity", "Colour", "Quality"}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_dir):
    """Two finished runs that differ in a number, a flag, their length and their sample interval."""
    from gan.train import PhasePlan, TrainingPlan, run_training

    folder = tmp_path_factory.mktemp("runs")
    for name, width, steps, every, projection in (("w8", 8, 4, 2, False), ("w16", 16, 6, 3, True)):
        plan = TrainingPlan(model=tiny_model(width=width, projection=projection),
                            pretrain=PhasePlan(tiny_train(phase="pretrain", steps=2, sample_every=2),
                                               str(demo_dir / "unlabelled")),
                            finetune=PhasePlan(tiny_train(steps=steps, sample_every=every),
                                               str(demo_dir / "labelled")))
        run_training(folder / name, plan, progress=False)
    return folder


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    # TMPDIR: the uploads this test makes stay in pytest's temporary folders.
    env = {**os.environ, "COVERGAN_RUNS_DIR": str(runs), "PYTHONPATH": str(ROOT),
           "TMPDIR": str(tmp_path_factory.mktemp("server-tmp"))}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("streamlit did not start within 60 s")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir()
    yield url, log_path
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)
    yield page
    page.close()


def _settle(page, title: str | None = None):
    """Wait until the page's title is shown and Streamlit has finished running the script."""
    if title:
        expect(page.locator("h1", has_text=title).first).to_be_visible(timeout=60000)
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120000)
    page.wait_for_timeout(300)


def _no_errors(page):
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    expect(page.locator("[data-testid='stMain'] [data-testid='stAlertContentError']")).to_have_count(0)


def _screenshot(page, name: str):
    """The whole page at 1400 px wide: Streamlit scrolls inside its main block, so make the window as tall."""
    page.wait_for_function("Array.from(document.images).every(image => image.complete)", timeout=60000)
    page.wait_for_timeout(500)
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": WIDTH, "height": max(HEIGHT, min(height, 8000))})
    page.wait_for_timeout(500)
    page.screenshot(path=ARTIFACTS / f"{name}.png")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})


def _choose_checkpoint(page, key: str):
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    page.get_by_role("option").filter(has_text=re.compile(f"^{re.escape(key)}$")).click()
    _settle(page)


def _chosen_checkpoint(page) -> str:
    return page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox'] input").first.input_value()


def test_every_page_uses_the_checkpoint_chosen_once(server, page):
    url, _ = server
    page.goto(url)
    _settle(page, "CoverGAN Studio")
    nav = page.locator("[data-testid='stSidebarNav'] a")
    assert nav.first.inner_text().strip().endswith("Home")  # not "app"
    _choose_checkpoint(page, "runs/w8")
    for entry, (path, title) in [*list(PAGES.items())[1:], ("Home", PAGES["Home"])]:
        nav.filter(has_text=entry).first.click()
        _settle(page, title)
        _no_errors(page)
        assert re.search(r"[?&]checkpoint=runs%2Fw8(&|$)", page.url), (entry, page.url)
        assert page.url.split("?")[0].rstrip("/").endswith(path), (entry, page.url)
        assert _chosen_checkpoint(page) == "runs/w8", entry
        if entry in DRAWS_COVERS:
            expect(page.get_by_text("Checkpoint: runs/w8 (finetune-0000004)")).to_be_visible()
        if entry in ("Home", "Genre grid"):  # the run's three genres, not the demo's eight
            grid = page.locator(".labelled-grid").first
            expect(grid.locator("img")).to_be_visible(timeout=60000)
            heads = grid.locator("div[title]").all_inner_texts()
            assert heads[:3] == ["classical", "pop", "rock"], (entry, heads)
        _screenshot(page, f"page-{path or 'Home'}")
    page.get_by_role("link", name=re.compile("^Diversity:")).click()  # the home page's own links too
    _settle(page, "Diversity")
    assert _chosen_checkpoint(page) == "runs/w8"


def _box(page, selector: str) -> dict:
    """The element's bounding box, once it has one: Streamlit may swap the element for its re-drawn
    copy between our wait for it and our reading it (the box is None then), so read until it holds."""
    for _ in range(100):
        locator = page.locator(selector).first
        locator.wait_for(state="visible", timeout=60000)
        box = locator.bounding_box()
        if box is not None:
            return box
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} never stayed on the page long enough to measure")


def _grid_fits(page) -> tuple[float, float, int, int]:
    expect(page.locator(".labelled-grid img").first).to_be_visible(timeout=60000)
    grid = _box(page, ".labelled-grid")
    main = _box(page, "[data-testid='stMainBlockContainer']")
    overflow = page.evaluate("(() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
                             " return [m.scrollWidth, m.clientWidth]; })()")
    return grid["x"] + grid["width"], main["x"] + main["width"], *overflow


def test_the_genre_grid_fits_the_page_at_every_zoom(server, page):
    url, _ = server
    page.goto(f"{url}/Genre_grid")
    _settle(page, "Genre grid")
    expect(page.locator(".labelled-grid img").first).to_be_visible(timeout=60000)
    grid_right, main_right, scroll_width, client_width = _grid_fits(page)
    assert grid_right <= main_right + 1 and scroll_width <= client_width
    zoom = page.get_by_role("slider").nth(1)  # rows, then zoom
    zoom.focus()
    page.keyboard.press("End")
    _settle(page)
    assert page.get_by_role("slider").nth(1).input_value() == "4"
    grid_right, main_right, scroll_width, client_width = _grid_fits(page)
    assert grid_right <= main_right + 1 and scroll_width <= client_width
    heads = page.locator(".labelled-grid").first.locator("div[title]").all_inner_texts()
    assert heads[:8] == ["classical", "electronic", "folk", "hip-hop", "jazz", "metal", "pop", "rock"]
    assert heads[8:10] == ["seed 0", "seed 1"]
    _screenshot(page, "genre-grid-zoom-4")


def test_a_blend_row_and_a_mixed_cover_render_and_the_url_keeps_them(server, page):
    url, _ = server
    page.goto(f"{url}/Genre_grid?blend_from=pop&blend_to=metal")
    _settle(page, "Genre grid")
    blend = page.locator(".labelled-grid").nth(1)
    expect(blend.locator("img")).to_be_visible(timeout=60000)
    assert blend.locator("img").evaluate("image => image.naturalWidth") > 0
    heads = blend.locator("div[title]").all_inner_texts()
    assert heads[:5] == ["pop", "pop 75%+metal 25%", "pop+metal", "pop 25%+metal 75%", "metal"], heads
    steps = page.get_by_role("slider", name="Steps")
    steps.focus()
    page.keyboard.press("Home")
    _settle(page)
    expect(page).to_have_url(re.compile(r"[?&]blend_steps=3(&|$)"), timeout=30000)
    expect(page.locator(".labelled-grid").nth(1).locator("div[title]").nth(1)).to_have_text("pop+metal",
                                                                                             timeout=30000)
    expect(page.locator(".labelled-grid").nth(1).locator("div[title]").nth(2)).to_have_text("metal")
    _screenshot(page, "genre-grid-blend")

    page.goto(f"{url}/Latent_explorer?genre=jazz&mix_genres=electronic&mix_w1=0.5")
    _settle(page, "Latent explorer")
    expect(page.get_by_text("jazz 67%+electronic 33%, seed 0")).to_be_visible(timeout=60000)
    _no_errors(page)
    _screenshot(page, "latent-mix")


def test_latent_explorer_slider_link_and_download(server, browser, page):
    url, _ = server
    page.goto(f"{url}/Latent_explorer")
    _settle(page, "Latent explorer")
    cover = page.locator("[data-testid='stImage'] img").first
    expect(cover).to_be_visible(timeout=60000)
    before = cover.get_attribute("src")
    slider = page.get_by_role("slider").nth(1)  # the first principal direction (after truncation)
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    _settle(page, "Latent explorer")
    expect(cover).not_to_have_attribute("src", before, timeout=30000)
    # The view is in the URL, so it can be shared; the URL follows the cover a moment later.
    expect(page).to_have_url(re.compile(r"[?&]pc0=1"), timeout=30000)
    expect(page.get_by_text("classical, seed 0, direction 1 +1")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PNG (512 px)").click()
    assert download.value.suggested_filename == "cover-classical-seed0-d1+1.png"
    page.get_by_role("slider").last.focus()  # the interpolation's position t
    page.keyboard.press("Home")
    _settle(page)
    expect(page).to_have_url(re.compile(r"[?&]interp_t=0(&|$)"), timeout=30000)
    _screenshot(page, "latent-after-slider")

    shared = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    shared.goto(page.url)
    _settle(shared, "Latent explorer")
    expect(shared.get_by_text("classical, seed 0, direction 1 +1")).to_be_visible(timeout=30000)
    assert float(shared.get_by_role("slider").last.input_value()) == 0
    shared.close()


def test_diversity_compares_with_real_covers_and_a_click_shows_a_pair(server, page):
    url, _ = server
    page.goto(f"{url}/Diversity?checkpoint=runs%2Fw8")  # a link restores the checkpoint
    _settle(page, "Diversity")
    page.get_by_label("Generated covers per genre (N)").fill("12")
    page.get_by_label("Pairs per genre").fill("40")
    page.get_by_role("button", name="Compute").click()
    _settle(page)
    expect(page.locator(".js-plotly-plot .legendtext", has_text="real").first).to_be_visible(timeout=60000)
    expect(page.get_by_text(re.compile(r"^real: held-out demo covers \(seed 2"))).to_be_visible()
    page.locator(".js-plotly-plot .scatterlayer .point").first.click(force=True)
    _settle(page)
    expect(page.locator("[data-testid='stImageCaption']", has_text=re.compile(r"cover \d+ of \d+: MS-SSIM"))
           .first).to_be_visible(timeout=30000)
    _screenshot(page, "diversity-computed-and-clicked")

    page.locator("[data-testid='stSidebarNav'] a", has_text="Colour").click()
    _settle(page, "Colour statistics")
    page.get_by_label("Generated covers per genre").fill("12")
    page.get_by_role("button", name="Compute").click()
    _settle(page)
    expect(page.locator(".js-plotly-plot").nth(2)).to_be_visible(timeout=60000)
    _no_errors(page)
    _screenshot(page, "colour-computed")


def test_uploads_say_what_is_wrong_and_select_a_valid_checkpoint(server, page, runs, tmp_path):
    url, _ = server
    page.goto(url)
    _settle(page, "CoverGAN Studio")
    page.locator("[data-testid='stSidebar'] [data-testid='stExpander']", has_text="Upload a checkpoint").click()
    inputs = page.locator("[data-testid='stSidebar'] [data-testid='stFileUploader'] input[type=file]")
    wrong = tmp_path / "cover.png"
    wrong.write_bytes(b"\x89PNG\r\n")
    inputs.nth(0).set_input_files(wrong)
    _settle(page)
    expect(page.get_by_text("cover.png is not a .json file: choose the checkpoint's config.json")).to_be_visible()
    expect(page.get_by_text("64MB per file").first).to_be_visible()  # server.maxUploadSize
    checkpoint = runs / "w16" / "checkpoints" / "finetune-0000006"
    inputs.nth(0).set_input_files(checkpoint / "config.json")
    _settle(page)
    inputs.nth(1).set_input_files(checkpoint / "generator.safetensors")
    _settle(page)
    page.get_by_role("button", name="Use this checkpoint").click()
    _settle(page)
    expect(page.get_by_text("Using the uploaded checkpoint: 3 genre(s), 32 px.")).to_be_visible()
    assert _chosen_checkpoint(page) == "uploaded"
    _screenshot(page, "upload-selected")


def test_train_and_runs_pages_with_finished_runs(server, page):
    url, _ = server
    page.goto(f"{url}/Train")
    _settle(page, "Train")
    expect(page.get_by_text("w16: finished · pre-training 2/2 · fine-tuning 6/6")).to_be_visible()
    page.get_by_text("Advanced: every other training option").click()
    # The expander's 33 inputs render one after another: on a loaded machine (CI beside a
    # training run) the last of them took longer than the default 5 s.
    expect(page.get_by_text("Mode seeking weight")).to_be_visible(timeout=60000)
    _screenshot(page, "train-with-runs")
    page.goto(f"{url}/Runs")
    _settle(page, "Compare runs")
    expect(page.get_by_text(re.compile(r"each is shown at its step closest .*w16 at 3, w8 at 4"))).to_be_visible()
    _screenshot(page, "runs-compared")


def test_the_server_logged_no_error(server):
    """Runs last: the pages above rendered without the server logging an error (e.g. Arrow's
    'Expected integer, got bool' for the Runs page's table)."""
    _, log_path = server
    log = log_path.read_text()
    assert "ArrowTypeError" not in log and "Traceback" not in log, log[-3000:]
