"""Time the explorer app as it really runs: `python -m bench [--models DIR] [--repeats N] [--quick] [--profile]`.

Prints one line per figure, `name=value (target <= T) PASS|MISS`, plus `# ` info lines:
1. cold start (bench.cold_start): `cold_start_apptest_s` (a fresh process to the end of its first
   AppTest run), `cold_start_server_health_s` (`streamlit run` until /_stcore/health is ok) and, with
   playwright and chromium, `cold_start_browser_render_s` (server start until the studio has drawn its
   first decoded digit in headless Chromium; the browser is launched first and not counted).
2. a slider release (bench.reruns): `release_rerun_apptest_ms` (AppTest reruns the whole script),
   `fragment_rerun_apptest_ms` (only the app's real `code_ui` fragment), `fragment_body_ms`
   (its computations called directly), `tsne_place_ms` (placing a code on the t-SNE map).
3. an upload (bench.uploads): `upload_direct_*_ms` (the analysis) and `upload_apptest_*_ms` (the
   whole app after a file_uploader set_value, with the cache cleared).
4. the live studio (bench.studio, with the browser): `studio_first_frame_s` (a new page on a warm
   server to the first digit decoded in the browser), `drag_decodes_per_s` and
   `drag_strip_updates_per_s` (a real mouse drag), `frame_paced_*` (an input at every frame: the
   page's own limit), `release_to_page_ms`, `ws_bytes_per_release` (over 10 releases).
Medians throughout. `--quick` skips the subprocess/server/browser parts (1 and 4).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Sequence

from bench import cold_start, reruns, studio, uploads
from bench.timing import Figure, drop_context_warning, load_first_model
from explorer import bundle

TARGET_COLD_S = 3.0
TARGET_FIRST_FRAME_S = 2.0
TARGET_DECODES_PER_S = 60.0
TARGET_STRIPS_PER_S = 15.0
TARGET_RELEASE_TO_PAGE_MS = 300.0
TARGET_WS_BYTES_PER_RELEASE = 10_000.0
TARGET_RELEASE_MS = 30.0
TARGET_UPLOAD_MS = 200.0
TARGET_PLACE_MS = 50.0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=None,
                    help=f"models folder (sets ${bundle.MODELS_DIR_ENV}); default: explorer.bundle.models_dir()")
    ap.add_argument("--repeats", type=int, default=20, help="repeats per median (default 20)")
    ap.add_argument("--cold-repeats", type=int, default=1, help="cold starts per method (median; default 1)")
    ap.add_argument("--quick", action="store_true", help="skip the subprocess, server and browser cold starts")
    ap.add_argument("--no-browser", action="store_true", help="skip the headless-Chromium render")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of the first script run")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.cold_repeats < 1:
        ap.error("--repeats and --cold-repeats must be >= 1")
    return args


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _studio_figures(models: Path, show) -> None:  # noqa: ANN001
    """The live studio in headless Chromium (bench.studio): first frame, drag, releases."""
    f = studio.measure(models)
    show(Figure("studio_first_frame_s", f["first_frame_s"], TARGET_FIRST_FRAME_S))
    print(f"#   of which Streamlit's frontend loading and connecting={f['connected_s']:.2f}s; "
          f"model payload {f['payload_bytes'] / 1e6:.2f} MB, sent once", flush=True)
    show(Figure("drag_decodes_per_s", f["drag_decodes_per_s"], TARGET_DECODES_PER_S, at_least=True))
    show(Figure("drag_strip_updates_per_s", f["drag_strip_updates_per_s"], TARGET_STRIPS_PER_S, at_least=True))
    print(f"#   a {f['drag_s']:.2f}s mouse drag, {f['sent_while_dragging']:.0f} websocket frames sent while the button was down; "
          f"decode median {f['decode_median_ms']:.2f}ms p95 {f['decode_p95_ms']:.2f}ms, strips median {f['strip_median_ms']:.1f}ms", flush=True)
    show(Figure("frame_paced_decodes_per_s", f["frame_paced_decodes_per_s"], TARGET_DECODES_PER_S, at_least=True))
    show(Figure("frame_paced_strip_updates_per_s", f["frame_paced_strip_updates_per_s"], TARGET_STRIPS_PER_S, at_least=True))
    show(Figure("release_to_page_ms", f["release_to_page_ms"], TARGET_RELEASE_TO_PAGE_MS))
    show(Figure("ws_bytes_per_release", f["ws_bytes_per_release"], TARGET_WS_BYTES_PER_RELEASE))


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark and print one `name=value (target <= T) PASS|MISS` line per figure."""
    args = _parse(argv)
    models = (args.models or bundle.models_dir()).resolve()
    os.environ[bundle.MODELS_DIR_ENV] = str(models)  # for the in-process AppTests
    # AppTest touches st.session_state from the main thread: a harmless warning per AppTest
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(drop_context_warning)
    n = args.repeats
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# models={models} repeats={n} cpus={os.cpu_count()} loadavg1={load:.2f}", flush=True)

    def show(fig: Figure) -> None:
        if not math.isfinite(fig.value):
            raise RuntimeError(f"{fig.name} is not finite")
        print(fig.line(), flush=True)

    if not args.quick:
        cold = [cold_start.cold_start_apptest_breakdown(models) for _ in range(args.cold_repeats)]
        show(Figure("cold_start_apptest_s", statistics.median(c["total"] for c in cold), TARGET_COLD_S))
        c = cold[0]
        print(f"#   python_start={c['python_start']:.2f}s import_streamlit={c['import_streamlit']:.2f}s "
              f"first_script_run={c['first_run']:.2f}s", flush=True)
        health = [cold_start.cold_start_server(models) for _ in range(args.cold_repeats)]
        show(Figure("cold_start_server_health_s", statistics.median(health), TARGET_COLD_S))
        if args.no_browser or not cold_start.browser_available():
            print("# cold_start_browser_render_s skipped (no playwright/chromium or --no-browser)", flush=True)
        else:
            br = [cold_start.cold_start_browser(models) for _ in range(args.cold_repeats)]
            show(Figure("cold_start_browser_render_s", statistics.median(b["render"] for b in br), TARGET_COLD_S))
            print(f"#   of which server health={br[0]['health']:.2f}s, page+first script run+paint="
                  f"{br[0]['render'] - br[0]['health']:.2f}s", flush=True)
            _studio_figures(models, show)

    m = load_first_model(models)
    overhead = reruns.apptest_overhead(n)
    show(Figure("release_rerun_apptest_ms", _ms(reruns.release_rerun_apptest(n)), TARGET_RELEASE_MS))
    frag = reruns.fragment_rerun_apptest(n)
    show(Figure("fragment_rerun_apptest_ms", _ms(frag), TARGET_RELEASE_MS))
    body = reruns.fragment_body(m, n)
    show(Figure("fragment_body_ms", _ms(body), TARGET_RELEASE_MS))
    print(f"#   AppTest harness per run={_ms(overhead):.1f}ms; so Streamlit elements of the fragment ~"
          f"{_ms(frag - overhead - body):.1f}ms", flush=True)

    for label, filename, mime in uploads.UPLOADS:
        data = (uploads.ASSETS / filename).read_bytes()
        show(Figure(f"upload_direct_{label}_ms", _ms(uploads.upload_direct(m, data, n)), TARGET_UPLOAD_MS))
        show(Figure(f"upload_apptest_{label}_ms", _ms(uploads.upload_apptest(filename, data, mime, n)), TARGET_UPLOAD_MS))

    show(Figure("tsne_place_ms", _ms(reruns.tsne_place(m, max(100, 10 * n))), TARGET_PLACE_MS))
    main_s, thread_s = uploads.elbo_split_main_vs_thread(m, n)
    print(f"# elbo_split (part of every upload): main thread {_ms(main_s):.1f}ms, fresh thread "
          f"{_ms(thread_s):.1f}ms (direct timings above run in a fresh thread, like Streamlit)", flush=True)

    if args.profile:
        print("# cProfile of the first script run in a fresh process (cumulative s):")
        for row in cold_start.profile_first_run(models).splitlines():
            print(f"#   {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
