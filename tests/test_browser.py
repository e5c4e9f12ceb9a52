"""The real app in a real headless browser: `streamlit run` + Debian chromium driven by Playwright.

AppTest (test_app.py) cannot click a plotly point or move a slider thumb; this module does, against
a real server on the tiny model ($VAE_EXPLORER_MODELS). It skips only when no browser is available
off CI; on CI (CI=true) with chromium installed a missing playwright is a failure, not a skip.
Screenshots go to the test's tmp folder (a failing test names its file); the full walkthrough is
also saved to $BROWSER_TEST_SCREENSHOT when set (how docs/app.png is made, see README).
Every wait is for a condition, with a deadline: no fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

from bench.harness import CHROMIUM_ARGS, CONNECTED, SCRIPT_IDLE_JS, AppServer, chromium_path
from common.atlas_format import load_atlas

ROOT = Path(__file__).resolve().parent.parent
UPLOAD = ROOT / "tests" / "assets" / "digit_clean.png"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

CHROMIUM = chromium_path()
if CHROMIUM is None:
    pytest.skip("no browser: /usr/bin/chromium missing and no `chromium` on PATH "
                "(Debian: apt-get install chromium)", allow_module_level=True)
if ON_CI:
    from playwright.sync_api import expect, sync_playwright  # CI with chromium: an ImportError is a failure
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the Python package playwright is not installed")
    expect, sync_playwright = sync_api.expect, sync_api.sync_playwright

START_TIMEOUT = 90  # s until /_stcore/health answers "ok"
RENDER_TIMEOUT = 120_000  # ms for the first render: the script imports torch and plotly (busy CI cores)
STEP_TIMEOUT = 30_000  # ms for a rerun after an interaction (2 busy cores)

SLIDERS = "[data-testid='stSlider'] input[type='range']"  # react-aria slider: a hidden range input
ERRORS = "[data-testid='stException'], [data-testid='stAlertContentError']"

# The map's scattergl points are drawn on a WebGL canvas, so find one in plotly's own state: among
# the digit traces, the point farthest (in pixels) from any other point, inside the middle of the
# plot area, as viewport coordinates for page.mouse plus its customdata (the test-set index).
PICK_MAP_POINT_JS = """() => {
  const el = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  const fl = el._fullLayout, xa = fl.xaxis, ya = fl.yaxis, box = el.getBoundingClientRect();
  const pts = [];
  for (const t of el._fullData) {
    if (t.type !== 'scattergl' || t.visible !== true || !t.customdata) continue;  // digits, not markers
    for (let i = 0; i < t._length; i++)
      pts.push([xa._offset + xa.d2p(t.x[i]), ya._offset + ya.d2p(t.y[i]), Number(t.customdata[i])]);
  }
  let best = null, bestGap = -1;
  for (const p of pts) {
    if (p[0] < xa._offset + 0.1 * xa._length || p[0] > xa._offset + 0.9 * xa._length ||
        p[1] < ya._offset + 0.1 * ya._length || p[1] > ya._offset + 0.9 * ya._length) continue;
    let gap = Infinity;
    for (const q of pts) if (q !== p) gap = Math.min(gap, Math.hypot(p[0] - q[0], p[1] - q[1]));
    if (gap > bestGap) { bestGap = gap; best = p; }
  }
  return best && {x: box.x + best[0], y: box.y + best[1], index: best[2], gap: bestGap, points: pts.length};
}"""
MAP_READY_JS = """() => {
  const el = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  return !!(el && el._fullLayout && el._fullLayout.xaxis && el._fullData &&
            el._fullData.filter(t => t.type === 'scattergl' && t.customdata).length === 10);
}"""


@pytest.fixture(scope="module")
def models_dir(tiny_models_dir) -> Path:
    """The tiny test model, or the folder in $BROWSER_TEST_MODELS: `BROWSER_TEST_MODELS=models pytest
    tests/test_browser.py -k walkthrough` drives the shipped model and takes the README screenshot."""
    chosen = os.environ.get("BROWSER_TEST_MODELS")
    return Path(chosen).resolve() if chosen else tiny_models_dir


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    """`streamlit run streamlit_app.py` (shipped config) on a free port over the test models."""
    app = AppServer(models_dir, tmp_path_factory.mktemp("streamlit") / "server.log")
    try:
        app.start(timeout=START_TIMEOUT)
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(str(e))
    yield app
    app.stop()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where this test's screenshots go: its own tmp folder, never the repo."""
    return tmp_path


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)  # a fresh temp profile
        yield b
        b.close()


@pytest.fixture(scope="module")
def context(browser):
    """One browser context for the module: its HTTP cache spares every test a reload of Streamlit's
    frontend bundle. Each test still gets its own page, i.e. its own session."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, server, request, shots):
    """A fresh page (= a new Streamlit session) on the app, fully rendered.

    Uncaught JS exceptions are collected in page.page_errors (assert_healthy checks them); a failed
    test leaves a screenshot in its tmp folder and says where.
    """
    pg = context.new_page()  # a new page is a new Streamlit session: no state carries over
    pg.page_errors = []
    pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
    failed_before = request.session.testsfailed
    try:
        pg.goto(server.url, timeout=RENDER_TIMEOUT)
        pg.wait_for_selector(CONNECTED, timeout=RENDER_TIMEOUT)
        expect(pg.locator(SLIDERS)).to_have_count(8, timeout=RENDER_TIMEOUT)
        expect(decoded_image(pg)).to_have_count(1, timeout=RENDER_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - report what the browser and the server saw
        with contextlib.suppress(Exception):
            save_full_page(pg, shots / "browser_failure.png")
        pg.close()
        pytest.fail(f"the app did not render: {e}\npage errors: {pg.page_errors}\nscreenshot: {shots / 'browser_failure.png'}\n"
                    f"server log tail:\n{server.log_tail()}")
    yield pg
    if request.session.testsfailed > failed_before:  # the call report is logged before teardown
        with contextlib.suppress(Exception):
            save_full_page(pg, shots / "browser_failure.png")
            print(f"screenshot of the failure: {shots / 'browser_failure.png'}")
    pg.close()


def save_full_page(page, path: Path) -> None:
    """Screenshot of the whole app. Streamlit scrolls inside <main> and the sidebar, not the
    document, so full_page alone stops at the viewport: grow the viewport to their height first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("""() => Math.max(document.documentElement.scrollHeight,
        ...[...document.querySelectorAll("[data-testid='stMain'], [data-testid='stSidebarContent']")].map(e => e.scrollHeight))""")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
    wait_map_still(page)  # the taller viewport relayouts the page; plotly redraws with it
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def decoded_image(page):
    return page.locator("[data-testid='stImage']").filter(has_text="decoded pixel means").locator("img")


def image_with_caption(page, caption: str):
    return page.locator("[data-testid='stImage']").filter(
        has=page.locator("[data-testid='stImageCaption']", has_text=caption))


def slider_values(page) -> list[float]:
    return [float(v) for v in page.locator(SLIDERS).evaluate_all("els => els.map(e => e.value)")]


def assert_healthy(page) -> None:
    errors = page.locator(ERRORS)
    assert errors.count() == 0, errors.all_inner_texts()
    assert not page.page_errors, page.page_errors


def wait_idle(page) -> None:
    """Until no script run is in progress (the attribute is 'running' during a run)."""
    page.wait_for_function(SCRIPT_IDLE_JS, timeout=STEP_TIMEOUT)


# True once the point PICK_MAP_POINT_JS picks is where it was at the previous check (100 ms before):
# the map has finished redrawing (an upload adds a marker trace and widens the legend, which moves
# every point). The previous pick is kept on window between the polls of wait_for_function.
MAP_STILL_JS = """() => {
  const pick = (%s)();
  const key = pick && `${pick.x.toFixed(1)},${pick.y.toFixed(1)},${pick.index}`;
  const still = !!key && window.__lastMapPick === key;
  window.__lastMapPick = key;
  return still && pick;
}""" % PICK_MAP_POINT_JS


def wait_map_still(page) -> dict:
    """Wait until the map is drawn and has not moved for one 100 ms poll; returns the picked point."""
    page.wait_for_function(MAP_READY_JS, timeout=RENDER_TIMEOUT)
    wait_idle(page)
    page.evaluate("() => { window.__lastMapPick = undefined; }")
    return page.wait_for_function(MAP_STILL_JS, polling=100, timeout=STEP_TIMEOUT).json_value()


def move_slider(page, i: int, presses: int) -> None:
    thumb = page.locator(SLIDERS).nth(i)
    thumb.focus()
    for _ in range(presses):
        page.keyboard.press("ArrowRight")


def upload_digit(page) -> None:
    page.set_input_files("[data-testid='stFileUploader'] input[type='file']", str(UPLOAD))
    expect(image_with_caption(page, "reconstruction from mu")).to_have_count(1, timeout=STEP_TIMEOUT)
    expect(image_with_caption(page, "normalised like MNIST")).to_have_count(1, timeout=STEP_TIMEOUT)


def click_map_point(page) -> int:
    """Click one test digit on the map; returns its test-set index."""
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.scroll_into_view_if_needed()
    point = wait_map_still(page)
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])
    expect(image_with_caption(page, "its reconstruction")).to_have_count(1, timeout=STEP_TIMEOUT)
    return int(point["index"])


# --- tests ------------------------------------------------------------------------------------

def test_walkthrough_in_one_session(page, models_dir, shots):
    """What a learner does first, in one session (a page load costs seconds on this machine): the page
    loads clean; a slider changes the digit; an upload is analysed; a map click loads the clicked
    digit's mu into the sliders; the noise panel shows. The full page is saved (and to
    $BROWSER_TEST_SCREENSHOT when set)."""
    wait_idle(page)
    assert page.locator("[data-testid='stSlider']").count() == 8
    assert slider_values(page) == [0.0] * 8
    img = decoded_image(page)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle(), timeout=STEP_TIMEOUT)
    assert page.get_by_text("What did the VAE learn?").count() == 1
    page.wait_for_function(MAP_READY_JS, timeout=RENDER_TIMEOUT)
    assert_healthy(page)

    before = decoded_image(page).get_attribute("src")
    move_slider(page, 1, 10)  # 10 x step 0.05
    expect(decoded_image(page)).not_to_have_attribute("src", before, timeout=STEP_TIMEOUT)
    wait_idle(page)
    values = slider_values(page)
    assert values[1] > 0 and values[:1] + values[2:] == [0.0] * 7, values
    assert_healthy(page)

    upload_digit(page)
    wait_idle(page)
    assert page.get_by_text("nearest test digits in latent space", exact=False).count() == 1
    assert_healthy(page)

    index = click_map_point(page)
    expect(image_with_caption(page, f"test #{index} (")).to_have_count(1, timeout=STEP_TIMEOUT)
    wait_idle(page)
    mu = load_atlas(models_dir / "default.atlas.npz").mu[index]
    values = np.array(slider_values(page))
    # the sliders show mu (rounded) snapped to their 0.05 step
    assert np.abs(values - np.clip(mu, -4, 4)).max() <= 0.026, (values, mu)
    assert np.any(values != 0.0)

    expect(page.get_by_text("decodes of z = mu + sigma", exact=False)).to_have_count(1, timeout=STEP_TIMEOUT)
    wait_idle(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stImage] img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=STEP_TIMEOUT)
    wait_map_still(page)  # plotly's transitions are over
    assert_healthy(page)
    save_full_page(page, shots / "browser_screenshot.png")
    assert (shots / "browser_screenshot.png").stat().st_size > 10_000
    if target := os.environ.get("BROWSER_TEST_SCREENSHOT"):  # asked for by name: e.g. docs/app.png
        save_full_page(page, Path(target))
