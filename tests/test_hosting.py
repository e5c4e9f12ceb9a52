"""The hosted path (docs/hosting.md): its own lean requirements beside its entrypoint, and the one
command a container or hosted service runs, started for real on a free port and used over 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import free_port, health_ok
from explorer.bundle import MODELS_DIR_ENV

REPO = Path(__file__).resolve().parent.parent
HOSTING = REPO / "docs" / "hosting.md"
HOSTED_REQS = REPO / "hosted" / "requirements.txt"
TORCH_BOUND = {"torch", "torchvision", "triton", "scikit-learn", "tqdm", "pytest", "playwright"}


def requirement_names(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Package names a requirements file asks for, following `-r` includes (relative to the file)."""
    seen = seen if seen is not None else set()
    path = path.resolve()
    if path in seen:
        return set()
    seen.add(path)
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= requirement_names(path.parent / line[3:].strip(), seen)
        elif line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def serve_command() -> list[str]:
    """The command docs/hosting.md gives for a container or hosted service (its one `python -m streamlit` line)."""
    lines = [ln.strip() for ln in HOSTING.read_text().splitlines() if ln.strip().startswith("python -m streamlit run hosted/")]
    assert len(lines) == 1, f"docs/hosting.md should give exactly one serve command, found {lines}"
    return shlex.split(lines[0])


def test_the_hosted_install_is_the_app_alone_and_the_full_install_includes_it():
    hosted = requirement_names(HOSTED_REQS)
    assert {"streamlit", "numpy", "plotly", "pillow", "scipy"} <= hosted
    assert not hosted & TORCH_BOUND, "the hosted requirements must not pull torch or the dev tools"
    assert requirement_names(REPO / "requirements-app.txt") == hosted
    full = requirement_names(REPO / "requirements.txt")
    assert hosted < full and {"torch", "pytest"} <= full  # README's `pip install -r requirements.txt` still sets up everything
    assert (REPO / "hosted" / "streamlit_app.py").is_file()


def test_the_serve_command_listens_everywhere_headless():
    cmd = serve_command()
    opts = dict(zip(cmd[::1], cmd[1::1]))
    assert cmd[:4] == ["python", "-m", "streamlit", "run"] and cmd[4] == "hosted/streamlit_app.py"
    assert opts["--server.address"] == "0.0.0.0" and opts["--server.headless"] == "true"
    assert "--server.port" in opts


def _listening_on_all_interfaces(port: int) -> bool:
    """True when /proc/net/tcp{,6} shows a listening socket on 0.0.0.0:port or [::]:port."""
    wanted = f":{port:04X}"
    for table, anyaddr in (("/proc/net/tcp", "00000000"), ("/proc/net/tcp6", "0" * 32)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and local == anyaddr + wanted:
                return True
    return False


@pytest.mark.server
def test_the_serve_command_serves_the_app(tiny_models_dir, tmp_path):
    """Runs docs/hosting.md's command (its port swapped for a free one) from the repo root and plays a
    learner over 127.0.0.1: the page opens with the studio and the map, and a slider release comes back."""
    from bench.st_client import StreamlitClient

    cmd = serve_command()
    port = free_port()
    cmd[cmd.index("--server.port") + 1] = str(port)
    cmd[0] = sys.executable
    # No "External URL" line: printing it makes Streamlit ask checkip.amazonaws.com, and tests stay offline.
    env = {**os.environ, MODELS_DIR_ENV: str(tiny_models_dir), "STREAMLIT_LOGGER_HIDE_WELCOME_MESSAGE": "true",
           "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)  # the entrypoint finds the app package itself, as on a hosted service
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while not health_ok(url):
            assert proc.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not healthy after 90 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.05)  # polling a condition, with a deadline
        assert _listening_on_all_interfaces(port)

        async def learner() -> tuple:
            client = StreamlitClient(url, timeout=60)
            try:
                first = await client.open()
                ready = await client.ready()
                release = await client.release([0.5, 0, 0, 0, 0, 0, 0, -0.25])
                return first, ready, release
            finally:
                await client.close()

        first, ready, release = asyncio.run(learner())
        assert first.ok and "studio" in first.keys, first.exceptions + first.error_alerts
        assert ready.ok and "latent_map" in ready.keys
        assert release.ok and release.has_text("z = [+0.50, +0.00, +0.00, +0.00, +0.00, +0.00, +0.00, -0.25]")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
