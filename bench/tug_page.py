"""`python -m bench.tug_page [--models models] [--repeats 3]`: how long the tug-of-war page takes to open.

Starts the app on `models` and headless Chromium, and times until every plotly chart of the page
is drawn and the script is idle (medians over `repeats`, after one open that fills the server's
model and figure caches):

* `from_explorer_s`: a learner on the explorer clicks "The tug of war" in the sidebar: from the
  click (Streamlit's frontend and plotly.js are already loaded in the tab);
* `new_tab_s`: /tug-of-war opened in a new tab of a browser that has been on the app before (its
  HTTP cache holds Streamlit's and plotly's JavaScript);
* `fresh_browser_s`: /tug-of-war in a fresh browser context (nothing cached): Streamlit's frontend
  and plotly.js are fetched and compiled first; `connected_s` is the part until the app connects.

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import CHROMIUM_ARGS, CONNECTED, SCRIPT_IDLE_JS, AppServer, chromium_path

TIMEOUT_MS = 120_000
CHARTS = 5  # curves, per-unit curves, map over training, rate-distortion, the chosen beta's map
DRAWN_JS = f"""() => {{
  const plots = [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')];
  return plots.length === {CHARTS} && plots.every(p => p._fullLayout && p.querySelector('.main-svg'));
}}"""


def _drawn(page, t0: float) -> float:  # noqa: ANN001
    page.wait_for_function(DRAWN_JS, timeout=TIMEOUT_MS)
    page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
    return time.perf_counter() - t0


def _open(context, url: str) -> tuple[float, float]:  # noqa: ANN001
    """(seconds to connected, seconds to drawn) of a new page on url."""
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(url, timeout=TIMEOUT_MS)
        page.wait_for_selector(CONNECTED, timeout=TIMEOUT_MS, state="attached")
        return time.perf_counter() - t0, _drawn(page, t0)
    finally:
        page.close()


def _from_explorer(context, url: str) -> float:  # noqa: ANN001
    page = context.new_page()
    try:
        page.goto(url, timeout=TIMEOUT_MS)
        page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg", timeout=TIMEOUT_MS)  # the explorer's map
        page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
        link = page.locator("[data-testid='stSidebarNav']").get_by_text("The tug of war")
        t0 = time.perf_counter()
        link.click()
        page.wait_for_url("**/tug-of-war", timeout=TIMEOUT_MS)
        return _drawn(page, t0)
    finally:
        page.close()


def measure(models: Path, repeats: int = 3) -> dict[str, float]:
    """Seconds until the page is drawn, by the way it is reached (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    if chromium is None:
        raise RuntimeError("no chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        app = AppServer(models, Path(tmp) / "server.log").start()
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            url = f"{app.url}/tug-of-war"
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            _open(context, url)  # fills the server's caches and this context's HTTP cache
            explorer = [_from_explorer(context, app.url) for _ in range(repeats)]
            tab = [_open(context, url)[1] for _ in range(repeats)]
            context.close()
            fresh = []
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1440, "height": 1000})
                fresh.append(_open(context, url))
                context.close()
        finally:
            browser.close()
            app.stop()
    med = lambda xs: round(statistics.median(xs), 2)  # noqa: E731
    return {"from_explorer_s": med(explorer), "new_tab_s": med(tab), "fresh_browser_s": med([f[1] for f in fresh]),
            "connected_s": med([f[0] for f in fresh])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tug_page", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.models.resolve(), args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
