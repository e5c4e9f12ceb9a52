"""The shipped server config (.streamlit/config.toml) holds on the real server.

The upload limit is the one that matters: the uploader's own 20 MB limit is checked only by the
browser, so a client that skips the browser can send anything. The real server is started with the
shipped config (bench.harness.AppServer, from the repo root); a session is opened the way the
browser opens one (the XSRF cookie from /_stcore/health, then the /_stcore/stream websocket and a
rerun request, whose `new_session` answer carries the session id), and uploads are PUT straight to
/_stcore/upload_file/<session>/<file_id>: 25 MB is refused (413) whether the client declares its
size or streams it chunked, while 50 kB and 19 MB get in (204). No browser needed, no fixed sleeps.
"""

from __future__ import annotations

import contextlib
import http.client
import http.cookies
import re
import subprocess
import sys
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import ClientConnection, connect


ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".streamlit" / "config.toml"
MB = 1024 * 1024
XSRF_COOKIE = "_streamlit_xsrf"  # streamlit.web.server.starlette.starlette_server_config.XSRF_COOKIE_NAME
TIMEOUT_S = 60.0  # every network wait below (a loaded 2-core machine); normally milliseconds


def test_shipped_config_sets_what_the_server_must_enforce():
    config = tomllib.loads(CONFIG.read_text())
    assert config["server"]["maxUploadSize"] == 20  # MB, as the uploader's max_upload_size
    assert config["server"]["address"] == "localhost"  # a learner's laptop; containers pass 0.0.0.0
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"
    assert config["client"]["toolbarMode"] == "viewer"  # no Deploy / Rerun / Clear cache for a learner
    assert config["runner"]["postScriptGC"] is False  # a full gc after every run was most of a release's CPU
    assert "headless" not in config["server"]  # `streamlit run` opens the learner's browser


def effective_config(*flags: str, home: Path) -> dict[str, str]:
    """'section.option' -> value as `streamlit config show` prints it, run from the repo root (so it
    reads the shipped file) with HOME=`home` (so no user-wide ~/.streamlit/config.toml interferes)."""
    out = subprocess.run([sys.executable, "-m", "streamlit", "config", "show", *flags], cwd=ROOT,
                         env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                         timeout=TIMEOUT_S, check=True).stdout
    values, section = {}, ""
    for line in out.splitlines():  # its comments wrap without '#', so it is not TOML: read what is
        if m := re.fullmatch(r"\[([\w.]+)\]", line):
            section = m[1]
        elif m := re.fullmatch(r"(\w+) = (.+)", line):
            values[f"{section}.{m[1]}"] = m[2]
    return values


@pytest.mark.server
def test_streamlit_reads_the_shipped_config_and_a_flag_overrides_it(tmp_path):
    shipped = effective_config(home=tmp_path)
    assert shipped["server.maxUploadSize"] == "20"
    assert shipped["browser.gatherUsageStats"] == "false"
    assert shipped["client.showErrorDetails"] == '"none"'  # a value this Streamlit accepts (else "full")
    assert shipped["server.address"] == '"localhost"'
    assert shipped["client.toolbarMode"] == '"viewer"'  # a value this Streamlit accepts
    # A hidden option (`config show` omits it): read as Streamlit reads it, from the repo root.
    gc_after_run = subprocess.run([sys.executable, "-c", "from streamlit import config as c; c.get_config_options("
                                   "force_reparse=True); print(c.get_option('runner.postScriptGC'))"], cwd=ROOT,
                                  env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                                  timeout=TIMEOUT_S, check=True).stdout.strip()
    assert gc_after_run == "False"  # no full collection after every run: most of a release's CPU (docs/hosting.md)
    hosted = effective_config("--server.address", "0.0.0.0", home=tmp_path)  # how a container serves it
    assert hosted["server.address"] == '"0.0.0.0"'
    assert hosted["server.maxUploadSize"] == "20"  # the rest of the file still holds


def _xsrf_token(url: str) -> str:
    """The XSRF cookie the server sets on /_stcore/health (as on the page a browser loads)."""
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=TIMEOUT_S) as r:
        cookie = http.cookies.SimpleCookie(r.headers["Set-Cookie"])
    return cookie[XSRF_COOKIE].value


@contextlib.contextmanager
def live_session(port: int, token: str) -> Iterator[ForwardMsg]:
    """A live app session as the browser opens it: the websocket (token in its subprotocol, as the
    frontend sends it) and a rerun request; yields the `new_session` message while the socket is open."""
    with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit", token],
                 additional_headers={"Cookie": f"{XSRF_COOKIE}={token}"}, open_timeout=TIMEOUT_S,
                 close_timeout=TIMEOUT_S, max_queue=None) as ws:  # unread messages must not stall the close
        yield _new_session(ws)


def _new_session(ws: ClientConnection) -> ForwardMsg:
    """Ask for a script run, as the frontend does on connecting; the run's first message names the session."""
    rerun = BackMsg()
    rerun.rerun_script.query_string = ""
    ws.send(rerun.SerializeToString())
    while True:  # the first message of a run is new_session; recv raises TimeoutError past the deadline
        msg = ForwardMsg()
        msg.ParseFromString(ws.recv(timeout=TIMEOUT_S))
        if msg.WhichOneof("type") == "new_session":
            return msg


def _multipart(size: int) -> tuple[bytes, bytes, str]:
    """(head, tail, boundary) of a one-file multipart body around `size` bytes of content."""
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"digit.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), boundary


def _chunks(head: bytes, size: int, tail: bytes, chunk: int = MB) -> Iterator[bytes]:
    yield head
    for start in range(0, size, chunk):
        yield b"\0" * min(chunk, size - start)
    yield tail


def _put(port: int, path: str, token: str, size: int, chunked: bool) -> int | str:
    """PUT a file of `size` bytes as the frontend does (multipart, XSRF header and cookie); with
    `chunked` the body is streamed with no Content-Length, as a client that hides its size would.
    Returns the status, or "closed" if the server cut the connection before answering."""
    head, tail, boundary = _multipart(size)
    headers = {"X-Xsrftoken": token, "Cookie": f"{XSRF_COOKIE}={token}",
               "Content-Type": f"multipart/form-data; boundary={boundary}"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        if chunked:
            conn.request("PUT", path, body=_chunks(head, size, tail), headers=headers, encode_chunked=True)
        else:
            conn.request("PUT", path, body=head + b"\0" * size + tail, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close while the body is still going out: read its answer
    try:
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return "closed"
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(tiny_app_server):
    """The real `streamlit run streamlit_app.py` with the shipped config, on a free loopback port."""
    return tiny_app_server


@pytest.mark.server
def test_the_live_server_sends_no_usage_statistics(server):
    with live_session(server.port, _xsrf_token(server.url)) as new_session:
        assert new_session.new_session.config.gather_usage_stats is False  # what the browser is told


@pytest.mark.server
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_upload_is_refused_by_the_server(server, chunked):
    token = _xsrf_token(server.url)
    with live_session(server.port, token) as new_session:  # uploads need a live session id
        route = f"/_stcore/upload_file/{new_session.new_session.initialize.session_id}"
        put = lambda size: _put(server.port, f"{route}/{uuid.uuid4().hex}", token, size, chunked)  # noqa: E731
        small, near_limit, big = put(50_000), put(19 * MB), put(25 * MB)
    assert small == 204, f"a small upload of a live session must get in, got {small}\n{server.log_tail()}"
    assert near_limit == 204, f"19 MB is under the 20 MB limit, got {near_limit}"
    # The default limit (200 MB) would take it (204): only the shipped maxUploadSize refuses it.
    assert big in (413, "closed"), f"a 25 MB upload must be refused by the server, got {big}"
    assert server.proc is not None and server.proc.poll() is None, "the server must survive the attempt"
