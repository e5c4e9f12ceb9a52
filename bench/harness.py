"""The real app server and a headless Chromium, for the browser tests and the benchmarks alike.

`AppServer` runs `python -m streamlit run streamlit_app.py` from the repo root (so it reads the
shipped .streamlit/config.toml) on a free loopback port over a chosen models folder; every wait has
a deadline and polls a condition. Nothing here is imported by the app.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.paths import REPO_ROOT
from explorer.bundle import MODELS_DIR_ENV

APP = REPO_ROOT / "streamlit_app.py"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
SCRIPT_IDLE_JS = ("() => { const app = document.querySelector(\"[data-testid='stApp']\");"
                  " return !!app && app.getAttribute('data-test-script-state') !== 'running'; }")
POLL_S = 0.05  # how often a wait re-checks its condition


def chromium_path() -> str | None:
    """Debian's chromium (/usr/bin/chromium, or `chromium` on PATH); None when there is none."""
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else shutil.which("chromium")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health_ok(url: str) -> bool:
    """True when GET {url}/_stcore/health answers "ok"."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


@dataclass
class AppServer:
    """One `streamlit run streamlit_app.py` process; `start()` returns once /_stcore/health is ok."""

    models: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                "--server.port", str(self.port), "--server.address", "127.0.0.1",
                "--server.fileWatcherType", "none", *self.extra_args]

    def start(self, timeout: float = 90.0) -> "AppServer":
        """Spawn the server (its own process group) and wait until it is healthy; raises with its log if not."""
        path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, MODELS_DIR_ENV: str(self.models), "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not health_ok(self.url):
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"streamlit not healthy after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(POLL_S)  # polling a condition, with a deadline
        return self

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate the server's whole process group, then kill what is left."""
        proc = self.proc
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                os.killpg(proc.pid, signal.SIGKILL)  # the leader is gone; no child of its group survives it
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
            break
        self.proc = None


def browser_bench_main(prog: str, doc: str | None, measure: Callable[..., dict[str, float]],
                       argv: Sequence[str] | None = None, model: str | None = None) -> int:
    """The command line of a browser benchmark: `--models FOLDER` (and `--model NAME` when `model` gives
    its default), then measure(models folder[, model]) printed as name=value lines."""
    import argparse

    from explorer import bundle

    ap = argparse.ArgumentParser(prog=prog, description=(doc or prog).splitlines()[0])
    ap.add_argument("--models", type=Path, default=None, help="models folder (default: the app's)")
    if model is not None:
        ap.add_argument("--model", default=model, help=f"the model to open (default {model})")
    args = ap.parse_args(argv)
    folder = (args.models or bundle.models_dir()).resolve()
    figures = measure(folder) if model is None else measure(folder, args.model)
    for name, value in figures.items():
        print(f"{name}={value:.2f}")
    return 0
