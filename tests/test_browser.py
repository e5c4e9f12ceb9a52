"""The real app in a real headless browser: `streamlit run` + Debian chromium driven by Playwright.

AppTest (test_app.py) cannot click a plotly point, drag the studio's sliders or draw; this module
does, against a real server on the tiny model ($VAE_EXPLORER_MODELS), and a second one on the shipped
models (only read) for the tests that need them: parity for both presets, and drawn digits that must
reconstruct as themselves. It skips only when no browser is available
off CI; on CI (CI=true) with chromium installed a missing playwright is a failure, not a skip.
Screenshots go to the test's tmp folder (a failing test names its file); the full walkthrough is
also saved to $BROWSER_TEST_SCREENSHOT when set (how docs/app.png is made, see README).
Every wait is for a condition, with a deadline: no fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from bench.harness import CHROMIUM_ARGS, CONNECTED, SCRIPT_IDLE_JS, AppServer, chromium_path
from common.atlas_format import load_atlas

ROOT = Path(__file__).resolve().parent.parent
UPLOAD = ROOT / "tests" / "assets" / "digit_clean.png"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.browser  # the browser tier: `pytest --all` or `pytest -m browser`

CHROMIUM = chromium_path()
if CHROMIUM is None and ON_CI:  # CI must not pass with the browser tier skipped
    raise RuntimeError("CI without a browser: /usr/bin/chromium missing (.ci/run installs Debian's chromium)")
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

SLIDERS = "input[type='range'][aria-label^='z']"  # the studio's native range inputs (in its shadow root)
DIGIT = "canvas[aria-label='decoded digit']"
PAD = "canvas[aria-label='drawing pad']"
CLASSIFIER = ROOT / "tests" / "assets" / "digit_classifier.pt"  # tools.digit_classifier, 99.1 % on MNIST test
# Sum of (index+1) * grey over a canvas's pixels: equal for equal images, different for (almost) any change.
CANVAS_SUM_JS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0; for (let i = 0; i < d.length; i += 4) s += (i / 4 + 1) * d[i]; return s; }"""
CANVAS_GREY_JS = """c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0))"""
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


SHIPPED = ROOT / "models"  # only read (the session guard checks it is left unchanged)


@pytest.fixture(scope="module")
def models_dir(tiny_models_dir) -> Path:
    """The tiny test model, or the folder in $BROWSER_TEST_MODELS: `BROWSER_TEST_MODELS=models pytest
    tests/test_browser.py -k walkthrough` drives the shipped model and takes the README screenshot."""
    chosen = os.environ.get("BROWSER_TEST_MODELS")
    return Path(chosen).resolve() if chosen else tiny_models_dir


def _serve(models: Path, tmp_path_factory):  # noqa: ANN202 - a generator fixture body
    app = AppServer(models, tmp_path_factory.mktemp("streamlit") / "server.log")
    try:
        app.start(timeout=START_TIMEOUT)
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(str(e))
    yield app
    app.stop()


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    """`streamlit run streamlit_app.py` (shipped config) on a free port over the test models."""
    yield from _serve(models_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory):
    """The same over the shipped models (started only for the tests that need them)."""
    yield from _serve(SHIPPED, tmp_path_factory)


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
    yield from _page(context, server, request, shots)


@pytest.fixture(scope="module")
def shipped_page(context, shipped_server, request, tmp_path_factory):
    """One page on the shipped models' server, shared by the parity and drawing tests (a page load
    of the full-size model costs seconds here); neither depends on what the other did."""
    yield from _page(context, shipped_server, request, tmp_path_factory.mktemp("shipped_page"))


def _page(context, server, request, shots):  # noqa: ANN202
    """A fresh page (= a new Streamlit session) on the app, fully rendered.

    Uncaught JS exceptions are collected in page.page_errors (assert_healthy checks them); a failed
    test leaves a screenshot in its tmp folder and says where.
    """
    pg = open_page(context, server.url)
    failed_before = request.session.testsfailed
    try:
        wait_rendered(pg)
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


def open_page(context, url: str):
    """A new page on `url`, counting the websocket frames it sends (pg.ws_sent: times) and the bytes
    it receives (pg.ws_received: [time, bytes]), and collecting uncaught JS errors (pg.page_errors)."""
    pg = context.new_page()  # a new page is a new Streamlit session: no state carries over
    pg.page_errors, pg.ws_sent, pg.ws_received = [], [], []
    pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))

    def on_socket(ws) -> None:  # noqa: ANN001
        ws.on("framesent", lambda _: pg.ws_sent.append(time.perf_counter()))
        ws.on("framereceived", lambda f: pg.ws_received.append((time.perf_counter(), len(f) if f else 0)))

    pg.on("websocket", on_socket)
    pg.goto(url, timeout=RENDER_TIMEOUT)
    return pg


def wait_rendered(pg) -> None:
    """Until the app is connected, idle and the studio has drawn its first decoded digit."""
    pg.wait_for_selector(CONNECTED, timeout=RENDER_TIMEOUT)
    expect(pg.locator(SLIDERS)).to_have_count(8, timeout=RENDER_TIMEOUT)
    pg.wait_for_selector(f"{DIGIT}[data-frames]", timeout=RENDER_TIMEOUT)
    wait_idle(pg)


def save_full_page(page, path: Path, still=None) -> None:  # noqa: ANN001
    """Screenshot of the whole app. Streamlit scrolls inside <main> and the sidebar, not the
    document, so full_page alone stops at the viewport: grow the viewport to their height first.
    `still(page)` waits for the page to be drawn again after that (default: the explorer's map)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("""() => Math.max(document.documentElement.scrollHeight,
        ...[...document.querySelectorAll("[data-testid='stMain'], [data-testid='stSidebarContent']")].map(e => e.scrollHeight))""")
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 8000)})
    (still or wait_map_still)(page)  # the taller viewport relayouts the page; plotly redraws with it
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def image_with_caption(page, caption: str):
    return page.locator("[data-testid='stImage']").filter(
        has=page.locator("[data-testid='stImageCaption']", has_text=caption))


def slider_values(page) -> list[float]:
    return [float(v) for v in page.locator(SLIDERS).evaluate_all("els => els.map(e => e.value)")]


def assert_healthy(page) -> None:
    errors = page.locator(ERRORS)
    assert errors.count() == 0, errors.all_inner_texts()
    assert not page.page_errors, page.page_errors


def select_model(page, label: str) -> None:  # noqa: ANN001
    """Open another model from the sidebar's list ("beta / beta-8.pt") and wait until the page is its."""
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    box.click()
    page.get_by_role("option", name=label, exact=True).click()
    expect(page.locator("[data-testid='stSidebar']")).to_contain_text(label.replace(".pt", "").replace(" / ", "/") + " · preset",
                                                                      timeout=RENDER_TIMEOUT)
    wait_idle(page)


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


def slider(page, d: int):
    return page.locator(f"input[type='range'][aria-label='z{d}']")


def studio_values(page) -> list[float]:
    """The studio's sliders in dimension order z0 ... z7 (they are shown ordered by KL)."""
    return [float(slider(page, d).input_value()) for d in range(8)]


# The first element matching a selector inside any open shadow root (the components mount in one).
IN_SHADOW_JS = "sel => [...document.querySelectorAll('*')].map(e => e.shadowRoot?.querySelector(sel)).find(Boolean)"


def studio_number(page, name: str) -> int:
    """One of the studio box's counters: data-rev (the server revision shown), data-strip-updates."""
    return int(page.locator("div.studio").get_attribute(f"data-{name}"))


def wait_studio_number_above(page, name: str, value: int) -> None:
    """Until the studio's counter data-{name} exceeds `value` (e.g. it took a newer revision)."""
    key = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("-")))  # data-strip-updates -> stripUpdates
    page.wait_for_function(f"([sel, v]) => Number(({IN_SHADOW_JS})(sel)?.dataset.{key}) > v",
                           arg=["div.studio", value], timeout=STEP_TIMEOUT)


def canvas_sum(page, selector: str) -> float:
    return page.locator(selector).evaluate(CANVAS_SUM_JS)


def move_slider(page, d: int, presses: int) -> None:
    """Keyboard: each arrow press is an input and a change (a release) of the native range input."""
    slider(page, d).focus()
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


def drag(page, d: int, moves: int = 60, dx: float = 2.0) -> dict:
    """A real mouse drag of slider z{d} from its thumb (at 0): down, `moves` small moves right, up.

    After each move the decoded digit's canvas is summed, which paces the drag (about 1 s in all)
    and counts distinct images. Returns distinct images, frames sent while the button was down, time.
    """
    box = slider(page, d).bounding_box()
    x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x0, y)
    sums = set()
    t_down = time.perf_counter()
    page.mouse.down()
    for i in range(1, moves + 1):
        page.mouse.move(x0 + i * dx, y)
        sums.add(canvas_sum(page, DIGIT))
    t_up = time.perf_counter()
    sent = [t for t in page.ws_sent if t_down <= t <= t_up]
    page.mouse.up()
    return {"distinct": len(sums), "sent_while_down": len(sent), "seconds": t_up - t_down}


def code_line(page):
    return page.locator("[data-testid='stCaptionContainer']").filter(has_text="Code from")


# --- tests ------------------------------------------------------------------------------------

def test_a_drag_morphs_the_digit_and_tells_the_server_only_on_release(page):
    sent_before = len(page.ws_sent)
    r = drag(page, 0)
    assert r["sent_while_down"] == 0, r  # decoding while dragging is the browser's alone
    assert r["distinct"] >= 30, r  # the digit morphed under the mouse
    expect(code_line(page)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)  # the release reached Python
    wait_idle(page)
    assert len(page.ws_sent) > sent_before
    z0 = studio_values(page)[0]
    assert z0 > 1.0 and f"z = [{z0:+.2f}" in code_line(page).inner_text()  # the server has the browser's code
    assert_healthy(page)


def test_releases_do_not_resend_the_weights(page):
    """The model payload (MBs) reached this page once; releases bring back only small updates."""
    biggest = max(n for _, n in page.ws_received)  # the frame that carried the payload
    page.wait_for_function(MAP_READY_JS, timeout=RENDER_TIMEOUT)  # the page's own deferred rerun is over
    wait_idle(page)
    start = time.perf_counter()
    z0, z1 = studio_values(page)[:2]  # the start digit's code
    for k in range(5):
        move_slider(page, 1, 1)  # one arrow press: an input and a release
        expect(code_line(page)).to_contain_text(f"z = [{z0:+.2f}, {z1 + 0.05 * (k + 1):+.2f}", timeout=STEP_TIMEOUT)
        wait_idle(page)
    frames = [n for t, n in page.ws_received if t >= start]
    assert sum(frames) < biggest / 4 and max(frames) < 20_000, (biggest, frames)


def test_strips_follow_another_slider(page):
    before = canvas_sum(page, "canvas[aria-label='z3 strip']")
    updates = studio_number(page, "strip-updates")
    move_slider(page, 0, 30)  # z0 to +1.5: the strip of z3 holds z0 there now
    wait_studio_number_above(page, "strip-updates", updates)
    page.wait_for_function(f"([sel, s]) => {{ const c = ({IN_SHADOW_JS})(sel); return !!c && ({CANVAS_SUM_JS})(c) !== s; }}",
                           arg=["canvas[aria-label='z3 strip']", before], timeout=STEP_TIMEOUT)
    assert_healthy(page)


def _parity(page, models_dir: Path, name: str) -> None:
    from explorer import bundle, codes, studio

    m = bundle.load_explorer_model(models_dir / f"{name}.pt")
    z = np.random.default_rng(0).uniform(-3, 3, size=(100, m.latent_dim)).astype(np.float32)
    browser = np.array(page.evaluate("([id, z]) => globalThis.__vaeStudio.decode(id, z)", [studio.model_id(m), z.tolist()]))
    python = codes.decode_pixels(m.model, z).reshape(100, -1)
    assert browser.shape == python.shape == (100, 784)
    assert np.abs(browser - python).max() <= 1e-4
    # and what the canvas shows is that decode of the sliders' code
    here = np.array(studio_values(page), np.float32)
    grey = np.array(page.locator(DIGIT).evaluate(CANVAS_GREY_JS))
    assert np.abs(grey - np.round(codes.decode_pixels(m.model, here).reshape(-1) * 255)).max() <= 1


def test_browser_decode_matches_numpy_for_both_presets(shipped_page, context, shipped_server):
    page = shipped_page
    move_slider(page, 2, 12)
    expect(code_line(page)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)
    _parity(page, SHIPPED, "default")
    seed = open_page(context, f"{shipped_server.url}/?model=seed")  # a link to the other preset
    try:
        wait_rendered(seed)
        expect(seed.get_by_text("preset `seed`", exact=False).or_(seed.get_by_text("preset seed", exact=False))).not_to_have_count(0)
        _parity(seed, SHIPPED, "seed")
        assert_healthy(seed)
    finally:
        seed.close()


DIGIT_STROKES = {  # strokes as lists of (x, y) in pad fractions, as a learner would draw them
    0: [[(0.5 + 0.22 * np.sin(t), 0.5 - 0.33 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 48)]],
    1: [[(0.52, 0.15), (0.5, 0.5), (0.48, 0.85)]],
    7: [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
}


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    box = page.locator(PAD).bounding_box()
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])  # noqa: E731
    for stroke in strokes:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for a, b in zip(stroke, stroke[1:]):
            page.mouse.move(*at(b), steps=8)
        page.mouse.up()


def test_drawn_digits_reconstruct_as_themselves(shipped_page):
    import torch

    from tools.digit_classifier import load_classifier, predict

    page = shipped_page
    classifier, _ = load_classifier(CLASSIFIER)
    page.locator(PAD).scroll_into_view_if_needed()
    seen = {}
    for digit, strokes in DIGIT_STROKES.items():
        page.get_by_role("button", name="Clear").click()
        wait_idle(page)
        rev = studio_number(page, "rev")
        draw(page, strokes)
        wait_studio_number_above(page, "rev", rev)  # the drawing was encoded and its code sent to the studio
        expect(code_line(page)).to_contain_text("Code from your drawing", timeout=STEP_TIMEOUT)
        wait_idle(page)
        grey = np.array(page.locator(DIGIT).evaluate(CANVAS_GREY_JS), np.float32) / 255.0
        seen[digit] = int(predict(classifier, torch.from_numpy(grey).reshape(1, 784))[0])
    assert seen == {d: d for d in DIGIT_STROKES}, seen
    expect(image_with_caption(page, "normalised like MNIST")).to_have_count(1)
    assert_healthy(page)


def test_walkthrough_and_its_link(page, context, browser, server, models_dir, shots):
    """What a learner does first, in one session: an upload is analysed; a map click loads the
    clicked digit's mu into the studio; the PCA map; a slider; the noise panel. The full page is
    saved (and to $BROWSER_TEST_SCREENSHOT when set). Then the page's URL, opened in a fresh browser
    context, restores the same view."""
    assert page.get_by_text("What did the VAE learn?").count() == 1
    page.wait_for_function(MAP_READY_JS, timeout=RENDER_TIMEOUT)
    assert_healthy(page)
    upload_digit(page)
    wait_idle(page)
    assert page.get_by_text("nearest test digits to your upload", exact=False).count() == 1

    index = click_map_point(page)
    expect(image_with_caption(page, f"test #{index} (")).to_have_count(1, timeout=STEP_TIMEOUT)
    wait_idle(page)
    mu = load_atlas(models_dir / "default.atlas.npz").mu[index]
    expect(code_line(page)).to_contain_text(f"test digit #{index}:", timeout=STEP_TIMEOUT)
    values = np.array(studio_values(page))
    assert np.abs(values - np.clip(mu, -4, 4)).max() <= 0.026, (values, mu)  # mu snapped to the 0.05 step
    page.get_by_role("radio", name="PCA").or_(page.get_by_role("tab", name="PCA")).or_(
        page.locator("[data-testid='stBaseButton-segmented_control']", has_text="PCA")).first.click()
    expect(page.locator("canvas[aria-label='live latent map']")).to_have_count(1)
    expect(page.get_by_text("you are here, on the PCA map", exact=False)).to_have_count(1, timeout=STEP_TIMEOUT)
    move_slider(page, 5, 4)
    expect(code_line(page)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)
    expect(page.get_by_text("decodes of z = mu + sigma", exact=False)).to_have_count(1, timeout=STEP_TIMEOUT)
    wait_idle(page)
    page.wait_for_function("() => location.search.includes('map=pca') && location.search.includes('digit=')",
                           timeout=STEP_TIMEOUT)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stImage] img')].every(i => i.complete && i.naturalWidth > 0)",
        timeout=STEP_TIMEOUT)
    wait_map_still(page)  # plotly's transitions are over
    assert_healthy(page)
    save_full_page(page, shots / "browser_screenshot.png")
    assert (shots / "browser_screenshot.png").stat().st_size > 10_000
    if target := os.environ.get("BROWSER_TEST_SCREENSHOT"):  # asked for by name: e.g. docs/app.png
        save_full_page(page, Path(target))

    link, here = page.url, studio_values(page)
    fresh = browser.new_context(viewport={"width": 1440, "height": 1000})  # no cookies, cache or state
    try:
        other = open_page(fresh, link)
        wait_rendered(other)
        assert studio_values(other) == here
        expect(other.get_by_text("you are here, on the PCA map", exact=False)).to_have_count(1)
        expect(image_with_caption(other, f"test #{index} (")).to_have_count(1, timeout=STEP_TIMEOUT)
        assert other.url == link  # the URL was already the state's
        assert_healthy(other)
    finally:
        fresh.close()


def test_a_bad_link_falls_back_with_a_notice(context, server):
    pg = open_page(context, f"{server.url}/?model=gone&z=nan,1,2&map=umap&digit=-4")
    try:
        wait_rendered(pg)
        pg.wait_for_function(MAP_READY_JS, timeout=RENDER_TIMEOUT)  # the notices outlive the map's rerun
        wait_idle(pg)
        for text in ("“gone” is not in the models folder", "has 3 numbers", "“umap” is not one of", "none selected"):
            expect(pg.get_by_text(text, exact=False)).to_have_count(1)
        mu = load_atlas(server.models / "default.atlas.npz").mu[0]  # none of it usable: the start digit, #0
        assert np.abs(np.array(studio_values(pg)) - mu).max() <= 0.026
        assert_healthy(pg)
        pg.wait_for_function("() => location.search.includes('model=default')", timeout=STEP_TIMEOUT)  # URL repaired
    finally:
        pg.close()


def test_the_keep_panel_takes_the_studios_code_and_downloads_a_gif(page, shots):
    """After a release, the keep panel follows the studio's new code by itself (no Refresh), and
    "Download GIF" gives a looping GIF with one frame per step, named after the model and the path."""
    from PIL import Image

    strip = image_with_caption(page, "10 frames from the current code to ")
    strip.scroll_into_view_if_needed()
    expect(strip).to_have_count(1, timeout=STEP_TIMEOUT)
    before = strip.locator("img").get_attribute("src")
    move_slider(page, 1, 6)
    expect(code_line(page)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)
    wait_idle(page)
    strip.scroll_into_view_if_needed()  # back down to the panel (the slider's focus scrolled to the studio)
    page.wait_for_function(
        """src => [...document.querySelectorAll("[data-testid='stImage']")].some(e =>
             e.innerText.includes('10 frames from the current code') && e.querySelector('img').src !== src)""",
        arg=before, timeout=STEP_TIMEOUT)  # the panel followed the code
    wait_idle(page)
    button = page.get_by_role("button", name="Download GIF")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()
    download = info.value
    assert download.suggested_filename.startswith("default-interpolation-the-current-code-to-")
    assert download.suggested_filename.endswith("-slerp-10.gif")
    path = shots / download.suggested_filename
    download.save_as(path)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 10 and gif.info["loop"] == 0
    assert_healthy(page)


# --- the tug-of-war page ---------------------------------------------------------------------

# The plotly element whose figure has animation frames (the map over training), its slider's
# active step and the epoch label it shows.
TRAINING_MAP_JS = """() => {
  const el = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .find(e => e._transitionData && e._transitionData._frames && e._transitionData._frames.length > 0);
  if (!el || !el._fullLayout.sliders || !el._fullLayout.sliders.length) return null;
  return {active: el._fullLayout.sliders[0].active, frames: el._transitionData._frames.length,
          x0: el._fullData[0].x.length ? Number(el._fullData[0].x[0]) : null};
}"""
TUG_DRAWN_JS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
  .every(p => p._fullLayout && p.querySelector('.main-svg'))"""
# Viewport position of the rate-distortion point of `name` (trace 0 carries model names in customdata).
RD_POINT_JS = """name => {
  const el = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .find(e => e._fullData && e._fullData[0] && Array.isArray(e._fullData[0].customdata)
               && String(e._fullData[0].customdata[0]).startsWith('beta/'));
  if (!el) return null;
  const t = el._fullData[0], i = t.customdata.indexOf(name), box = el.getBoundingClientRect();
  const xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
  return i < 0 ? null : {x: box.x + xa._offset + xa.d2p(t.x[i]), y: box.y + ya._offset + ya.d2p(t.y[i])};
}"""


def test_the_tug_of_war_page_plays_training_and_opens_a_beta_in_the_explorer(context, shipped_server, shots):
    """On the shipped models: a code set in the explorer's studio, then the app's navigation to the
    second page; the map over training plays (its slider moves through the epochs and the codes
    move); a real click on the beta = 8 point of the rate-distortion plot selects it; its link
    opens the explorer on that model with the studio's code."""
    pg = open_page(context, shipped_server.url)
    try:
        wait_rendered(pg)
        start = studio_values(pg)  # the page opens on a test digit's code
        move_slider(pg, 2, 12)
        expect(code_line(pg)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)
        code = studio_values(pg)
        assert code[2] == round(start[2] + 0.6, 2)
        pg.locator("[data-testid='stSidebarNav']").get_by_text("The tug of war").click()
        pg.wait_for_url("**/tug-of-war*", timeout=STEP_TIMEOUT)  # the explorer's query may come along
        expect(pg.get_by_text("1 · How the VAE learnt")).to_have_count(1, timeout=RENDER_TIMEOUT)
        expect(pg.locator("[data-testid='stPlotlyChart']")).to_have_count(5, timeout=RENDER_TIMEOUT)
        pg.wait_for_function(TRAINING_MAP_JS, timeout=RENDER_TIMEOUT)
        wait_idle(pg)
        before = pg.evaluate(TRAINING_MAP_JS)
        assert before["active"] == 0 and before["frames"] >= 9
        play = pg.locator(".updatemenu-button", has_text="play")
        play.scroll_into_view_if_needed()
        box = play.bounding_box()
        pg.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        pg.wait_for_function(f"() => {{ const s = ({TRAINING_MAP_JS})(); return s && s.active >= 2 && s.x0 !== {before['x0']}; }}",
                             timeout=STEP_TIMEOUT)
        assert_healthy(pg)

        pg.locator("text=2 · What beta does").scroll_into_view_if_needed()
        expect(pg.get_by_text("β = 1", exact=True)).to_have_count(1, timeout=STEP_TIMEOUT)
        pg.locator("[data-testid='stPlotlyChart']").nth(3).scroll_into_view_if_needed()  # the plot, not only its header
        point = pg.evaluate(RD_POINT_JS, "beta/beta-8")
        assert point is not None
        pg.mouse.click(point["x"], point["y"])
        expect(pg.get_by_role("heading", name="β = 8")).to_have_count(1, timeout=STEP_TIMEOUT)
        wait_idle(pg)
        link = pg.get_by_role("link", name="Open β = 8 in the explorer", exact=False)
        href = link.get_attribute("href")
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(href).query)  # the studio's code, as the explorer's links write it
        assert query["model"] == ["beta/beta-8"] and [float(v) for v in query["z"][0].split(",")] == code, href
        assert_healthy(pg)
        drawn = lambda p: p.wait_for_function(TUG_DRAWN_JS, timeout=STEP_TIMEOUT)  # noqa: E731
        save_full_page(pg, shots / "tug_of_war.png", drawn)
        if target := os.environ.get("TUG_SCREENSHOT"):  # how docs/tug_of_war.png is made (README)
            save_full_page(pg, Path(target), drawn)
        with context.expect_page() as opened:
            link.click()
        explorer = opened.value
        explorer.page_errors = []
        explorer.on("pageerror", lambda e: explorer.page_errors.append(str(e)))
        try:
            wait_rendered(explorer)
            expect(explorer.locator("[data-testid='stSidebar']")).to_contain_text("beta/beta-8 · preset seed · β = 8",
                                                                                  timeout=STEP_TIMEOUT)
            assert studio_values(explorer) == code
            assert_healthy(explorer)
        finally:
            explorer.close()
    finally:
        pg.close()
