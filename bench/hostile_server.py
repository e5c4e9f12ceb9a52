"""Hostile input on the real server: `python -m bench.hostile_server [--files DIR] [--sessions 10]`.

Starts `streamlit run streamlit_app.py` (bench.harness.AppServer, the shipped config, the tiny test
model) and plays visitors as plain websocket clients, the way the browser talks to the server: open a
session (XSRF cookie, /_stcore/stream, a rerun), PUT a file to /_stcore/upload_file/<session>/<id>,
then rerun with the uploader's widget state naming it, and wait for the run to finish. The server's
memory is read from the kernel: its RSS before, and its peak (VmHWM, reset just before each probe
through /proc/<pid>/clear_refs) while the probe runs.

Prints:
- `server_<kind>_above_idle_mb`: one upload of each hostile kind (bench.memory's files), with what the
  page showed (the analysis, or the error's first words);
- `server_ten_at_once_peak_mb` (the whole server's peak, target 1500 MB) while ten sessions upload
  hostile files at once, and `server_class_upload_during_ten_s`: a learner's ordinary phone photo
  sent meanwhile, from upload to its finished run;
- `server_deep_trigger_value`, `server_deep_state_value`: what a pad value nested 100,000 deep (sent as
  setTriggerValue and as setStateValue would) does to that session's run and to its next rerun.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.cookies
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Sequence

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import ClientConnection, connect

from bench import memory
from bench.harness import AppServer
from bench.timing import Figure
from common.paths import REPO_ROOT

XSRF_COOKIE = "_streamlit_xsrf"
TIMEOUT_S = 300.0
TINY_MODELS = REPO_ROOT / "tests" / "assets" / "tiny_models"
MIME = "image/png"


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


class Visitor:
    """One browser-like session over a websocket: its session id and the widget ids of its page."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=TIMEOUT_S) as r:
            self.token = http.cookies.SimpleCookie(r.headers["Set-Cookie"])[XSRF_COOKIE].value
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(connect(
            f"ws://127.0.0.1:{server.port}/_stcore/stream", subprotocols=["streamlit", self.token],
            additional_headers={"Cookie": f"{XSRF_COOKIE}={self.token}"}, open_timeout=TIMEOUT_S,
            close_timeout=TIMEOUT_S, max_queue=None, max_size=None))
        self.session_id = ""
        self.widgets: dict[str, str] = {}  # key suffix -> widget id
        self.rerun()

    def close(self) -> None:
        self._stack.close()

    def rerun(self, states: Sequence = ()) -> list[ForwardMsg]:
        """Send a rerun with these widget states; the messages of the run, up to script_finished."""
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.widget_states.SetInParent()  # as the browser: its widgets' states (none here)
        for s in states:
            msg.rerun_script.widget_states.widgets.append(s)
        self.ws.send(msg.SerializeToString())
        out = []
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=TIMEOUT_S))
            out.append(fwd)
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.session_id = fwd.new_session.initialize.session_id
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                widget = getattr(el, el.WhichOneof("type") or "", None)
                wid = getattr(widget, "id", "")
                if isinstance(wid, str) and wid:
                    self.widgets[wid.rsplit("-", 1)[-1]] = wid
            elif kind == "script_finished":
                return out

    def upload(self, name: str, data: bytes) -> list[ForwardMsg]:
        """PUT the file as the browser does, then rerun with the uploader naming it."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        file_id = uuid.uuid4().hex
        path = f"/_stcore/upload_file/{self.session_id}/{file_id}"
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: {MIME}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=TIMEOUT_S)
        try:
            conn.request("PUT", path, body=body, headers={
                "X-Xsrftoken": self.token, "Cookie": f"{XSRF_COOKIE}={self.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}"})
            status = conn.getresponse().status
        finally:
            conn.close()
        if status != 204:
            raise RuntimeError(f"upload of {name} answered {status}")
        state = WidgetState(id=self.widgets["upload"])
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.file_id, info.name, info.size = file_id, name, len(data)
        info.file_urls.file_id, info.file_urls.upload_url = file_id, path
        info.file_urls.delete_url = path
        return self.rerun([state])

    def send_json(self, key: str, value_json: str, how: str) -> list[ForwardMsg]:
        """Rerun with a component's value as its JavaScript sends it: `how` "trigger" (setTriggerValue:
        the component's event aggregator widget) or "state" (setStateValue: the component's own widget)."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        wid = self.widgets[key]
        if how == "trigger":  # streamlit.components.v2.bidi_component.main._make_trigger_id(wid, "events")
            return self.rerun([WidgetState(id=f"$$STREAMLIT_INTERNAL_KEY_{wid}__events", json_trigger_value=value_json)])
        return self.rerun([WidgetState(id=wid, json_value=value_json)])


def unique(data: bytes) -> bytes:
    """`data` with 16 random bytes after its end (every accepted format ignores trailing bytes), so
    no upload is served from the app's analysis cache (st.cache_data, keyed on the bytes)."""
    return data + os.urandom(16)


def outcome(msgs: list[ForwardMsg]) -> str:
    """What the page showed: 'analysed', 'error: <first words>' or 'exception'."""
    texts = []
    for fwd in msgs:
        if fwd.WhichOneof("type") != "delta" or fwd.delta.WhichOneof("type") != "new_element":
            continue
        el = fwd.delta.new_element
        kind = el.WhichOneof("type")
        if kind == "exception":
            return "exception (Streamlit's error element)"
        if kind == "alert" and el.alert.format == el.alert.ERROR:
            texts.append(el.alert.body)
        if kind == "imgs" and any("reconstruction from mu" in i.caption for i in el.imgs.imgs):
            return "analysed"
    return f"error: {texts[0][:90]}" if texts else "neither analysed nor refused"


def probe(server: AppServer, files: dict[str, Path], kinds: Sequence[str], sessions: int) -> None:
    pid = server.proc.pid
    clear = Path(f"/proc/{pid}/clear_refs")
    warm = Visitor(server)
    warm.upload("warm.png", memory._save(memory._digit(300, 300), "PNG"))  # imports and caches paid
    for kind in kinds:
        v = Visitor(server)
        idle = _kb(pid, "VmRSS")
        clear.write_text("5")
        shown = outcome(v.upload(f"{kind}.png", unique(files[kind].read_bytes())))
        peak = _kb(pid, "VmHWM")
        v.close()
        print(Figure(f"server_{kind}_above_idle_mb", (peak - idle) / 1024, memory.TARGET_ONE_MB).line(), flush=True)
        print(f"#   {memory.KINDS[kind][0]}: idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB; page: {shown}", flush=True)
    if sessions:
        alone = Visitor(server)
        s0 = time.perf_counter()
        outcome(alone.upload("phone.jpg", unique(files["phone"].read_bytes())))
        print(f"# server_class_upload_alone_s={time.perf_counter() - s0:.2f} (the same photo on the idle server)", flush=True)
        alone.close()
        hostile = [memory.HOSTILE_FOR_TEN[i % len(memory.HOSTILE_FOR_TEN)] for i in range(sessions)]
        visitors = [Visitor(server) for _ in hostile]
        learner = Visitor(server)
        results: list[str] = [""] * len(hostile)
        idle = _kb(pid, "VmRSS")
        clear.write_text("5")

        def send(i: int) -> None:
            results[i] = outcome(visitors[i].upload(f"{hostile[i]}.png", unique(files[hostile[i]].read_bytes())))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(hostile))]
        for t in threads:
            t.start()
        s0 = time.perf_counter()
        learner_shown = outcome(learner.upload("phone.jpg", unique(files["phone"].read_bytes())))
        learner_s = time.perf_counter() - s0
        for t in threads:
            t.join()
        all_s = time.perf_counter() - t0
        peak = _kb(pid, "VmHWM")
        after = _kb(pid, "VmRSS")
        for v in (*visitors, learner):
            v.close()
        print(Figure(f"server_{sessions}_at_once_peak_mb", peak / 1024, 1500.0).line(), flush=True)
        print(Figure(f"server_class_upload_during_{sessions}_s", learner_s, memory.TARGET_SMALL_S).line(), flush=True)
        counts = {r: results.count(r) for r in sorted(set(results))}
        print(f"#   idle {idle / 1024:.0f} MB, peak {peak / 1024:.0f} MB, {after / 1024:.0f} MB after; all done in "
              f"{all_s:.1f} s; the learner's photo: {learner_shown}; the hostile pages: {counts}", flush=True)
    # A value nested 100,000 levels deep, sent as the pad's setTriggerValue and setStateValue would send it.
    deep = "[" * 100_000 + "]" * 100_000
    for how in ("trigger", "state"):
        v = Visitor(server)
        shown = outcome(v.send_json("pad", deep, how))
        again = outcome(v.rerun())
        v.close()
        fine = "neither analysed nor refused"  # the page without an upload: no error, no analysis
        print(f"# server_deep_{how}_value: that run showed {'the page' if shown == fine else shown}; the session's next "
              f"rerun: {'the page' if again == fine else again}; server alive: {server.proc.poll() is None}", flush=True)
    # The widest value a client may send: the server's limit on one message (server.maxWidgetStateSize),
    # filled with empty lists, the costliest JSON per byte once parsed (a Python list each).
    limit = _max_message_bytes(server)
    wide = "[" + "[]," * ((limit - 1024) // 3) + "[]]"
    v = Visitor(server)
    idle = _kb(pid, "VmRSS")
    clear.write_text("5")
    shown = outcome(v.send_json("pad", wide, "state"))
    peak = _kb(pid, "VmHWM")
    v.close()
    print(Figure("server_widest_value_above_idle_mb", (peak - idle) / 1024, memory.TARGET_ONE_MB).line(), flush=True)
    print(f"#   {len(wide) / 1e6:.1f} MB of empty JSON lists (server.maxWidgetStateSize {limit / 1e6:.0f} MB) as the "
          f"pad's state; the page: {'shown' if shown == 'neither analysed nor refused' else shown}", flush=True)
    warm.close()


def _max_message_bytes(server: AppServer) -> int:
    """server.maxWidgetStateSize in bytes (Streamlit counts it in decimal MB), as this server has it:
    from its command line, else as Streamlit reads it from the repo's config."""
    import subprocess

    flags = list(server.extra_args)
    if "--server.maxWidgetStateSize" in flags:
        return int(flags[flags.index("--server.maxWidgetStateSize") + 1]) * 1_000_000
    out = subprocess.run([sys.executable, "-c", "from streamlit import config; "
                          "print(config.get_option('server.maxWidgetStateSize'))"],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
    return int(out.strip()) * 1_000_000


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hostile_server", description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=Path, default=None, help="bench.memory's files (made there if missing)")
    ap.add_argument("--kinds", default="png16,rgba,rgba_max,palette,webp,jpeg_progressive,phone")
    ap.add_argument("--sessions", type=int, default=10, help="hostile uploads at once (0: skip)")
    ap.add_argument("--max-widget-state", type=int, default=None,
                    help="start the server with this server.maxWidgetStateSize (MB) instead of the repo's")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        folder = args.files or Path(tmp) / "files"
        folder.mkdir(parents=True, exist_ok=True)
        files = memory.make_files(folder, sorted({*kinds, *memory.HOSTILE_FOR_TEN, "phone"}))
        models = Path(tmp) / "models"
        shutil.copytree(TINY_MODELS, models)
        extra = ("--server.maxWidgetStateSize", str(args.max_widget_state)) if args.max_widget_state else ()
        server = AppServer(models, Path(tmp) / "server.log", extra_args=extra).start()
        try:
            print(f"# server pid {server.proc.pid} on {server.url}; code at {REPO_ROOT}", flush=True)
            probe(server, files, kinds, args.sessions)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
