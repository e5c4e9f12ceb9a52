"""Time the explorer app as it really runs: cold start, slider reruns, uploads, t-SNE placement.

    python -m explorer.bench [--models DIR] [--repeats N] [--quick] [--profile]

Prints one line per figure, `name=value (target <= T) PASS|MISS`, plus `# ` info lines:

1. cold start to first full render, from a fresh Python process (imports included):
   `cold_start_apptest_s` (AppTest.from_file(...).run() in a subprocess), `cold_start_server_health_s`
   (`streamlit run` until /_stcore/health answers ok; the script has not run yet then) and, when
   playwright and /usr/bin/chromium exist, `cold_start_browser_render_s` (server start until the 8
   sliders and the decoded image are shown in headless Chromium; the browser is launched first and
   not counted).
2. warm slider change: `slider_rerun_apptest_ms` (AppTest reruns the whole script on a widget
   change, it has no fragment reruns), `fragment_rerun_apptest_ms` (AppTest of a script that runs
   only the app's real `sliders_ui` fragment: body work + Streamlit elements + AppTest overhead),
   `fragment_body_{pca,tsne}_ms` (decode + upscale + place + locator_image called directly).
   Direct timings run in a fresh thread, as Streamlit runs scripts.
3. upload to result: `upload_direct_*_ms` (the work of `analyse_upload`) and `upload_apptest_*_ms`
   (file_uploader set_value + run with the st.cache_data cache cleared, so nothing is cached).
4. `tsne_place_ms`: projection.place(z, atlas, "t-SNE") over many random codes.

Medians throughout. `--quick` skips the subprocess/server/browser parts (1); `--profile` adds a
cProfile of the first script run in a fresh process (what the cold start spends its time on).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import logging
import math
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from explorer import bundle, codes, figures, projection
from explorer.preprocess import prepare_digit

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "streamlit_app.py"
ASSETS = REPO / "tests" / "assets"
UPLOADS = (("photo", "digit_photo.jpg", "image/jpeg"), ("clean", "digit_clean.png", "image/png"))
NEIGHBOURS = 8  # streamlit_app.NEIGHBOURS (the app module runs itself on import, so it is not imported)
APPTEST_TIMEOUT = 180.0  # seconds; the first run imports torch, slow on a loaded machine
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

TARGET_COLD_S = 3.0
TARGET_SLIDER_MS = 30.0
TARGET_UPLOAD_MS = 200.0
TARGET_PLACE_MS = 50.0


@dataclass(frozen=True)
class Figure:
    """One benchmark figure and its target (value <= target passes)."""

    name: str
    value: float
    target: float

    def line(self) -> str:
        verdict = "PASS" if self.value <= self.target else "MISS"
        return f"{self.name}={self.value:.{_digits(self.name)}f} (target <= {self.target:g}) {verdict}"


def _digits(name: str) -> int:
    return 2 if name.endswith("_s") else 1 if name.endswith("_ms") else 3


def _median_seconds(fn: Callable[[int], None], repeats: int) -> float:
    """Median wall time of fn(i) over `repeats` calls, in seconds."""
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def in_script_thread(fn: Callable[[], float]) -> float:
    """fn() run in a fresh thread, as Streamlit runs each script run (a new ScriptRunner thread).

    It matters: on a loaded machine torch's OpenMP pool made codes.elbo_split 4-30x slower in the
    main thread than in a fresh one (see the `# elbo_split` info line)."""
    out: list[float] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(e)

    th = threading.Thread(target=target, name="bench-script-thread")
    th.start()
    th.join()
    if errors:
        raise errors[0]
    return out[0]


def _drop_context_warning(record: logging.LogRecord) -> bool:
    return "missing ScriptRunContext" not in record.getMessage()


def _env(models: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, bundle.MODELS_DIR_ENV: str(models), "PYTHONPATH": path}


def load_first_model(models: Path) -> bundle.ExplorerModel:
    """The checkpoint the app opens first in `models` (default.pt first), with its atlas."""
    paths = bundle.list_checkpoints(models)
    if not paths:
        raise SystemExit(f"no checkpoint in {models}")
    return bundle.load_explorer_model(paths[0])


# --- 1. cold start ---------------------------------------------------------------------------

_COLD_CHILD = """
import json, time
t_start = time.time()
from streamlit.testing.v1 import AppTest
t_imported = time.time()
at = AppTest.from_file({app!r}, default_timeout={timeout!r})
at.run()
t_end = time.time()
problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
if len(at.slider) != 8:
    problems.append(f"{{len(at.slider)}} sliders, expected 8")
print(json.dumps({{"start": t_start, "imported": t_imported, "end": t_end, "problems": problems}}))
"""


def cold_start_apptest_breakdown(models: Path) -> dict[str, float]:
    """Fresh `python -c` running AppTest.from_file(app).run(): seconds from spawning the process to
    the end of that first run (`total`), split into `python_start` (to the child's first line),
    `import_streamlit` (streamlit.testing) and `first_run` (the script: its imports, model, page)."""
    code = _COLD_CHILD.format(app=str(APP), timeout=APPTEST_TIMEOUT)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(models), capture_output=True,
                          text=True, timeout=APPTEST_TIMEOUT + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"AppTest child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if r["problems"]:
        raise RuntimeError(f"the app did not render cleanly: {r['problems']}")
    return {"total": r["end"] - t0, "python_start": r["start"] - t0,
            "import_streamlit": r["imported"] - r["start"], "first_run": r["end"] - r["imported"]}


def cold_start_apptest(models: Path) -> float:
    """Seconds from spawning a fresh Python process to the end of its first AppTest run."""
    return cold_start_apptest_breakdown(models)["total"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


def _start_server(models: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    return subprocess.Popen(cmd, cwd=REPO, env=_env(models), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_health(proc: subprocess.Popen, port: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not _health_ok(port):
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit server exited with {proc.returncode}")
        if time.perf_counter() > deadline:
            raise TimeoutError("streamlit server not healthy in time")
        time.sleep(0.01)


def cold_start_server(models: Path, timeout: float = 60.0) -> float:
    """Seconds from spawning `python -m streamlit run streamlit_app.py` until /_stcore/health is ok.
    The server runs the script only when a browser connects, so this excludes the first run."""
    port = free_port()
    t0 = time.perf_counter()
    proc = _start_server(models, port)
    try:
        _wait_health(proc, port, timeout)
        return time.perf_counter() - t0
    finally:
        _stop(proc)


_RENDERED_JS = """() => {
  if (document.querySelectorAll('[data-testid="stSlider"]').length < 8) return false;
  for (const box of document.querySelectorAll('[data-testid="stImage"]')) {
    const img = box.querySelector('img');
    if (box.innerText.includes('decoded pixel means') && img && img.complete && img.naturalWidth > 0) return true;
  }
  return false;
}"""


def browser_available() -> bool:
    """True when python playwright is importable and /usr/bin/chromium exists."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return CHROMIUM.exists()


def cold_start_browser(models: Path, timeout: float = 120.0) -> dict[str, float]:
    """A real server and headless Chromium (launched beforehand, not counted): seconds from spawning
    the server to health ok (`health`), and to the 8 sliders and the decoded image being shown
    (`render`)."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            proc = _start_server(models, port)
            try:
                _wait_health(proc, port, timeout)
                health = time.perf_counter() - t0
                page.goto(f"http://127.0.0.1:{port}/", timeout=timeout * 1000)
                page.wait_for_function(_RENDERED_JS, polling=20, timeout=timeout * 1000)
                return {"health": health, "render": time.perf_counter() - t0}
            finally:
                _stop(proc)
        finally:
            browser.close()


_PROFILE_CHILD = """
import cProfile, runpy, sys
from streamlit.testing.v1 import AppTest
wrapper = '''
import cProfile, runpy, sys
sys.path.insert(0, {repo!r})
pr = cProfile.Profile()
pr.enable()
runpy.run_path({app!r}, run_name="__main__")
pr.disable()
pr.dump_stats({out!r})
'''
at = AppTest.from_string(wrapper, default_timeout={timeout!r})
at.run()
assert not at.exception, at.exception
"""


def profile_first_run(models: Path, top: int = 25) -> str:
    """cProfile (cumulative) of the first script run in a fresh process, repo and big-import rows only."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "first_run.prof")
        code = _PROFILE_CHILD.format(repo=str(REPO), app=str(APP), out=out, timeout=APPTEST_TIMEOUT)
        subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(models), check=True,
                       capture_output=True, timeout=APPTEST_TIMEOUT + 60)
        buf = io.StringIO()
        stats = pstats.Stats(out, stream=buf)
        stats.sort_stats("cumulative").print_stats(
            r"streamlit_app|explorer/|training/|torch/__init__|scipy/ndimage/__init__|emojis|plotly_chart|serialization.py:\d+\(load\)",
            top)
    return buf.getvalue()


# --- 2. warm slider change -------------------------------------------------------------------

def _apptest(source_file: Path | None = None, source: str | None = None):
    from streamlit.testing.v1 import AppTest

    if source is not None:
        return AppTest.from_string(source, default_timeout=APPTEST_TIMEOUT)
    return AppTest.from_file(str(source_file or APP), default_timeout=APPTEST_TIMEOUT)


def _run_clean(at) -> None:
    at.run()
    if at.exception:
        raise RuntimeError(f"app raised: {[e.value for e in at.exception]}")


def _slider_values(repeats: int, seed: int = 0) -> list[float]:
    """Slider positions in the app's 0.05 grid, each different from the one before."""
    rng = np.random.default_rng(seed)
    values: list[float] = []
    while len(values) < repeats:
        v = round(float(rng.integers(-60, 61)) * 0.05, 2)
        if not values or v != values[-1]:
            values.append(v)
    return values


def _warm_slider_rerun(at, repeats: int, warmup: int = 2) -> float:
    """Median seconds of at.run() after setting slider z0 to a new value; `at` has run once."""
    values = _slider_values(repeats + warmup)

    def move(i: int) -> None:
        at.slider(key="z0").set_value(values[i])
        _run_clean(at)

    for i in range(warmup):
        move(i)
    return _median_seconds(lambda i: move(warmup + i), repeats)


def slider_rerun_apptest(repeats: int) -> float:
    """Whole app in AppTest (models from $VAE_EXPLORER_MODELS): median seconds of the rerun after one
    slider change, warmed up. AppTest reruns the whole script, not just the fragment."""
    at = _apptest()
    _run_clean(at)
    return _warm_slider_rerun(at, repeats)


def fragment_only_source(app: Path = APP, projection_name: str = "PCA") -> str:
    """The app's source with its top-level `main()` call replaced by a driver that loads the first
    model (cached) and calls only the real `sliders_ui` fragment."""
    text = app.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    head = []
    for node in tree.body:
        is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        is_main_call = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                        and isinstance(node.value.func, ast.Name) and node.value.func.id == "main")
        if is_future or is_main_call:
            if is_future:
                head.extend(lines[node.lineno - 1: node.end_lineno or node.lineno])
            for ln in range(node.lineno - 1, node.end_lineno or node.lineno):
                lines[ln] = ""
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    missing = {"load_model", "sliders_ui"} - names
    if missing:
        raise RuntimeError(f"{app.name} no longer defines {sorted(missing)}: update explorer.bench")
    driver = f"""
_p = bundle.list_checkpoints(bundle.models_dir())[0]
_m = load_model(str(_p), _p.stat().st_mtime_ns)
state.init_sliders(st.session_state, _m.latent_dim)
st.session_state.setdefault("projection", {projection_name!r})
sliders_ui(_m)
"""
    path_fix = f"import sys\nsys.path.insert(0, {str(REPO)!r})"
    return "\n".join([*head, path_fix, *lines, driver])


def fragment_rerun_apptest(repeats: int) -> float:
    """Median seconds of an AppTest rerun, after one slider change, of a script that runs only the
    app's `sliders_ui` fragment (PCA map): the fragment body plus its Streamlit elements."""
    at = _apptest(source=fragment_only_source())
    _run_clean(at)
    return _warm_slider_rerun(at, repeats)


def apptest_overhead(repeats: int) -> float:
    """Median seconds of an AppTest rerun of a one-slider script: the harness's own cost per run."""
    at = _apptest(source="import streamlit as st\nst.slider('a', -4.0, 4.0, key='z0')\n")
    _run_clean(at)
    return _warm_slider_rerun(at, repeats)


def random_codes(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """n codes [n, dim] on the sliders' 0.05 grid within +-SLIDER_LIMIT, float32."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-codes.SLIDER_LIMIT, codes.SLIDER_LIMIT, (n, dim))
    return (np.round(z / 0.05) * 0.05).astype(np.float32)


def fragment_body(m: bundle.ExplorerModel, projection_name: str, repeats: int) -> float:
    """Median seconds of the computations `sliders_ui` does per slider move, called directly:
    decode + upscale, place on the map, locator image (no Streamlit)."""
    z = random_codes(repeats + 1, m.latent_dim, seed=1)
    coords = projection.map_coords(m.atlas, projection_name)
    labels = m.atlas["labels"]

    def body(i: int) -> None:
        figures.upscale(codes.decode(m.model, z[i]), 8)
        xy = projection.place(z[i], m.atlas, projection_name)
        figures.locator_image(coords, labels, xy)

    def timed() -> float:
        body(repeats)  # warm-up (first torch call in this thread)
        return _median_seconds(body, repeats)

    return in_script_thread(timed)


# --- 3. upload to result ---------------------------------------------------------------------

def analyse_upload_work(m: bundle.ExplorerModel, data: bytes) -> dict:
    """What streamlit_app.analyse_upload computes, without its cache."""
    image = prepare_digit(data)
    mu, sigma = codes.encode(m.model, image)
    idx, _ = projection.nearest(mu, m.atlas["mu"], NEIGHBOURS)
    return {"image": image, "mu": mu, "sigma": sigma, "recon": codes.decode(m.model, mu),
            "elbo": codes.elbo_split(m.model, image), "neighbours": idx}


def upload_direct(m: bundle.ExplorerModel, data: bytes, repeats: int) -> float:
    """Median seconds from image bytes to the upload result (prepare + encode + decode + ELBO + kNN)."""
    def timed() -> float:
        analyse_upload_work(m, data)  # warm-up
        return _median_seconds(lambda i: analyse_upload_work(m, data), repeats)

    return in_script_thread(timed)


def upload_apptest(name: str, data: bytes, mime: str, repeats: int) -> float:
    """Whole app in AppTest, warmed up: median seconds of the run after a file upload, with the
    st.cache_data cache cleared before each run so analyse_upload really computes."""
    import streamlit as st

    at = _apptest()
    _run_clean(at)
    at.file_uploader(key="upload").set_value((name, data, mime))

    quiet = logging.getLogger("streamlit.runtime.caching.cache_data_api")  # "No runtime found" on clear()

    def run(i: int) -> None:
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            st.cache_data.clear()
        finally:
            quiet.setLevel(level)
        _run_clean(at)
        if at.error:
            raise RuntimeError(f"upload of {name} failed: {[e.value for e in at.error]}")
        if not any("reconstruction from mu" in img.captions for img in at.image):
            raise RuntimeError(f"upload of {name} shows no reconstruction")

    run(-1)  # warm-up: first upload rendering (posterior figure, grids)
    return _median_seconds(run, repeats)


# --- 4. t-SNE placement ----------------------------------------------------------------------

def tsne_place(m: bundle.ExplorerModel, n: int) -> float:
    """Median seconds of projection.place(z, atlas, "t-SNE") over n random codes."""
    z = random_codes(n + 1, m.latent_dim, seed=2)
    def timed() -> float:
        projection.place(z[n], m.atlas, "t-SNE")
        return _median_seconds(lambda i: projection.place(z[i], m.atlas, "t-SNE"), n)

    return in_script_thread(timed)


def elbo_split_main_vs_thread(m: bundle.ExplorerModel, repeats: int) -> tuple[float, float]:
    """Median seconds of codes.elbo_split (64 decodes) in the calling thread and in a fresh thread."""
    image = np.zeros((28, 28), np.float32)
    image[8:20, 12:16] = 1.0

    def timed() -> float:
        codes.elbo_split(m.model, image)
        return _median_seconds(lambda i: codes.elbo_split(m.model, image), repeats)

    return timed(), in_script_thread(timed)


# --- main ------------------------------------------------------------------------------------

def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m explorer.bench", description=__doc__.split("\n\n")[0])
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run every benchmark and print one `name=value (target <= T) PASS|MISS` line per figure."""
    args = _parse(argv)
    models = (args.models or bundle.models_dir()).resolve()
    os.environ[bundle.MODELS_DIR_ENV] = str(models)  # for the in-process AppTests
    # AppTest touches st.session_state from the main thread: a harmless warning per AppTest
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_drop_context_warning)
    n = args.repeats
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# models={models} repeats={n} cpus={os.cpu_count()} loadavg1={load:.2f}", flush=True)

    def show(fig: Figure) -> None:
        if not math.isfinite(fig.value):
            raise RuntimeError(f"{fig.name} is not finite")
        print(fig.line(), flush=True)

    if not args.quick:
        cold = [cold_start_apptest_breakdown(models) for _ in range(args.cold_repeats)]
        show(Figure("cold_start_apptest_s", statistics.median(c["total"] for c in cold), TARGET_COLD_S))
        c = cold[0]
        print(f"#   python_start={c['python_start']:.2f}s import_streamlit={c['import_streamlit']:.2f}s "
              f"first_script_run={c['first_run']:.2f}s", flush=True)
        health = [cold_start_server(models) for _ in range(args.cold_repeats)]
        show(Figure("cold_start_server_health_s", statistics.median(health), TARGET_COLD_S))
        if args.no_browser or not browser_available():
            print("# cold_start_browser_render_s skipped (no playwright/chromium or --no-browser)", flush=True)
        else:
            br = [cold_start_browser(models) for _ in range(args.cold_repeats)]
            show(Figure("cold_start_browser_render_s", statistics.median(b["render"] for b in br), TARGET_COLD_S))
            print(f"#   of which server health={br[0]['health']:.2f}s, page+first script run+paint="
                  f"{br[0]['render'] - br[0]['health']:.2f}s", flush=True)

    m = load_first_model(models)
    overhead = apptest_overhead(n)
    show(Figure("slider_rerun_apptest_ms", _ms(slider_rerun_apptest(n)), TARGET_SLIDER_MS))
    frag = fragment_rerun_apptest(n)
    show(Figure("fragment_rerun_apptest_ms", _ms(frag), TARGET_SLIDER_MS))
    body_pca = fragment_body(m, "PCA", n)
    show(Figure("fragment_body_pca_ms", _ms(body_pca), TARGET_SLIDER_MS))
    show(Figure("fragment_body_tsne_ms", _ms(fragment_body(m, "t-SNE", n)), TARGET_SLIDER_MS))
    print(f"#   AppTest harness per run={_ms(overhead):.1f}ms; so Streamlit elements of the fragment ~"
          f"{_ms(frag - overhead - body_pca):.1f}ms", flush=True)

    for label, filename, mime in UPLOADS:
        data = (ASSETS / filename).read_bytes()
        show(Figure(f"upload_direct_{label}_ms", _ms(upload_direct(m, data, n)), TARGET_UPLOAD_MS))
        show(Figure(f"upload_apptest_{label}_ms", _ms(upload_apptest(filename, data, mime, n)), TARGET_UPLOAD_MS))

    show(Figure("tsne_place_ms", _ms(tsne_place(m, max(100, 10 * n))), TARGET_PLACE_MS))
    main_s, thread_s = elbo_split_main_vs_thread(m, n)
    print(f"# elbo_split (part of every upload): main thread {_ms(main_s):.1f}ms, fresh thread "
          f"{_ms(thread_s):.1f}ms (direct timings above run in a fresh thread, like Streamlit)", flush=True)

    if args.profile:
        print("# cProfile of the first script run in a fresh process (cumulative s):")
        for row in profile_first_run(models).splitlines():
            print(f"#   {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
