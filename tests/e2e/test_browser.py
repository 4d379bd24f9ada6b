"""End to end: `streamlit run app.py` in a real headless Chromium, driven by Playwright.

Chromium comes from Debian (`apt-get install chromium`, done by .ci/run); Playwright's own browser
download does not work here. Screenshots land in test-artifacts/.
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
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
PAGES = {"": "CoverGAN Studio", "Latent_explorer": "Latent explorer", "Genre_grid": "Genre grid",
         "Diversity": "Diversity", "Colour": "Colour statistics", "Train": "Train", "Runs": "Compare runs"}
WITH_IMAGES = {"", "Latent_explorer", "Genre_grid"}

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
def server(tmp_path_factory):
    port = _free_port()
    runs = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "COVERGAN_RUNS_DIR": str(runs), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    yield url
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


def _settle(page, title: str):
    """Wait until the page's title is shown and Streamlit has finished running the script."""
    expect(page.locator("h1", has_text=title).first).to_be_visible(timeout=60000)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60000)
    page.wait_for_timeout(300)


def test_every_page_and_a_slider(server, browser):
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    for name, title in PAGES.items():
        page.goto(f"{server}/{name}")
        _settle(page, title)
        if name in WITH_IMAGES:
            expect(page.locator("[data-testid='stImage'] img").first).to_be_visible(timeout=60000)
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        expect(page.locator("[data-testid='stAlertContentError']")).to_have_count(0)
        page.screenshot(path=ARTIFACTS / f"page-{name or 'Home'}.png", full_page=True)

    page.goto(f"{server}/Latent_explorer")
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
    # The view is in the URL, so it can be shared. The page writes the URL after drawing the
    # cover, so the browser may show the new cover a moment before the new URL: wait for it.
    expect(page).to_have_url(re.compile(r"[?&]pc0="), timeout=30000)
    page.screenshot(path=ARTIFACTS / "latent-after-slider.png", full_page=True)

    shared = browser.new_page()
    shared.goto(page.url)
    _settle(shared, "Latent explorer")
    assert shared.locator("[data-testid='stImage'] img").first.get_attribute("src") is not None
    shared.close()
    page.close()
