"""The live studio in a real headless Chromium: the verdict beside the digit, the t-SNE marker of a code
off the data, the verdict and t-SNE placement computed in the browser against Python, the phone layout
under real touch input, every member of a family decoded live during a drag, and the posterior band
on the sliders. Fixtures and helpers are tests/test_browser.py's (one server per module, as there).

`STUDIO_SCREENSHOTS=docs pytest tests/test_browser_studio.py -m browser` also writes the studio's
screenshots for docs/studio.md (desktop 1440x900 and phone 390x844, on the shipped models).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.test_browser import (  # noqa: F401 - fixtures are used by name
    CANVAS_GREY_JS, CANVAS_SUM_JS, DIGIT, RENDER_TIMEOUT, SHIPPED, STEP_TIMEOUT, assert_healthy, browser,
    canvas_sum, code_line, context, drag, expect, image_with_caption, models_dir, open_page,
    page, select_model, server, shipped_server, shots, slider, studio_values, upload_digit, wait_idle, wait_map_still, wait_rendered,
)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402 - after test_browser's skip for no browser

pytestmark = pytest.mark.browser

READOUT = "div.plausibility"
MINIMAP = "canvas[aria-label='live latent map']"
MEMBERS = "canvas[aria-label^='decoded by ']"
BANDS = "div.band"
FAR = "4,4,4,4,4,4,4,4"  # every slider at its end: far from every test digit of any model here
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
PAYLOAD_MOUNTS = "[class*='st-key-studio_model'], [class*='st-key-studio_member']"  # app/studio.py payloads_ui
REGISTERED_JS = "() => [...globalThis.__vaeStudio.models.keys()]"


def _fresh(browser, url: str, **options):  # noqa: ANN001, ANN202
    """A new browser context (its own viewport and input kind) and a rendered page on `url`."""
    ctx = browser.new_context(**options)
    pg = open_page(ctx, url)
    wait_rendered(pg)
    return ctx, pg


def _box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


# --- the verdict and the maps ------------------------------------------------------------------

def test_the_verdict_sits_beside_the_digit_above_the_fold(browser, server, shots):
    ctx, pg = _fresh(browser, f"{server.url}/?z={FAR}", **DESKTOP)
    try:
        readout, digit = pg.locator(READOUT), _box(pg, DIGIT)
        expect(readout).to_have_attribute("data-verdict", "hole", timeout=STEP_TIMEOUT)
        box = readout.bounding_box()
        assert box["x"] >= digit["x"] + digit["width"]  # to the right of the digit ...
        assert box["y"] < digit["y"] + digit["height"] and box["y"] + box["height"] > digit["y"]  # ... level with it
        assert box["y"] + box["height"] <= 900 and digit["y"] + digit["height"] <= 900  # both above the fold
        text = readout.inner_text()
        assert text.startswith("A hole") and "a hole: a hole" not in text.lower() and "→" not in text
        assert " a 8 " not in text and "test #" in text
        pg.screenshot(path=str(shots / "studio_desktop.png"))
        assert_healthy(pg)
    finally:
        ctx.close()


def test_a_code_off_the_data_is_marked_off_the_tsne_map_not_among_digits(page, models_dir):
    from common.atlas_format import load_atlas

    mini, readout = page.locator(MINIMAP), page.locator(READOUT)
    mu = load_atlas(models_dir / "default.atlas.npz").mu[0]
    for d in range(8):  # a test digit's own code (set as a drag would: input events, no release)
        slider(page, d).evaluate("(e, v) => { e.value = String(v); e.dispatchEvent(new Event('input')); }", float(mu[d]))
    expect(readout).to_have_attribute("data-verdict", "typical", timeout=STEP_TIMEOUT)
    expect(mini).to_have_attribute("data-off-data", "false")
    assert float(mini.get_attribute("data-y")) > 24  # placed on the map, among the digits
    for d in range(8):  # End on every slider: a code far from every test digit
        slider(page, d).focus()
        page.keyboard.press("End")
    expect(readout).to_have_attribute("data-verdict", "hole", timeout=STEP_TIMEOUT)
    expect(mini).to_have_attribute("data-off-data", "true")
    assert float(mini.get_attribute("data-y")) < 24  # in the lane above the map, not inside a cluster
    expect(page.get_by_text("off the data: a hole has no place on the t-SNE map", exact=False)).to_have_count(1)
    assert_healthy(page)


def test_browser_verdict_and_tsne_place_match_python(page, models_dir):
    """The browser's readout and marker are explorer.studio's: same nearest digit, distance,
    verdict (with the thresholds Python sent) and t-SNE place (or none, for a hole)."""
    from explorer import bundle, studio

    m = bundle.load_explorer_model(models_dir / "default.pt")
    spacing = studio.neighbour_spacing(m.atlas.mu)
    rng = np.random.default_rng(0)
    base = m.atlas.mu[rng.integers(0, m.atlas.size, 120)]
    scale = np.repeat([0.0, 0.05, 0.3, 1.0, 3.0, 10.0], 20)[:, None]  # typical, sparse and holes alike
    z = (base + scale * rng.normal(size=base.shape)).astype(np.float32)
    got = page.evaluate("([id, z]) => globalThis.__vaeStudio.locate(id, z)", [studio.model_id(m), z.tolist()])
    verdicts = set()
    for zi, g in zip(z, got):
        p = studio.plausibility(zi, m.atlas.mu, spacing)
        place = studio.tsne_place(zi, m.atlas.mu, m.atlas.tsne, spacing)
        assert g["nearest"] == p.nearest and g["verdict"] == p.verdict
        assert abs(g["distance"] - p.distance) <= 1e-4 * max(1.0, p.distance)
        if place.off_data:
            assert g["tsne"] is None
        else:
            np.testing.assert_allclose(g["tsne"], place.xy, rtol=1e-4, atol=1e-4)
        verdicts.add(p.verdict)
    assert verdicts == {"typical", "sparse", "hole"}  # every branch was compared


# --- a phone -----------------------------------------------------------------------------------

# Every element of the studio (inside its shadow root) as [right edge, width] in viewport pixels.
STUDIO_RIGHTS_JS = """() => { const root = [...document.querySelectorAll('*')].map(e => e.shadowRoot).find(r => r?.querySelector('div.studio'));
  return [...root.querySelectorAll('div.studio *')].filter(e => e.getClientRects().length)
    .map(e => { const r = e.getBoundingClientRect(); return [r.right, r.width, e.tagName + '.' + e.className]; }); }"""


def _touch_drag(ctx, pg, selector: str, dx: float, moves: int, during) -> None:  # noqa: ANN001
    """A real touch drag (Chrome DevTools touch events) from the centre of `selector`; `during(pg)`
    runs with the finger still down."""
    box = pg.locator(selector).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = ctx.new_cdp_session(pg)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for i in range(1, moves + 1):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + dx * i / moves, "y": y}]})
    during(pg)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_on_a_phone_the_studio_fits_and_the_digit_stays_in_view_while_dragging(browser, server, shots):
    ctx, pg = _fresh(browser, server.url, **PHONE)
    try:
        width = pg.viewport_size["width"]
        rights = pg.evaluate(STUDIO_RIGHTS_JS)
        over = [r for r in rights if r[0] > width + 0.5]
        assert not over, over  # nothing of the studio reaches past the screen's right edge
        for d in range(8):  # each strip shows its 5 decodes whole, at least 40 px each
            box = _box(pg, f"canvas[aria-label='z{d} strip']")
            assert box["x"] >= 0 and box["x"] + box["width"] <= width and box["width"] >= 5 * 40, (d, box)
        header = pg.locator("[data-testid='stHeader']").bounding_box()
        lowest = pg.locator("input[type='range'][data-dim]").last  # the last slider in display order
        dim = int(lowest.get_attribute("data-dim"))
        lowest.scroll_into_view_if_needed()
        before, sent = canvas_sum(pg, DIGIT), len(pg.ws_sent)
        seen = {}

        def check(p) -> None:  # noqa: ANN001
            p.wait_for_function(f"s => ({CANVAS_SUM_JS})([...document.querySelectorAll('*')].map(e => e.shadowRoot?.querySelector(\"{DIGIT}\")).find(Boolean)) !== s",
                                arg=before, timeout=STEP_TIMEOUT)
            seen["digit"] = _box(p, DIGIT)
            seen["sent"] = len(p.ws_sent) - sent
            seen["value"] = float(slider(p, dim).input_value())
            p.screenshot(path=str(shots / "studio_phone_drag.png"))

        _touch_drag(ctx, pg, f"input[type='range'][aria-label='z{dim}']", 90, 30, check)
        digit = seen["digit"]
        top = header["y"] + header["height"] if header else 0
        assert digit["y"] >= top - 1 and digit["y"] + digit["height"] <= 844, (digit, header)  # on screen, not under the header
        assert seen["sent"] == 0 and seen["value"] > 0.5, seen  # the finger moved the slider; no server message yet
        expect(code_line(pg)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)  # the release reached Python
        assert_healthy(pg)
    finally:
        ctx.close()


# --- a family, decoded live --------------------------------------------------------------------

def test_every_member_of_a_family_decodes_the_code_live_during_a_drag(browser, shipped_server, shots):
    from explorer import bundle, codes

    ctx, pg = _fresh(browser, f"{shipped_server.url}/?model=beta%2Fbeta-8", viewport={"width": 1440, "height": 1000})
    try:
        names = [p.stem for p in bundle.list_checkpoints(SHIPPED / "beta") if p.parent.name == "beta"]
        members = pg.locator(MEMBERS)
        expect(members).to_have_count(len(names), timeout=STEP_TIMEOUT)
        assert members.evaluate_all("es => es.map(e => e.getAttribute('aria-label'))") == [f"decoded by beta/{n}" for n in names]
        for n in names:
            expect(pg.locator(f"canvas[aria-label='decoded by beta/{n}'][data-frames]")).to_have_count(1, timeout=RENDER_TIMEOUT)
        # Once the page has said it holds them, later runs leave the model's and every member's payload out.
        expect(pg.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=RENDER_TIMEOUT)  # the ready run
        expect(pg.locator(PAYLOAD_MOUNTS)).to_have_count(0, timeout=STEP_TIMEOUT)
        sums_before = [canvas_sum(pg, f"canvas[aria-label='decoded by beta/{n}']") for n in names]
        frames_before = [int(pg.locator(f"canvas[aria-label='decoded by beta/{n}']").get_attribute("data-frames")) for n in names]
        r = drag(pg, 0, moves=40)
        assert r["sent_while_down"] == 0, r  # every member decoded in the browser, no server message
        frames = [int(pg.locator(f"canvas[aria-label='decoded by beta/{n}']").get_attribute("data-frames")) for n in names]
        assert all(f - b >= 30 for f, b in zip(frames, frames_before)), (frames_before, frames)  # a decode per move
        assert all(canvas_sum(pg, f"canvas[aria-label='decoded by beta/{n}']") != s for n, s in zip(names, sums_before))
        expect(code_line(pg)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)
        wait_idle(pg)
        here = np.array(studio_values(pg), np.float32)
        for n in names:  # each canvas is that member's own decode of the sliders' code
            m = bundle.load_explorer_model(SHIPPED / "beta" / f"{n}.pt")
            grey = np.array(pg.locator(f"canvas[aria-label='decoded by beta/{n}']").evaluate(CANVAS_GREY_JS))
            assert np.abs(grey - np.round(codes.decode_pixels(m.model, here).reshape(-1) * 255)).max() <= 1, n
        assert_healthy(pg)
    finally:
        ctx.close()
    if folder := os.environ.get("STUDIO_SCREENSHOTS"):  # asked for by name: docs/studio_*.png
        _docs_screenshots(browser, shipped_server.url, Path(folder))


def _docs_screenshots(browser, url: str, folder: Path) -> None:  # noqa: ANN001
    """The studio at 1440x900 and at 390x844 with touch, on the shipped default with z0..z3 at +4
    (the state of docs/studio_*_before.png); the beta family; test digit #4 with its band, on PCA;
    the ladder (ae ... vae) on test digit #4 of the VAE rung."""
    for name, query, options in (("studio_desktop", "/?z=4,4,4,4,0,0,0,0", DESKTOP),
                                 ("studio_phone", "/?z=4,4,4,4,0,0,0,0", {**PHONE, "device_scale_factor": 2}),
                                 ("studio_family", "/?model=beta%2Fbeta-8&z=0,1.5,0,0,0,0,0,0", DESKTOP),
                                 ("studio_band", "/?digit=4&map=pca", DESKTOP),  # a test digit's posterior on the sliders
                                 ("studio_ladder", "/?model=ladder%2Fvae&digit=4", DESKTOP)):
        ctx, pg = _fresh(browser, url + query, **options)
        try:
            pg.wait_for_function("() => !!document.querySelector(\"[data-testid='stPlotlyChart'] .main-svg\")", timeout=RENDER_TIMEOUT)
            wait_idle(pg)
            pg.screenshot(path=str(folder / f"{name}.png"))
            if name == "studio_phone":  # and scrolled to the last slider: the head stays on top
                pg.locator("input[type='range'][data-dim]").last.scroll_into_view_if_needed()
                pg.screenshot(path=str(folder / "studio_phone_scrolled.png"))
        finally:
            ctx.close()


# --- payloads sent once per page ----------------------------------------------------------------

def test_the_page_keeps_its_payload_and_asks_for_it_again_if_it_lost_it(page):
    """After the first-frame signal (it names the payloads the page holds) full runs leave the payload
    out; the studio still decodes. A page that lost it says so, and the whole page runs with it again."""
    expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=RENDER_TIMEOUT)  # the ready run
    expect(page.locator(PAYLOAD_MOUNTS)).to_have_count(0, timeout=STEP_TIMEOUT)
    model_ids = page.evaluate(REGISTERED_JS)
    assert len(model_ids) == 1
    _click_map_digit(page)  # a full run after the ready run: the payload stays out, the map click works
    wait_idle(page)
    assert page.locator(PAYLOAD_MOUNTS).count() == 0
    slider(page, 0).scroll_into_view_if_needed()  # the map click left the page scrolled down to the map
    assert drag(page, 0, moves=20)["distinct"] >= 10  # decoded in the browser with the payload it kept
    page.evaluate("() => { const r = globalThis.__vaeStudio; for (const id of [...r.models.keys()]) { r.models.delete(id); r.decoders.delete(id); } }")
    page.get_by_role("button", name="Random from prior").click()  # a new view: the studio finds its model missing
    page.wait_for_function(f"() => ({REGISTERED_JS})().length === 1", timeout=STEP_TIMEOUT)
    assert page.evaluate(REGISTERED_JS) == model_ids
    expect(page.locator(PAYLOAD_MOUNTS)).to_have_count(1, timeout=STEP_TIMEOUT)  # sent again, for the rest of the session
    wait_idle(page)
    slider(page, 1).scroll_into_view_if_needed()
    assert drag(page, 1, moves=20)["distinct"] >= 10
    assert_healthy(page)


def test_a_model_opened_later_is_left_out_of_later_runs_once_the_studio_has_it(browser, shipped_server):
    """The first-frame signal named the default's payload; a family model opened afterwards brings its
    payload and its members' decoders, and the studio says the page holds them ("have"): the next
    full run (a map click) sends none of them again, and every member still decodes."""
    ctx, pg = _fresh(browser, shipped_server.url, viewport={"width": 1440, "height": 1000})
    try:
        expect(pg.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=RENDER_TIMEOUT)  # the ready run
        expect(pg.locator(PAYLOAD_MOUNTS)).to_have_count(0, timeout=STEP_TIMEOUT)
        select_model(pg, "beta / beta-8.pt")
        expect(pg.locator(MEMBERS).first).to_be_visible(timeout=RENDER_TIMEOUT)
        members = pg.locator(MEMBERS).count()
        assert members >= 3 and pg.locator(PAYLOAD_MOUNTS).count() == members  # sent with the switch
        pg.wait_for_function("() => [...(globalThis.__vaeStudio.reported ?? [])].filter((k) => k.startsWith('m:')).length === 2",
                             timeout=STEP_TIMEOUT)  # the studio said it holds them all (its message is on its way)
        _click_map_digit(pg)  # a full run, asked after that message: its callback has run by then
        expect(pg.locator(PAYLOAD_MOUNTS)).to_have_count(0, timeout=STEP_TIMEOUT)  # the run's left-out mounts are gone
        wait_idle(pg)
        slider(pg, 0).scroll_into_view_if_needed()
        frames = pg.locator(MEMBERS).evaluate_all("es => es.map(e => Number(e.dataset.frames))")
        assert drag(pg, 0, moves=20)["distinct"] >= 10  # decoded with the payloads the page kept
        after = pg.locator(MEMBERS).evaluate_all("es => es.map(e => Number(e.dataset.frames))")
        assert all(a - b >= 10 for a, b in zip(after, frames)), (frames, after)
        assert_healthy(pg)
    finally:
        ctx.close()


# --- the posterior band ------------------------------------------------------------------------

def _click_map_digit(page, attempts: int = 3) -> int:
    """Click one test digit on the map (as test_browser.click_map_point) and return its test-set
    index. On a busy machine plotly may not yet track the mouse when the map looks still (the
    page's deferred run is drawing the panels below), and a click then selects nothing: each
    attempt hovers until plotly's hover label shows, clicks, and waits for the clicked digit's panel."""
    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
    for attempt in range(attempts):
        point = wait_map_still(page)
        page.mouse.move(point["x"] - 3, point["y"])
        page.mouse.move(point["x"], point["y"])
        try:
            page.wait_for_selector("[data-testid='stPlotlyChart'] .hoverlayer .hovertext", state="attached", timeout=10_000)
            page.mouse.click(point["x"], point["y"])
            expect(image_with_caption(page, "its reconstruction")).to_have_count(1, timeout=10_000)
            return int(point["index"])
        except (AssertionError, PlaywrightTimeout):
            if attempt == attempts - 1:
                raise
            page.mouse.move(0, 0)  # leave the plot; the next attempt hovers afresh
    raise AssertionError("unreachable")


def _bands(page) -> list[dict]:
    return page.locator(BANDS).evaluate_all(
        "es => es.map(e => ({dim: Number(e.dataset.dim), hidden: e.hidden, mu: Number(e.dataset.mu), sigma: Number(e.dataset.sigma),"
        " box: e.getBoundingClientRect().toJSON(), track: e.parentElement.getBoundingClientRect().toJSON()}))")


def test_the_posterior_band_of_a_clicked_or_uploaded_digit_lies_on_the_sliders(page, models_dir):
    from common.atlas_format import load_atlas

    atlas = load_atlas(models_dir / "default.atlas.npz")
    # the page opens on test digit #0's code, so its posterior is on the sliders from the start
    start = {b["dim"]: b for b in _bands(page)}
    assert sorted(start) == list(range(8)) and not any(b["hidden"] for b in start.values())
    assert all(b["mu"] == pytest.approx(atlas.mu[atlas.rows_of([0])[0], d], abs=1e-3) for d, b in start.items())
    index = _click_map_digit(page)
    mu, sigma = atlas.mu[index], np.exp(0.5 * atlas.logvar[index])
    # the start digit's band is already up: wait until the bands are the clicked digit's
    page.wait_for_function("mu => [...document.querySelectorAll('*')].some(e => [...(e.shadowRoot?.querySelectorAll("
                           "'div.band:not([hidden])') || [])].some(b => Number(b.dataset.dim) === 0 && "
                           "Math.abs(Number(b.dataset.mu) - mu) < 1e-3))", arg=float(mu[0]), timeout=STEP_TIMEOUT)
    bands = {b["dim"]: b for b in _bands(page)}
    assert sorted(bands) == list(range(8))
    for d, b in bands.items():
        assert not b["hidden"] and b["mu"] == pytest.approx(mu[d], abs=1e-3) and b["sigma"] == pytest.approx(sigma[d], abs=1e-3)
        # drawn where the slider's thumb would stand at mu - sigma ... mu + sigma (thumb 16 px)
        f = lambda v: (np.clip(v, -4, 4) + 4) / 8  # noqa: E731
        x = lambda v: b["track"]["x"] + 8 + (b["track"]["width"] - 16) * f(v)  # noqa: E731
        assert abs(b["box"]["x"] - x(mu[d] - sigma[d])) <= 1.5 and abs(b["box"]["x"] + b["box"]["width"] - x(mu[d] + sigma[d])) <= 2.5, (d, b)
    expect(page.get_by_text(f"mu ± sigma of test digit #{index}", exact=False)).to_have_count(1)
    slider(page, 0).focus()
    page.keyboard.press("ArrowRight")  # a release keeps the revision: the band stays while the learner moves
    expect(code_line(page)).to_contain_text("Code from sliders", timeout=STEP_TIMEOUT)
    wait_idle(page)
    assert not any(b["hidden"] for b in _bands(page))

    upload_digit(page)
    load = page.get_by_role("button", name="Load its code into the studio")
    load.scroll_into_view_if_needed()
    load.click()
    expect(page.get_by_text("mu ± sigma of your upload", exact=False)).to_have_count(1, timeout=STEP_TIMEOUT)
    wait_idle(page)
    values = np.array(studio_values(page))
    up = {b["dim"]: b["mu"] for b in _bands(page)}
    assert np.abs(values - np.array([up[d] for d in range(8)])).max() <= 0.026  # the band is the loaded code's posterior

    page.get_by_role("button", name="Reset to 0").click()
    page.wait_for_function("() => [...document.querySelectorAll('*')].every(e => !e.shadowRoot?.querySelector('div.band:not([hidden])'))",
                           timeout=STEP_TIMEOUT)
    assert_healthy(page)
