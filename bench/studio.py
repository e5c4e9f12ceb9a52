"""The live studio in a real browser: what a learner feels while dragging, measured in headless Chromium.

`measure(models)` starts the app on `models` and a headless Chromium, opens the page in a fresh
browser context and returns (all from the browser, nothing simulated):

* `first_frame_s`: navigation to the studio's first decoded digit (the page's performance clock),
  with the server already warm (its model cache filled by an earlier page); `connected_s` is the
  part Streamlit's own frontend takes to load and connect;
* `drag_decodes_per_s`, `drag_strip_updates_per_s`: once the page has drawn the map and gone quiet,
  a mouse drag of z0 (down, 60 moves of one slider step or more, as fast
  as Playwright sends them, up): the studio's decode and strip counters over the drag's duration;
  `decode_median_ms` / `decode_p95_ms` / `strip_median_ms`: the studio's own timings of them;
  `sent_while_dragging`: websocket frames the page sent with the button down (should be 0);
* `frame_paced_decodes_per_s`, `frame_paced_strip_updates_per_s`: the page's own limit, which a
  driven mouse cannot reach (Playwright delivers one move per round trip): z0 gets a new value and
  an `input` event at every animation frame for 180 frames (Chromium paints at most 60 frames/s);
* `release_to_page_ms`: median over 10 releases (arrow key on z1: one input and one change each)
  of the time until the server's summary line shows the new code; `ws_bytes_per_release`: the
  websocket bytes the page received over those 10 releases, divided by 10; `payload_bytes`: the
  largest frame of the page load (the model payload, sent once).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.harness import CHROMIUM_ARGS, CONNECTED, SCRIPT_IDLE_JS, AppServer, browser_bench_main, chromium_path

TIMEOUT_MS = 120_000
DRAG_MOVES = 60  # 2.2 px each on the 1440-px-wide page: every move is a new slider value
RELEASES = 10
STATS_JS = "() => { const s = globalThis.__vaeStudio.stats; return {decodes: s.decodes, strips: s.stripUpdates, " \
           "decodeMs: s.decodeMs.slice(), stripMs: s.stripMs.slice(), firstFrame: s.firstFrame}; }"
MAP_DRAWN = "[data-testid='stPlotlyChart'] .js-plotly-plot .main-svg"
# Resolves once the main thread has been free for 30 animation frames in a row (each within 25 ms of
# the last): the page a learner sees has finished drawing (the map's WebGL draw lands after the
# studio's first frame and would otherwise share the drag's main thread).
SETTLED_JS = """() => new Promise(done => {
  let last = performance.now(), calm = 0;
  const frame = now => { calm = now - last < 25 ? calm + 1 : 0; last = now;
                         calm >= 30 ? done(true) : requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
})"""
SUMMARY_JS = """v => [...document.querySelectorAll("[data-testid='stCaptionContainer']")]
  .some(e => e.innerText.startsWith('Code from') && e.innerText.includes(v))"""


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _open(context, url: str):  # noqa: ANN001, ANN202
    page = context.new_page()
    page.sent, page.received = [], []
    page.on("websocket", lambda ws: (ws.on("framesent", lambda _: page.sent.append(time.perf_counter())),
                                     ws.on("framereceived", lambda f: page.received.append((time.perf_counter(), len(f))))))
    t0 = time.perf_counter()
    page.goto(url, timeout=TIMEOUT_MS)
    page.wait_for_selector(CONNECTED, timeout=TIMEOUT_MS, state="attached")
    page.connected_s = time.perf_counter() - t0
    page.wait_for_function("() => globalThis.__vaeStudio?.stats?.firstFrame != null", timeout=TIMEOUT_MS)
    page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
    return page


def _settle(page) -> None:  # noqa: ANN001
    """Wait for the deferred map and for the page to finish drawing it, as a learner would before dragging."""
    page.wait_for_selector(MAP_DRAWN, timeout=TIMEOUT_MS, state="attached")
    page.evaluate(SETTLED_JS)


def _drag(page) -> dict[str, float]:  # noqa: ANN001
    box = page.locator("input[type='range'][aria-label='z0']").bounding_box()
    x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x0, y)
    before = page.evaluate(STATS_JS)
    t0 = time.perf_counter()
    page.mouse.down()
    page.mouse.move(x0 + 0.45 * box["width"], y, steps=DRAG_MOVES)  # to about +3.6
    t1 = time.perf_counter()
    after = page.evaluate(STATS_JS)
    sent = sum(1 for t in page.sent if t0 <= t <= t1)
    page.mouse.up()
    seconds = t1 - t0
    decode_ms = after["decodeMs"][len(before["decodeMs"]):]
    strip_ms = after["stripMs"][len(before["stripMs"]):]
    return {"drag_s": seconds,
            "drag_decodes_per_s": (after["decodes"] - before["decodes"]) / seconds,
            "drag_strip_updates_per_s": (after["strips"] - before["strips"]) / seconds,
            "decode_median_ms": statistics.median(decode_ms), "decode_p95_ms": _quantile(decode_ms, 0.95),
            "strip_median_ms": statistics.median(strip_ms) if strip_ms else float("nan"),
            "sent_while_dragging": float(sent)}


FRAME_PACED_JS = """n => new Promise(done => {
  const root = [...document.querySelectorAll('*')].map(e => e.shadowRoot).find(r => r?.querySelector("input[aria-label='z0']"));
  const input = root.querySelector("input[aria-label='z0']"), stats = globalThis.__vaeStudio.stats;
  const d0 = stats.decodes, s0 = stats.stripUpdates, t0 = performance.now();
  let i = 0;
  const frame = () => {
    input.value = String(-3 + (i % 120) * 0.05);
    input.dispatchEvent(new Event('input'));
    if (++i < n) return requestAnimationFrame(frame);
    const s = (performance.now() - t0) / 1000;
    done({decodes: (stats.decodes - d0) / s, strips: (stats.stripUpdates - s0) / s});
  };
  requestAnimationFrame(frame);
})"""


def _frame_paced(page, frames: int = 180) -> dict[str, float]:  # noqa: ANN001
    r = page.evaluate(FRAME_PACED_JS, frames)
    return {"frame_paced_decodes_per_s": r["decodes"], "frame_paced_strip_updates_per_s": r["strips"]}


def _releases(page) -> dict[str, float]:  # noqa: ANN001
    page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
    z1 = page.locator("input[type='range'][aria-label='z1']")
    z1.focus()
    start = time.perf_counter()
    times = []
    for _ in range(RELEASES):
        value = float(z1.input_value())
        page.keyboard.press("ArrowRight")
        t = time.perf_counter()
        page.wait_for_function(SUMMARY_JS, arg=f"{value + 0.05:+.2f}", polling="raf", timeout=TIMEOUT_MS)
        times.append(time.perf_counter() - t)
        page.wait_for_function(SCRIPT_IDLE_JS, timeout=TIMEOUT_MS)
    received = sum(n for t, n in page.received if t >= start)
    return {"release_to_page_ms": 1000 * statistics.median(times), "ws_bytes_per_release": received / RELEASES}


@contextlib.contextmanager
def studio_page(models: Path, timeout: float = 120.0, path: str = "/", height: int = 1000) -> Iterator:
    """A fresh page of the app at `path` on a new server over `models`, in headless Chromium at 1440 x
    `height`; the page was opened once before in a throwaway context, so the server's caches (models,
    payloads, the map figure) are warm while the browser's are empty. Server and browser stop on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        server = AppServer(models, Path(tmp) / "server.log").start(timeout)
        try:
            viewport = {"width": 1440, "height": height}
            warm = browser.new_context(viewport=viewport)
            _open(warm, server.url + path).close()
            warm.close()
            context = browser.new_context(viewport=viewport)  # nothing cached in the browser
            try:
                yield _open(context, server.url + path)
            finally:
                context.close()
        finally:
            server.stop()
            browser.close()


def measure(models: Path, timeout: float = 120.0) -> dict[str, float]:
    """Every figure in the module docstring, from one server and one browser over `models`."""
    with studio_page(models, timeout) as page:
        first = page.evaluate("() => globalThis.__vaeStudio.stats.firstFrame")  # ms since navigation
        figures = {"first_frame_s": first / 1000, "connected_s": page.connected_s,
                   "payload_bytes": float(max(n for _, n in page.received))}
        _settle(page)
        figures.update(_drag(page))
        figures.update(_frame_paced(page))
        figures.update(_releases(page))
        return figures


def main() -> int:
    return browser_bench_main("python -m bench.studio", __doc__, measure)


if __name__ == "__main__":
    raise SystemExit(main())
