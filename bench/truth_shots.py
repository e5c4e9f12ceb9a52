"""Screenshots of the explorer's first screen and its map at 1440x900 and 390x844 (touch), in Chromium.

    python -m bench.truth_shots --root . --out docs/truth_after            # this tree
    python -m bench.truth_shots --root /path/to/old/checkout --out before  # another tree (its app, its models/)

Writes OUT-1440.png, OUT-1440-map.png, OUT-390.png and OUT-390-map.png. The app is served from ROOT
(its bench.harness and its models/), so the same command takes "before" and "after" pictures.
Screenshots only: after the page is idle it waits a moment for plotly's transitions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MAP_READY = """() => { const el = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  return !!(el && el._fullData && el._fullData.length >= 10); }"""
VIEWS = (("1440", {"viewport": {"width": 1440, "height": 900}}),
         ("390", {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}))


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.truth_shots", description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="the tree whose app is served")
    ap.add_argument("--out", required=True, help="file prefix of the screenshots")
    args = ap.parse_args()
    root = args.root.resolve()
    sys.path.insert(0, str(root))
    from playwright.sync_api import sync_playwright

    from bench.harness import CHROMIUM_ARGS, CONNECTED, SCRIPT_IDLE_JS, AppServer, chromium_path

    server = AppServer(root / "models", Path(args.out + "-server.log")).start(120)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            for name, options in VIEWS:
                context = browser.new_context(**options)
                page = context.new_page()
                page.goto(server.url, timeout=120_000)
                page.wait_for_selector(CONNECTED, timeout=120_000)
                page.wait_for_function("() => globalThis.__vaeStudio?.stats?.firstFrame != null", timeout=120_000)
                page.wait_for_function(MAP_READY, timeout=120_000)
                page.wait_for_function(SCRIPT_IDLE_JS, timeout=120_000)
                page.wait_for_timeout(1500)  # screenshots only: plotly's transitions
                page.screenshot(path=f"{args.out}-{name}.png")
                page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
                page.wait_for_timeout(800)
                page.screenshot(path=f"{args.out}-{name}-map.png")
                context.close()
            browser.close()
    finally:
        server.stop()
        Path(args.out + "-server.log").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
