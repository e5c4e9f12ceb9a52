"""One truth in a real browser (issue 19): what the app shows, names and exports is the state of that moment.

* a download right after a keyboard change in the studio holds that code (no Refresh);
* a model switch leaves no false label: a test digit's and an upload's code are encoded again by the
  new model, any other code says it is carried over;
* a link to a digit of a subset model (the beta sweep's atlases hold 2,006 test digits) shows that
  MNIST test digit, everywhere it is named; a link to a digit the atlas lacks gets a notice.

Servers, browser and helpers are test_browser.py's (imported); the tiny model serves the first
test, the shipped models (only read) the others, since only they have a subset atlas.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.atlas_format import load_atlas
from explorer import state
from tests.test_browser import (  # noqa: F401 - fixtures are used by name
    RENDER_TIMEOUT, SHIPPED, STEP_TIMEOUT, UPLOAD, assert_healthy, browser, code_line, context, expect,
    image_with_caption, models_dir, open_page, page, select_model, server, shipped_server, shots, slider, studio_values,
    wait_idle, wait_rendered)

pytestmark = pytest.mark.browser

JSON_SHOWN_JS = "() => [...document.querySelectorAll('[data-testid=stCode] code')].map(c => c.innerText).join('\\n')"


def click_keep_view(page, name: str) -> None:  # noqa: ANN001
    button = page.locator("[data-testid='stBaseButton-segmented_control'], button[data-variant='segmented_control']",
                          has_text=name).first
    button.scroll_into_view_if_needed()
    button.click()


def show_code_view(page) -> None:  # noqa: ANN001
    """Switch the keep panel to "Code (JSON)" and wait until it shows the code file (the run the
    click asks for may not have started when the click returns: idle alone proves nothing)."""
    click_keep_view(page, "Code (JSON)")
    page.wait_for_function(f"() => ({JSON_SHOWN_JS})().includes('\"z\"')", timeout=STEP_TIMEOUT)
    wait_idle(page)


def test_a_download_right_after_a_key_press_holds_that_code(page, shots):
    """End on z7 (a keyboard release), then at once "Download code (JSON)": the file is the studio's
    code, and the panel shows it too, with no Refresh anywhere."""
    page.wait_for_function("() => !!document.querySelector('[data-testid=stPlotlyChart]')", timeout=RENDER_TIMEOUT)
    wait_idle(page)
    assert page.get_by_role("button", name="Refresh", exact=True).count() == 0
    show_code_view(page)
    slider(page, 7).focus()
    page.keyboard.press("End")
    page.wait_for_function("() => new URLSearchParams(location.search).get('z')?.endsWith(',4')",
                           timeout=STEP_TIMEOUT)  # the release reached the server (the URL updates)
    button = page.get_by_role("button", name="Download code (JSON)")
    with page.expect_download(timeout=STEP_TIMEOUT) as info:
        button.click()  # no wait for the panel: the file is made at the click from the code of that moment
    download = info.value
    path = shots / download.suggested_filename
    download.save_as(path)
    saved = json.loads(path.read_text())
    here = studio_values(page)
    assert here[7] == 4.0 and saved["z"] == here and saved["source"] == "sliders"
    assert download.suggested_filename == "default-code.json"
    page.wait_for_function(f"() => ({JSON_SHOWN_JS})().includes('\"source\": \"sliders\"')", timeout=STEP_TIMEOUT)
    shown = json.loads(page.evaluate(JSON_SHOWN_JS))
    assert shown["z"] == here  # the panel followed the studio by itself
    # Back at the studio (focus scrolls to it), Home; then down to the panel, as a learner would: the
    # panel, out of view at the release, follows as it comes near (follow.js), before it is seen.
    slider(page, 7).focus()
    page.keyboard.press("Home")
    page.wait_for_function("() => new URLSearchParams(location.search).get('z')?.endsWith(',-4')", timeout=STEP_TIMEOUT)
    page.get_by_role("button", name="Download code (JSON)").scroll_into_view_if_needed()
    page.wait_for_function(f"() => ({JSON_SHOWN_JS})().includes('-4.0')", timeout=STEP_TIMEOUT)
    assert json.loads(page.evaluate(JSON_SHOWN_JS))["z"] == studio_values(page)
    assert_healthy(page)


def test_a_release_right_after_a_view_switch_is_followed_by_the_new_view(page):
    """Switch the keep panel to "Code (JSON)" and, before its run is back, release z7 with the
    keyboard: whichever comes first (the old view's follower, the new one's mount, the switch's run),
    the code view ends showing the released code."""
    page.wait_for_function("() => !!document.querySelector('[data-testid=stPlotlyChart]')", timeout=RENDER_TIMEOUT)
    wait_idle(page)
    click_keep_view(page, "Code (JSON)")
    slider(page, 7).focus()
    page.keyboard.press("End")
    page.wait_for_function("() => new URLSearchParams(location.search).get('z')?.endsWith(',4')", timeout=STEP_TIMEOUT)
    page.get_by_role("button", name="Download code (JSON)").scroll_into_view_if_needed()  # down to the panel
    page.wait_for_function(f"() => ({JSON_SHOWN_JS})().includes('\"source\": \"sliders\"')", timeout=STEP_TIMEOUT)
    shown = json.loads(page.evaluate(JSON_SHOWN_JS))
    assert shown["z"] == studio_values(page) and shown["z"][7] == 4.0
    assert_healthy(page)


def _snapped(z: np.ndarray) -> list[float]:
    return list(state.snap(z))


STUDIO_CODE_JS = """want => { const r = [...document.querySelectorAll('*')].map(e => e.shadowRoot)
  .find(s => s?.querySelector("input[aria-label='z0']"));
  return !!r && want.every((v, d) => Math.abs(Number(r.querySelector(`input[aria-label='z${d}']`).value) - v) < 1e-6); }"""


def wait_studio_code(page, want: list[float]) -> None:  # noqa: ANN001
    """Until the studio's sliders show code `want` (z0 ... z7): the view reaches the browser after the line."""
    page.wait_for_function(STUDIO_CODE_JS, arg=want, timeout=STEP_TIMEOUT)


def test_a_model_switch_leaves_no_false_label(context, shipped_server):
    """On the shipped models: the start digit, then an upload's code, then the sliders' code, each
    through a model switch; the studio's line and numbers say what is true on the new model."""
    from explorer import bundle
    from explorer.analysis import analyse_digit
    from explorer.preprocess import prepare_digit

    pg = open_page(context, shipped_server.url)
    try:
        wait_rendered(pg)
        beta8 = bundle.load_explorer_model(SHIPPED / "beta" / "beta-8.pt")
        expect(code_line(pg)).to_contain_text("Code from test digit #0:", timeout=STEP_TIMEOUT)
        select_model(pg, "beta / beta-8.pt")
        expect(code_line(pg)).to_contain_text("Code from test digit #0:", timeout=STEP_TIMEOUT)
        row = state.digit_row(beta8.atlas.test_index, beta8.atlas.size, 0)
        wait_studio_code(pg, _snapped(beta8.atlas.mu[row]))  # test digit #0 as beta-8 encodes it

        pg.set_input_files("[data-testid='stFileUploader'] input[type='file']", str(UPLOAD))
        expect(image_with_caption(pg, "reconstruction from mu")).to_have_count(1, timeout=STEP_TIMEOUT)
        pg.get_by_role("button", name="Load its code into the studio").click()
        expect(code_line(pg)).to_contain_text("Code from your upload:", timeout=STEP_TIMEOUT)
        select_model(pg, "seed.pt")
        expect(code_line(pg)).to_contain_text("Code from your upload:", timeout=STEP_TIMEOUT)
        seed = bundle.load_explorer_model(SHIPPED / "seed.pt")
        mu = analyse_digit(seed.model, seed.atlas, prepare_digit(UPLOAD.read_bytes())).mu
        wait_studio_code(pg, _snapped(mu))  # the upload as seed encodes it, as the upload panel shows
        assert "carried over" not in code_line(pg).inner_text()

        slider(pg, 3).focus()
        pg.keyboard.press("End")
        expect(code_line(pg)).to_contain_text("Code from sliders:", timeout=STEP_TIMEOUT)
        here = studio_values(pg)
        select_model(pg, "default.pt")
        expect(code_line(pg)).to_contain_text("Code from sliders, carried over unchanged from seed:", timeout=STEP_TIMEOUT)
        wait_studio_code(pg, here)
        assert_healthy(pg)
    finally:
        pg.close()


def test_a_link_to_a_subset_models_digit_shows_that_mnist_test_digit(context, shipped_server, shots):
    """beta-8's atlas holds 2,006 test digits: digit=4970 is its row 1000. The selected digit, its
    caption, the studio's code and the studio's own readout all name MNIST test digit #4970."""
    full = load_atlas(SHIPPED / "default.atlas.npz")  # every test digit, row = MNIST index
    beta8 = load_atlas(SHIPPED / "beta" / "beta-8.atlas.npz")
    row = state.digit_row(beta8.test_index, beta8.size, 4970)
    assert row == 1000 and np.array_equal(beta8.images[row], full.images[4970])
    label = state.a_digit(int(full.labels[4970]))
    pg = open_page(context, f"{shipped_server.url}/?model=beta/beta-8&digit=4970")
    try:
        wait_rendered(pg)
        expect(image_with_caption(pg, f"test #4970 ({label})")).to_have_count(1, timeout=RENDER_TIMEOUT)
        wait_studio_code(pg, _snapped(beta8.mu[row]))
        expect(code_line(pg)).to_contain_text("Code from test digit #4970:", timeout=STEP_TIMEOUT)
        readout = pg.locator(".plausibility")
        expect(readout).to_contain_text("(test #", timeout=STEP_TIMEOUT)
        z = np.array(studio_values(pg))
        nearest = int(np.argmin(((beta8.mu - z) ** 2).sum(1)))
        number = int(beta8.test_index[nearest])
        expect(readout).to_contain_text(f"Nearest test digit: {state.a_digit(int(beta8.labels[nearest]))} (test #{number})")
        assert f"(test #{number})" in code_line(pg).inner_text()
        assert "digit=4970" in pg.url
        pg.screenshot(path=str(shots / "subset_link.png"))
        assert_healthy(pg)
    finally:
        pg.close()
    pg = open_page(context, f"{shipped_server.url}/?model=beta/beta-8&digit=4971")
    try:
        wait_rendered(pg)
        expect(pg.get_by_text("test digit #4971 is not among the 2,006 test digits", exact=False)).to_have_count(
            1, timeout=RENDER_TIMEOUT)
        assert_healthy(pg)
    finally:
        pg.close()
