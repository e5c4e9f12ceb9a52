"""The shipped server config (.streamlit/config.toml) holds on the real server.

The upload limit is the one that matters: the uploader's own 20 MB limit is checked only by the
browser, so a client that skips the browser could send anything. Here a real browser session
uploads a small digit (which gives a live session id and XSRF token), then the same request is
replayed from Python with a 25 MB body: the server refuses it (413) while a small one passes.
"""

from __future__ import annotations

import http.client
import os
import tomllib
import uuid
from pathlib import Path

import pytest

from bench.harness import CHROMIUM_ARGS, CONNECTED, AppServer, chromium_path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".streamlit" / "config.toml"
UPLOAD = ROOT / "tests" / "assets" / "digit_clean.png"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def test_shipped_config_sets_what_the_server_must_enforce():
    config = tomllib.loads(CONFIG.read_text())
    assert config["server"]["maxUploadSize"] == 20  # MB, as the uploader's max_upload_size
    assert config["server"]["address"] == "localhost"  # a learner's laptop; containers pass 0.0.0.0
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"


def _multipart(size: int) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    return head + b"\0" * size + f"\r\n--{boundary}--\r\n".encode(), boundary


def _put(port: int, path: str, headers: dict[str, str], size: int) -> int:
    """PUT a multipart body carrying `size` bytes; the status, or 413 if the server cut the connection."""
    body, boundary = _multipart(size)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("PUT", path, body=body, headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_an_oversized_upload_is_refused_by_the_server(tiny_models_dir, tmp_path):
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("no browser: /usr/bin/chromium missing (Debian: apt-get install chromium)")
    if ON_CI:
        from playwright.sync_api import sync_playwright
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").sync_playwright
    server = AppServer(tiny_models_dir, tmp_path / "server.log").start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = context.new_page()
            seen: list = []
            page.on("request", lambda r: seen.append(r) if "/_stcore/upload_file/" in r.url and r.method == "PUT" else None)
            page.goto(server.url, timeout=120_000)
            page.wait_for_selector(CONNECTED, timeout=120_000)
            page.wait_for_selector("[data-testid='stFileUploader'] input[type='file']", state="attached", timeout=120_000)
            with page.expect_request(lambda r: "/_stcore/upload_file/" in r.url and r.method == "PUT", timeout=60_000) as info:
                page.set_input_files("[data-testid='stFileUploader'] input[type='file']", str(UPLOAD))
            request = info.value
            cookies = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
            headers = {"X-Xsrftoken": request.headers.get("x-xsrftoken", ""), "Cookie": cookies}
            session_path = request.url.split(str(server.port), 1)[1].rsplit("/", 1)[0]  # /_stcore/upload_file/<session>
            small = _put(server.port, f"{session_path}/{uuid.uuid4().hex}", headers, 50_000)
            big = _put(server.port, f"{session_path}/{uuid.uuid4().hex}", headers, 25 * 1024 * 1024)
            browser.close()
    finally:
        server.stop()
    assert small in (200, 204), f"a small upload of the same session should pass, got {small}"
    assert big == 413, f"a 25 MB upload must be refused by the server (maxUploadSize 20), got {big}"
