"""What a studio release costs when the keep panel follows it, measured in headless Chromium.

`python -m bench.follow --models models` starts the app, opens the page (1440x900) and reports:

* `far_release_to_page_ms`, `far_bytes_per_release`: 10 releases (arrow key on z1) with the page at
  the studio, the keep panel ~2000 px below: the panel does not rerun (the same figure as
  bench.studio's release cost);
* `near_release_to_page_ms`, `near_release_to_panel_ms`, `near_bytes_per_release`: 10 releases with
  the keep panel in view (interpolation from the current code, the default): until the studio's
  line shows the new code, and until the panel's caption does (the panel's own fragment rerun);
* `catch_up_ms`: one release at the studio, then the panel scrolled into view: until its caption
  shows the released code.

The slider keeps the keyboard focus without scrolling (focus({preventScroll: true})), as a learner
working with the panel in view would after a click on a slider.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.harness import SCRIPT_IDLE_JS, browser_bench_main
from bench.studio import SUMMARY_JS, TIMEOUT_MS, _settle, studio_page

RELEASES = 10
FOCUS_JS = """d => { const r = [...document.querySelectorAll('*')].map(e => e.shadowRoot)
  .find(s => s?.querySelector(`input[aria-label='z${d}']`));
  r.querySelector(`input[aria-label='z${d}']`).focus({preventScroll: true}); }"""
PANEL_JS = """v => [...document.querySelectorAll("[data-testid='stCaptionContainer']")]
  .some(e => e.innerText.startsWith('“The current code” is the studio') && e.innerText.includes(v))"""
PANEL = "text=Make and keep"


def _z1(page) -> float:  # noqa: ANN001
    return float(page.locator("input[type='range'][aria-label='z1']").input_value())


def _releases(page, panel: bool) -> dict[str, float]:  # noqa: ANN001
    page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
    page.evaluate(FOCUS_JS, 1)
    start = time.perf_counter()
    to_page, to_panel = [], []
    for _ in range(RELEASES):
        want = f"{_z1(page) + 0.05:+.2f}"
        page.keyboard.press("ArrowRight")
        t = time.perf_counter()
        page.wait_for_function(SUMMARY_JS, arg=want, polling="raf", timeout=TIMEOUT_MS)
        to_page.append(time.perf_counter() - t)
        if panel:
            page.wait_for_function(PANEL_JS, arg=want, polling="raf", timeout=TIMEOUT_MS)
            to_panel.append(time.perf_counter() - t)
        page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
    received = sum(n for t, n in page.received if t >= start)
    out = {"release_to_page_ms": 1000 * statistics.median(to_page), "bytes_per_release": received / RELEASES}
    if panel:
        out["release_to_panel_ms"] = 1000 * statistics.median(to_panel)
    return out


def measure(models: Path, timeout: float = 120.0) -> dict[str, float]:
    with studio_page(models, timeout, height=900) as page:
        _settle(page)
        page.wait_for_selector(PANEL, timeout=TIMEOUT_MS)
        figures = {f"far_{k}": v for k, v in _releases(page, panel=False).items()}
        page.locator(PANEL).scroll_into_view_if_needed()
        page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
        figures.update({f"near_{k}": v for k, v in _releases(page, panel=True).items()})
        page.locator("input[type='range'][aria-label='z1']").scroll_into_view_if_needed()  # back to the studio
        page.evaluate(FOCUS_JS, 1)
        want = f"{_z1(page) + 0.05:+.2f}"
        page.keyboard.press("ArrowRight")
        page.wait_for_function(SUMMARY_JS, arg=want, polling="raf", timeout=TIMEOUT_MS)
        page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
        t = time.perf_counter()
        page.locator(PANEL).scroll_into_view_if_needed()
        page.wait_for_function(PANEL_JS, arg=want, polling="raf", timeout=TIMEOUT_MS)
        figures["catch_up_ms"] = 1000 * (time.perf_counter() - t)
        return figures


def main() -> int:
    return browser_bench_main("python -m bench.follow", __doc__, measure)


if __name__ == "__main__":
    raise SystemExit(main())
