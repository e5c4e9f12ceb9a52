"""The keep panel's follower (app/frontend/follow.js) on its own, in Chromium: the module the app
ships, mounted the way Streamlit mounts it, on a page that stands for the keep panel.

The app-level tests (test_browser_truth.py) show the panel following a release; these pin down the
race they cannot arrange: a studio release made before the follower's mount (the panel's run had
arrived, its component was not mounted yet, nothing heard the release). The follower reads the
studio's last release (`__vaeStudio.released`, {rev, z}, set by studio.js) at mount.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_browser import STEP_TIMEOUT, browser  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.browser

FOLLOW_JS = Path(__file__).resolve().parents[1] / "app" / "frontend" / "follow.js"

# A panel block (as Streamlit's) holding the follower's host (and another view's), 3000 px of page
# below, and `follow.mount(data, host)`: mounts the shipped module with a setTriggerValue that
# records each call; `follow.release(rev, z)` does what studio.js does on a slider release.
PAGE = """<html><body style="margin:0">
<div data-testid="stVerticalBlock" style="height:200px"><div id="host"></div><div id="other-view"></div></div>
<div style="height:3000px"></div></body></html>"""
SETUP_JS = """async (src) => {
  const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
  const { default: mount } = await import(url);
  window.sent = [];
  window.follow = {
    mount: (data, host = "host") => mount({ data: { id: "keep_follow", ...data }, parentElement: document.getElementById(host),
                                            setTriggerValue: (name, value) => window.sent.push([name, value.z]) }),
    release: (rev, z) => { // what studio.js does on a slider release
      globalThis.__vaeStudio = { ...(globalThis.__vaeStudio ?? {}), released: { rev, z } };
      globalThis.dispatchEvent(new CustomEvent("vae-studio-release", { detail: { z } }));
    },
  };
}"""
OLD, NEW, OTHER = [0.0] * 8, [0.0] * 7 + [4.0], [1.0] + [0.0] * 7


@pytest.fixture
def panel(browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_content(PAGE)
    page.evaluate(SETUP_JS, FOLLOW_JS.read_text(encoding="utf-8"))
    yield page
    page.close()


def sent_after_a_task(page) -> list:  # noqa: ANN001
    """The trigger values sent by now: read after two frames (an IntersectionObserver reports at a
    frame) and a task queued behind the follower's own (it sends in a setTimeout 0), not after a sleep."""
    return page.evaluate("""() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(
      () => setTimeout(() => done(window.sent), 0))))""")


def test_a_release_made_before_the_follower_mounted_is_followed_at_its_mount(panel):
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])  # nothing listens yet
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [OLD])  # the panel shows the old code
    panel.wait_for_function("() => window.sent.length > 0", timeout=STEP_TIMEOUT)
    assert sent_after_a_task(panel) == [["release", NEW]]
    # The panel's run comes back showing the code: nothing more to send.
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [NEW])
    assert sent_after_a_task(panel) == [["release", NEW]]


def test_a_missed_release_is_sent_once_even_if_a_run_still_shows_the_old_code(panel):
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])
    for _ in range(3):  # e.g. other runs of the panel before the follower's own one
        panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [OLD])
    assert sent_after_a_task(panel) == [["release", NEW]]


def test_an_older_revisions_release_or_the_code_shown_sends_nothing(panel):
    # A map click made revision 6 after the release of revision 5: the panel shows the click's code.
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 6 })", [OTHER])
    # A release of the code the panel already shows.
    panel.evaluate("([z]) => { follow.release(6, z); }", [OTHER])
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 6 })", [OTHER])
    assert sent_after_a_task(panel) == []


def test_a_panel_that_does_not_follow_catches_nothing(panel):
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])
    panel.evaluate("([z]) => follow.mount({ follow: false, z, rev: 5 })", [OLD])
    assert sent_after_a_task(panel) == []


def test_a_missed_release_on_a_panel_out_of_view_waits_until_it_comes_near(panel):
    panel.evaluate("() => window.scrollTo(0, 2600)")  # the panel is 2400 px above the viewport
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [OLD])
    assert sent_after_a_task(panel) == []
    panel.evaluate("() => window.scrollTo(0, 0)")
    panel.wait_for_function("() => window.sent.length > 0", timeout=STEP_TIMEOUT)
    assert sent_after_a_task(panel) == [["release", NEW]]


def test_a_release_heard_by_a_mounted_follower_is_sent_once(panel):
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [OLD])
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])
    panel.wait_for_function("() => window.sent.length > 0", timeout=STEP_TIMEOUT)
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [OLD])  # a run before its own
    assert sent_after_a_task(panel) == [["release", NEW]]


def test_a_release_heard_by_the_old_view_is_followed_again_by_the_new_views_panel(panel):
    """A learner switched the panel's view and released a slider at once: the old view's follower
    heard the release and asked its fragment (which the switch removed); the new view's follower
    mounts showing the code from before the release and asks for it again."""
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 })", [OLD])
    panel.evaluate("([z]) => { follow.release(5, z); }", [NEW])
    panel.wait_for_function("() => window.sent.length > 0", timeout=STEP_TIMEOUT)
    panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 }, 'other-view')", [OLD])
    panel.wait_for_function("() => window.sent.length > 1", timeout=STEP_TIMEOUT)
    for _ in range(3):  # panels that still show the old code: a bounded number of asks
        panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 }, 'host')", [OLD])
        panel.evaluate("([z]) => follow.mount({ follow: true, z, rev: 5 }, 'other-view')", [OLD])
    assert sent_after_a_task(panel) == [["release", NEW]] * 2
