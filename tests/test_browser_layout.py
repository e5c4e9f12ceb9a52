"""The page layout on a phone, in a real headless Chromium (390x844, touch, mobile): nothing
overflows sideways on either page, a vertical swipe over the big map scrolls the page instead of
panning the plot (unless the learner turns panning on), and what opening /tug-of-war directly costs.

Runs on the shipped models (only read): the real figures, the real sweep. Fixtures and helpers come
from tests/test_browser.py and bench/harness.py. Every wait is for a condition, with a deadline.
Screenshots go to each test's tmp folder; $LAYOUT_SCREENSHOTS (a folder) also gets them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.harness import CHROMIUM_ARGS, CONNECTED  # noqa: F401 - CHROMIUM_ARGS documents the launch
from tests.test_browser import (  # noqa: F401 - fixtures are used by name
    MAP_READY_JS, RENDER_TIMEOUT, STEP_TIMEOUT, TUG_DRAWN_JS, assert_healthy, browser, context, expect, save_full_page,
    shipped_server, wait_idle, wait_rendered,
)

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 1}
# stMain is Streamlit's scroll container (the document itself does not scroll); every element, including
# those inside open shadow roots (the studio), whose right edge passes the viewport's, is named.
OVERFLOW_JS = """() => {
  const main = document.querySelector("[data-testid='stMain']"), width = document.documentElement.clientWidth;
  const all = [], walk = root => { for (const e of root.querySelectorAll('*')) { all.push(e); if (e.shadowRoot) walk(e.shadowRoot); } };
  walk(main);
  const out = all.filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; })
    .map(e => `${e.tagName.toLowerCase()}[data-testid=${e.getAttribute('data-testid')}] class=${String(e.className).slice(0, 40)}`);
  return {scrollWidth: main.scrollWidth, clientWidth: main.clientWidth, offenders: [...new Set(out)].slice(0, 12)};
}"""
# The big map (the explorer's 10k-point plot: 10 digit traces with customdata): its axis ranges and box.
MAP_STATE_JS = """() => {
  const el = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .find(e => e._fullData && e._fullData.filter(t => t.customdata && t.type === 'scattergl').length === 10);
  if (!el) return null;
  const b = el.getBoundingClientRect(), fl = el._fullLayout;
  return {x: [...fl.xaxis.range], y: [...fl.yaxis.range], top: b.top, left: b.left, width: b.width, height: b.height,
          dragmode: fl.dragmode};
}"""
SCROLL_TOP_JS = "() => document.querySelector(\"[data-testid='stMain']\").scrollTop"


@pytest.fixture(scope="module")
def phone(browser):
    ctx = browser.new_context(**PHONE)
    yield ctx
    ctx.close()


def _open(context, url: str):
    pg = context.new_page()
    pg.page_errors, pg.failed = [], []
    pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
    pg.on("response", lambda r: pg.failed.append((r.status, r.url)) if r.status >= 400 else None)
    pg.goto(url, timeout=RENDER_TIMEOUT)
    return pg


def _keep(pg, shots: Path, name: str) -> None:
    save_full_page(pg, shots / name, lambda p: wait_idle(p))
    if folder := os.environ.get("LAYOUT_SCREENSHOTS"):
        save_full_page(pg, Path(folder) / name, lambda p: wait_idle(p))


def _explorer_with_map(context, url: str):
    pg = _open(context, url)
    wait_rendered(pg)
    pg.wait_for_function(MAP_READY_JS, timeout=RENDER_TIMEOUT)  # the map comes on the second run
    wait_idle(pg)
    return pg


def _tug_page(context, url: str):
    pg = _open(context, f"{url}/tug-of-war")
    pg.wait_for_selector(CONNECTED, timeout=RENDER_TIMEOUT)
    expect(pg.get_by_text("2 · What beta does")).to_have_count(1, timeout=RENDER_TIMEOUT)
    expect(pg.locator("[data-testid='stPlotlyChart']")).to_have_count(5, timeout=RENDER_TIMEOUT)
    pg.wait_for_function(TUG_DRAWN_JS, timeout=RENDER_TIMEOUT)
    wait_idle(pg)
    return pg


@pytest.mark.parametrize("name", ["explorer", "tug-of-war"])
def test_no_sideways_overflow_on_a_phone(name, phone, shipped_server, tmp_path):
    """stMain (Streamlit's scroll container) is no wider than the phone: nothing scrolls sideways.
    A failure names the elements that stick out."""
    open_page = _explorer_with_map if name == "explorer" else _tug_page
    pg = open_page(phone, shipped_server.url)
    try:
        state = pg.evaluate(OVERFLOW_JS)
        _keep(pg, tmp_path, f"phone_{name}.png")
        assert state["scrollWidth"] <= state["clientWidth"], (name, state)
        assert_healthy(pg)
    finally:
        pg.close()


def _swipe_up(pg, x: float, y: float, distance: float = 300, steps: int = 15) -> None:
    """A real touch swipe (a finger moving up by `distance` px) from viewport (x, y), sent as touch
    events through Chromium's input pipeline (CDP Input.dispatchTouchEvent), as a phone sends them.
    (Input.synthesizeScrollGesture with a touch source scrolled nothing here, not even plain text.)"""
    cdp = pg.context.new_cdp_session(pg)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for i in range(1, steps + 1):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y - distance * i / steps}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_a_vertical_swipe_on_the_map_scrolls_the_page_unless_panning_is_on(phone, shipped_server, tmp_path):
    pg = _explorer_with_map(phone, shipped_server.url)
    try:
        pg.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
        before, top = pg.evaluate(MAP_STATE_JS), pg.evaluate(SCROLL_TOP_JS)
        assert before["dragmode"] is False  # the figure's choice, kept in the browser (app.main)
        _swipe_up(pg, before["left"] + before["width"] / 2, before["top"] + before["height"] / 2)
        pg.wait_for_function(f"() => ({SCROLL_TOP_JS})() > {top} + 100", timeout=STEP_TIMEOUT)
        after = pg.evaluate(MAP_STATE_JS)
        assert after["x"] == before["x"] and after["y"] == before["y"]  # the plot did not pan
        _keep(pg, tmp_path, "phone_explorer_after_swipe.png")

        # The learner chooses to pan: the same swipe now moves the plot, not the page.
        pg.get_by_text("Pan and zoom the map").click()
        pg.wait_for_function(f"() => {{ const s = ({MAP_STATE_JS})(); return s && s.dragmode === 'pan'; }}",
                             timeout=STEP_TIMEOUT)
        wait_idle(pg)
        pg.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
        before, top = pg.evaluate(MAP_STATE_JS), pg.evaluate(SCROLL_TOP_JS)
        _swipe_up(pg, before["left"] + before["width"] / 2, before["top"] + before["height"] / 2)
        pg.wait_for_function(f"""() => {{ const s = ({MAP_STATE_JS})();
            return s && s.y[0] !== {before['y'][0]}; }}""", timeout=STEP_TIMEOUT)
        assert pg.evaluate(SCROLL_TOP_JS) == top
        assert_healthy(pg)
    finally:
        pg.close()


# Streamlit's frontend cannot tell "the page /tug-of-war of an app at /" from "the main page of an
# app served under the base path /tug-of-war": it probes both, the longer first, and the server
# answers 404 for <page>/_stcore/health and host-config on purpose (reserved suffixes in
# streamlit/web/server/starlette/starlette_static_routes.py). See docs/figures.md.
BASE_PATH_PROBES = {"/tug-of-war/_stcore/health", "/tug-of-war/_stcore/host-config"}


def test_opening_the_tug_of_war_page_directly(phone, context, shipped_server, tmp_path):
    """The page renders from a direct link with no error and no failed request of its own; the only
    404s are Streamlit's two base-path probes (pinned here: if Streamlit stops probing, this says so),
    and arriving through the app's own navigation logs none."""
    pg = _tug_page(phone, shipped_server.url)
    try:
        failed = {(s, u.replace(shipped_server.url, "")) for s, u in pg.failed}
        assert failed <= {(404, p) for p in BASE_PATH_PROBES}, failed
        assert_healthy(pg)
        _keep(pg, tmp_path, "phone_tug-of-war.png")
    finally:
        pg.close()
    pg = _open(context, shipped_server.url)
    try:
        wait_rendered(pg)
        pg.locator("[data-testid='stSidebarNav']").get_by_text("The tug of war").click()
        pg.wait_for_url("**/tug-of-war*", timeout=STEP_TIMEOUT)  # the explorer's query may come along
        expect(pg.get_by_text("2 · What beta does")).to_have_count(1, timeout=RENDER_TIMEOUT)
        wait_idle(pg)
        assert not pg.failed, pg.failed  # through the app's navigation: no probe, no 404
    finally:
        pg.close()


# The sweep member's map (its title names the shared axes): its axis ranges and tick labels.
SWEEP_MAP_JS = """() => {
  const el = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .find(e => e._fullLayout && e._fullLayout.title && String(e._fullLayout.title.text).includes('axes shared by the sweep'));
  if (!el) return null;
  const fl = el._fullLayout;
  return {title: fl.title.text, x: [...fl.xaxis.range], y: [...fl.yaxis.range],
          ticks: [...el.querySelectorAll('.xtick text, .ytick text')].map(t => t.textContent)};
}"""


def test_the_sweeps_maps_keep_their_axes_when_a_real_click_picks_another_beta(browser, shipped_server, tmp_path):
    """At 1440x900: a real mouse click on the beta = 8 point of the rate-distortion plot shows that
    model's map on the same labelled axes as beta = 1's, and no element overflows. Saves the page to
    $TUG_SCREENSHOT when set (how docs/tug_of_war.png is made, as tests/test_browser.py does)."""
    from tests.test_browser import RD_POINT_JS

    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = _tug_page(ctx, shipped_server.url)
    try:
        before = pg.evaluate(SWEEP_MAP_JS)
        assert "β = 1:" in before["title"] and {"−4", "0", "4"} <= set(before["ticks"]), before
        pg.locator("[data-testid='stPlotlyChart']").nth(3).scroll_into_view_if_needed()
        point = pg.evaluate(RD_POINT_JS, "beta/beta-8")
        pg.mouse.click(point["x"], point["y"])
        expect(pg.get_by_role("heading", name="β = 8")).to_have_count(1, timeout=STEP_TIMEOUT)
        pg.wait_for_function(f"() => {{ const s = ({SWEEP_MAP_JS})(); return s && s.title.includes('β = 8:'); }}",
                             timeout=STEP_TIMEOUT)
        wait_idle(pg)
        after = pg.evaluate(SWEEP_MAP_JS)
        assert after["x"] == before["x"] and after["y"] == before["y"] and after["ticks"] == before["ticks"]
        state = pg.evaluate(OVERFLOW_JS)
        assert state["scrollWidth"] <= state["clientWidth"], state
        assert_healthy(pg)
        _keep(pg, tmp_path, "desktop_tug-of-war.png")
        if target := os.environ.get("TUG_SCREENSHOT"):
            save_full_page(pg, Path(target), lambda p: p.wait_for_function(TUG_DRAWN_JS, timeout=STEP_TIMEOUT))
    finally:
        pg.close()
        ctx.close()
