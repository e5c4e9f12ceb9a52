"""Cold start: from a fresh process to the first full script run, the server's health and the browser's first render."""

from __future__ import annotations

import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import APP, CHROMIUM_ARGS, AppServer, chromium_path
from bench.timing import APPTEST_TIMEOUT
from common.paths import REPO_ROOT as REPO
from explorer import bundle


def _env(models: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, bundle.MODELS_DIR_ENV: str(models), "PYTHONPATH": path}


_COLD_CHILD = """
import json, time
t_start = time.time()
from streamlit.testing.v1 import AppTest
t_imported = time.time()
at = AppTest.from_file({app!r}, default_timeout={timeout!r})
at.run()
t_end = time.time()
problems = [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]
if not any(c.value.startswith("Code from") for c in at.caption):
    problems.append("no summary of the code: the studio's panel did not render")
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


def cold_start_server(models: Path, timeout: float = 60.0) -> float:
    """Seconds from spawning `python -m streamlit run streamlit_app.py` until /_stcore/health is ok.
    The server runs the script only when a browser connects, so this excludes the first run."""
    with tempfile.TemporaryDirectory() as tmp:
        server = AppServer(models, Path(tmp) / "server.log")
        t0 = time.perf_counter()
        try:
            server.start(timeout)
            return time.perf_counter() - t0
        finally:
            server.stop()


# The studio counts its decodes; the first one has drawn the digit (its sliders exist by then).
_RENDERED_JS = "() => globalThis.__vaeStudio?.stats?.firstFrame != null"


def browser_available() -> bool:
    """True when python playwright is importable and Debian's chromium exists."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return chromium_path() is not None


def cold_start_browser(models: Path, timeout: float = 120.0) -> dict[str, float]:
    """A real server and headless Chromium (launched beforehand, not counted): seconds from spawning
    the server to health ok (`health`), and to the studio's first decoded digit drawn
    in the browser (`render`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            server = AppServer(models, Path(tmp) / "server.log")
            t0 = time.perf_counter()
            try:
                server.start(timeout)
                health = time.perf_counter() - t0
                page.goto(server.url, timeout=timeout * 1000)
                page.wait_for_function(_RENDERED_JS, polling=20, timeout=timeout * 1000)
                return {"health": health, "render": time.perf_counter() - t0}
            finally:
                server.stop()
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
            r"streamlit_app|app/|explorer/|common/|training/|torch/__init__|scipy/ndimage/__init__|emojis|plotly_chart|serialization.py:\d+\(load\)",
            top)
    return buf.getvalue()
