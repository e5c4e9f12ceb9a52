"""Every member of a family decoded live: the studio's family canvases measured in headless Chromium.

`python -m bench.family [--models DIR] [--model beta/beta-8]` starts the app on DIR (default: the
app's models folder), opens the explorer on a model of a family folder (default beta/beta-8: six
members) in a fresh browser context, waits until every member's decoder has arrived and the page is
quiet, and prints (all from the browser's own counters, nothing simulated):

* `members`: the family canvases shown; `payload_bytes`: the sum of the page load's websocket
  frames over 100 kB: the open model's payload and each other member's decoder, each sent once;
* `drag_member_decodes_per_s`: during a real mouse drag of z0 (60 moves as fast as Playwright sends
  them, `drag_s`), decodes per second of each member's canvas; `drag_member_decodes_per_move`: 1.0
  when every move redrew every member (the rate is then Playwright's, not the page's limit);
  `sent_while_dragging`: websocket frames the page sent with the button down (0: no server message
  during a drag);
* `frame_paced_member_decodes_per_s`: z0 gets a new value and an `input` event at every animation
  frame for 180 frames (Chromium paints at most 60 frames per second): the page's own rate per member;
* `unpaced_member_decodes_per_s`: 300 `input` events back to back on the main thread (no painting
  between them): what the decoders could do per member if the screen allowed it;
* `family_ms_median` / `family_ms_p95`: the time to decode the code with all members, per input;
* `release_to_page_ms`, `ws_bytes_per_release`: as bench.studio, on this page (10 arrow-key releases).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from urllib.parse import quote

from bench.harness import browser_bench_main
from bench.studio import TIMEOUT_MS, _quantile, _releases, _settle, studio_page

DRAG_MOVES = 60
MEMBERS = "canvas[aria-label^='decoded by ']"
FAMILY_JS = "() => { const s = globalThis.__vaeStudio.stats; return {decodes: s.familyDecodes, ms: s.familyMs.slice()}; }"
READY_JS = """n => { const root = [...document.querySelectorAll('*')].map(e => e.shadowRoot).find(r => r?.querySelector('div.studio'));
  return !!root && root.querySelectorAll("canvas[aria-label^='decoded by '][data-frames]").length === n; }"""
INPUTS_JS = """([n, paced]) => new Promise(done => {
  const root = [...document.querySelectorAll('*')].map(e => e.shadowRoot).find(r => r?.querySelector("input[aria-label='z0']"));
  const input = root.querySelector("input[aria-label='z0']"), stats = globalThis.__vaeStudio.stats;
  const d0 = stats.familyDecodes, t0 = performance.now();
  let i = 0;
  const step = () => { input.value = String(-3 + (i % 120) * 0.05); input.dispatchEvent(new Event('input')); i++; };
  const finish = () => done({decodes: stats.familyDecodes - d0, seconds: (performance.now() - t0) / 1000});
  if (!paced) { while (i < n) step(); return finish(); }
  const frame = () => { step(); if (i < n) requestAnimationFrame(frame); else finish(); };
  requestAnimationFrame(frame);
})"""


def _drag(page, members: int) -> dict[str, float]:  # noqa: ANN001
    box = page.locator("input[type='range'][aria-label='z0']").bounding_box()
    x0, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x0, y)
    before = page.evaluate(FAMILY_JS)
    t0 = time.perf_counter()
    page.mouse.down()
    page.mouse.move(x0 + 0.45 * box["width"], y, steps=DRAG_MOVES)
    t1 = time.perf_counter()
    after = page.evaluate(FAMILY_JS)
    sent = sum(1 for t in page.sent if t0 <= t <= t1)
    page.mouse.up()
    ms = after["ms"][len(before["ms"]):]
    decodes = (after["decodes"] - before["decodes"]) / members
    return {"drag_s": t1 - t0, "drag_member_decodes_per_move": decodes / DRAG_MOVES,
            "drag_member_decodes_per_s": decodes / (t1 - t0),
            "sent_while_dragging": float(sent),
            "family_ms_median": statistics.median(ms), "family_ms_p95": _quantile(ms, 0.95)}


def _inputs(page, members: int, n: int, paced: bool) -> float:  # noqa: ANN001
    r = page.evaluate(INPUTS_JS, [n, paced])
    return r["decodes"] / members / r["seconds"]


def measure(models: Path, model: str = "beta/beta-8", timeout: float = 120.0) -> dict[str, float]:
    """Every figure in the module docstring, from one server and one browser over `models`."""
    with studio_page(models, timeout, path=f"/?model={quote(model, safe='')}") as page:
        members = page.locator(MEMBERS).count()
        if members == 0:
            raise RuntimeError(f"{model} shows no family canvases: is it in a family folder?")
        page.wait_for_function(READY_JS, arg=members, timeout=TIMEOUT_MS)
        _settle(page)
        figures = {"members": float(members),
                   "payload_bytes": float(sum(n for _, n in page.received if n > 100_000))}
        figures.update(_drag(page, members))
        figures["frame_paced_member_decodes_per_s"] = _inputs(page, members, 180, paced=True)
        figures["unpaced_member_decodes_per_s"] = _inputs(page, members, 300, paced=False)
        figures.update(_releases(page))
        return figures


def main() -> int:
    return browser_bench_main("python -m bench.family", __doc__, measure, model="beta/beta-8")


if __name__ == "__main__":
    raise SystemExit(main())
