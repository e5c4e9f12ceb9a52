"""A Streamlit browser without the browser: one session spoken over `/_stcore/stream`, as the frontend does.

`StreamlitClient` opens the page (GET `/`, which also sets the XSRF cookie), connects the websocket
(subprotocol `streamlit` plus the XSRF token, as the frontend does), asks for the first run and then
sends what the explorer's browser components send, as protobuf `BackMsg`s (streamlit.proto):

* `release(z)`: the studio's slider release, a trigger value `{"event": "release", "value": {"z": [...]}}`
  on the studio component, run as a rerun of its fragment (what app/frontend/studio.js sends on `change`);
* `ready()`: the studio's first-frame signal (`ready`, a full rerun that brings the map);
* `stroke(data_url)`: the pad's stroke, a PNG data URL (app/frontend/pad.js, a full rerun);
* `click_map(index)`: a plotly selection on the map whose customdata is a test-set index;
* `upload(name, data)`: `file_urls_request`, then a multipart PUT to the URL the server gives, then a
  rerun with the uploader's file info (what st.file_uploader's frontend does).

Each call waits for the run's `script_finished` and returns a `RunResult`: its time from the request
to the end of the run (the page is complete then), the bytes received, the exceptions and error alerts
the page would show, and the text it received (captions, markdown, image captions), for checks.
Widget ids are learnt from the deltas (and remembered for cached messages, which later runs send as
`ref_hash` only); the client keeps a cache of message hashes like the browser, so the model payload
comes once per session. Only for loopback servers (the benchmark); nothing here is used by the app.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

XSRF_COOKIE = "_streamlit_xsrf"
MAX_FRAME_BYTES = 64 * 1024 * 1024  # the model payload is a few MB
FINISHED_EARLY = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
COMPILE_ERROR = ForwardMsg.ScriptFinishedStatus.FINISHED_WITH_COMPILE_ERROR
TRIGGER_ID = "$$STREAMLIT_INTERNAL_KEY_{}__events"  # a bidi component's trigger values travel under this id

# Keys of the explorer's elements this client talks to (app/studio.py, app/explorer_page.py, explorer/state.py).
STUDIO, PAD, SIGNAL, UPLOAD, MAP = "studio", "pad", "studio_first_frame", "upload", "latent_map"


class SessionError(RuntimeError):
    """The session broke: the socket closed, a run timed out, or the server refused a request."""


@dataclass
class RunResult:
    """One script run as the page received it."""

    seconds: float  # from sending the request to `script_finished`
    status: int  # ForwardMsg.ScriptFinishedStatus
    received_bytes: int
    exceptions: list[str] = field(default_factory=list)  # st.exception elements (the error page)
    error_alerts: list[str] = field(default_factory=list)  # st.error boxes
    texts: list[str] = field(default_factory=list)  # markdown, captions, alert bodies, image captions
    keys: set[str] = field(default_factory=set)  # keys of the widgets and components in the run's deltas

    @property
    def ok(self) -> bool:
        return self.status != COMPILE_ERROR and not self.exceptions and not self.error_alerts

    def has_text(self, fragment: str) -> bool:
        return any(fragment in t for t in self.texts)


def _element_texts(element: Any) -> list[str]:  # noqa: ANN401 - a streamlit.proto Element
    kind = element.WhichOneof("type")
    if kind == "markdown":
        return [element.markdown.body]
    if kind == "alert":
        return [element.alert.body]
    if kind == "imgs":
        return [img.caption for img in element.imgs.imgs if img.caption]
    if kind == "heading":
        return [element.heading.body]
    return []


@dataclass
class _Known:
    """What a cached message told us (kept by hash: later runs send only `ref_hash`)."""

    key: str | None
    element_id: str | None
    fragment_id: str
    payload: tuple[str, str] | None = None  # a studio payload's (kind, model id), see _payload_of


def _payload_of(component: Any) -> tuple[str, str] | None:  # noqa: ANN401 - a BidiComponent proto
    """(kind, model id) of a studio payload element (bytes: b"VAES", version, header length, JSON
    header; layout in explorer/studio.py), or None for any other component."""
    if component.WhichOneof("data") != "bytes" or component.bytes[:4] != b"VAES":
        return None
    n = int.from_bytes(component.bytes[8:12], "little")
    header = json.loads(component.bytes[12:12 + n])
    return ("model" if header["kind"] == "model" else "decoder"), header["id"]


def _key_of(element_id: str) -> str:
    """'$$ID-<hash>-latent_map' -> 'latent_map'."""
    parts = element_id.split("-", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "$$ID" else element_id


class StreamlitClient:
    """One learner's session on a Streamlit server at `base_url` (http://127.0.0.1:PORT)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session_id: str | None = None
        self.xsrf: str | None = None
        self.page_hash = ""
        self.query_string = ""
        self.ids: dict[str, str] = {}  # element key -> its current id
        self.fragments: dict[str, str] = {}  # element key -> the fragment it was drawn in
        self.states: dict[str, Any] = {}  # element key -> widget value the browser keeps sending
        self.cache: dict[str, _Known] = {}  # hash of each cacheable message received -> what it said
        self.payloads: dict[str, set[str]] = {"model": set(), "decoder": set()}  # studio payload ids received
        self.received_bytes = 0
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self._run: RunResult | None = None
        self._run_done: asyncio.Future | None = None
        self._file_urls: dict[str, asyncio.Future] = {}
        self._closed: str | None = None

    # ---- connection ------------------------------------------------------------------------

    async def open(self) -> RunResult:
        """Load the page, connect and run the script once (the page a learner first sees)."""
        t0 = time.perf_counter()
        cookies = await asyncio.to_thread(self._get_page)
        self.xsrf = cookies.get(XSRF_COOKIE)
        ws_url = "ws" + self.base_url[4:] + "/_stcore/stream"
        protocols = ["streamlit", self.xsrf] if self.xsrf else ["streamlit"]
        headers = {"Cookie": f"{XSRF_COOKIE}={self.xsrf}"} if self.xsrf else {}
        self._ws = await asyncio.wait_for(
            websockets.connect(ws_url, subprotocols=protocols, additional_headers=headers, max_size=MAX_FRAME_BYTES,
                               open_timeout=self.timeout, ping_interval=None),
            self.timeout)
        self._reader = asyncio.create_task(self._read())
        result = await self._request(self._rerun_msg({}, fragment=None, first=True))
        result.seconds = time.perf_counter() - t0  # the page load and the connection count too
        return result

    def _get_page(self) -> dict[str, str]:
        with requests.Session() as s:
            r = s.get(self.base_url + "/", timeout=self.timeout)
            r.raise_for_status()
            s.get(self.base_url + "/_stcore/health", timeout=self.timeout).raise_for_status()
            return s.cookies.get_dict()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: nothing left to report
                pass

    # ---- what a learner does ---------------------------------------------------------------

    async def ready(self) -> RunResult:
        """The studio's first-frame signal: the browser has drawn its first digit (reruns the page with the
        map); like studio.js, it names the payloads the page holds, which later runs then leave out."""
        models = sorted(self.payloads["model"])
        return await self._trigger(SIGNAL, "ready", {"models": models, "decoders": sorted(self.payloads["decoder"] | set(models))},
                                   fragment=False)

    async def release(self, z: list[float]) -> RunResult:
        """A slider release: the studio sends the whole code, rounded as studio.js rounds it."""
        return await self._trigger(STUDIO, "release", {"z": [round(float(v), 2) for v in z]}, fragment=True)

    async def stroke(self, data_url: str) -> RunResult:
        """The pad's stroke: the whole drawing as a PNG data URL."""
        return await self._trigger(PAD, "stroke", data_url, fragment=False)

    async def click_map(self, index: int) -> RunResult:
        """A click on the map's point whose customdata is test-set index `index`."""
        point = {"curve_number": 0, "point_number": 0, "point_index": 0, "customdata": [index]}
        self.states[MAP] = ("string_value", json.dumps(
            {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}))
        return await self._request(self._rerun_msg({}, fragment=None))

    async def upload(self, name: str, data: bytes, mime: str) -> RunResult:
        """The uploader: ask for a file URL, PUT the file, rerun with its info (timed from the first request)."""
        t0 = time.perf_counter()
        request_id = str(uuid.uuid4())
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.file_names.append(name)
        msg.file_urls_request.session_id = self.session_id or ""
        future = asyncio.get_running_loop().create_future()
        self._file_urls[request_id] = future
        await self._send(msg)
        urls = await asyncio.wait_for(future, self.timeout)
        await asyncio.to_thread(self._put, urls.upload_url, name, data, mime)
        self.states[UPLOAD] = ("file", name, len(data), urls)
        result = await self._request(self._rerun_msg({}, fragment=None))
        result.seconds = time.perf_counter() - t0
        return result

    def _put(self, path: str, name: str, data: bytes, mime: str) -> None:
        headers = {"X-Xsrftoken": self.xsrf} if self.xsrf else {}
        cookies = {XSRF_COOKIE: self.xsrf} if self.xsrf else {}
        r = requests.put(self.base_url + path, files={"file": (name, data, mime)}, headers=headers, cookies=cookies,
                         timeout=self.timeout)
        if r.status_code >= 300:
            raise SessionError(f"upload refused: HTTP {r.status_code}")

    # ---- messages --------------------------------------------------------------------------

    async def _trigger(self, key: str, event: str, value: Any, fragment: bool) -> RunResult:  # noqa: ANN401
        element_id = self.ids.get(key)
        if element_id is None:
            raise SessionError(f"the page has no {key!r} element")
        triggers = {TRIGGER_ID.format(element_id): json.dumps([{"event": event, "value": value}])}
        return await self._request(self._rerun_msg(triggers, fragment=self.fragments.get(key) if fragment else None))

    def _rerun_msg(self, triggers: dict[str, str], fragment: str | None, first: bool = False) -> BackMsg:
        msg = BackMsg()
        rerun = msg.rerun_script
        ctx = rerun.context_info
        ctx.timezone, ctx.timezone_offset, ctx.locale = "UTC", 0, "en-US"
        ctx.url, ctx.is_embedded, ctx.color_scheme = self.base_url + "/", False, "light"
        if first:
            rerun.widget_states.SetInParent()
            return msg
        rerun.query_string = self.query_string
        rerun.page_script_hash = self.page_hash
        if fragment:
            rerun.fragment_id = fragment
        rerun.cached_message_hashes.extend(self.cache)
        for key, state in self.states.items():
            element_id = self.ids.get(key)
            if element_id is None:
                continue
            w = rerun.widget_states.widgets.add()
            w.id = element_id
            if state[0] == "string_value":
                w.string_value = state[1]
            elif state[0] == "file":
                _, name, size, urls = state
                info = w.file_uploader_state_value.uploaded_file_info.add()
                info.name, info.size, info.file_id = name, size, urls.file_id
                info.file_urls.CopyFrom(urls)
        for trigger_id, value in triggers.items():
            w = rerun.widget_states.widgets.add()
            w.id = trigger_id
            w.json_trigger_value = value
        return msg

    async def _send(self, msg: BackMsg) -> None:
        if self._closed:
            raise SessionError(self._closed)
        await self._ws.send(msg.SerializeToString())

    async def _request(self, msg: BackMsg) -> RunResult:
        """Send a rerun and wait for the end of the run it starts (a run cut short by a newer one is skipped)."""
        loop = asyncio.get_running_loop()
        self._run_done = loop.create_future()
        self._run = RunResult(0.0, -1, 0)
        t0 = time.perf_counter()
        await self._send(msg)
        try:
            result = await asyncio.wait_for(asyncio.shield(self._run_done), self.timeout)
        except asyncio.TimeoutError:
            raise SessionError(f"no end of run within {self.timeout:.0f} s") from None
        result.seconds = time.perf_counter() - t0
        return result

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                self.received_bytes += len(frame)
                msg = ForwardMsg()
                msg.ParseFromString(frame)
                self._handle(msg, len(frame))
        except websockets.ConnectionClosed as e:
            self._closed = f"the websocket closed ({e.code})"
        except Exception as e:  # noqa: BLE001 - reported to whoever waits
            self._closed = f"reading the websocket failed: {type(e).__name__}: {e}"
        self._closed = self._closed or "the websocket closed"
        for future in [self._run_done, *self._file_urls.values()]:
            if future is not None and not future.done():
                future.set_exception(SessionError(self._closed))

    def _handle(self, msg: ForwardMsg, size: int) -> None:
        run = self._run
        if run is not None:
            run.received_bytes += size
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            self._delta(msg, run)
        elif kind == "ref_hash":
            known = self.cache.get(msg.ref_hash)
            if known is not None and known.key is not None:
                self._learn(known.key, known.element_id, known.fragment_id, run)
            if known is not None and known.payload is not None:
                self.payloads[known.payload[0]].add(known.payload[1])
        elif kind == "file_urls_response":
            future = self._file_urls.pop(msg.file_urls_response.response_id, None)
            if future is not None and not future.done():
                if msg.file_urls_response.error_msg or not msg.file_urls_response.file_urls:
                    future.set_exception(SessionError(f"no upload URL: {msg.file_urls_response.error_msg}"))
                else:
                    future.set_result(msg.file_urls_response.file_urls[0])
        elif kind == "script_finished":
            status = msg.script_finished
            if status == FINISHED_EARLY:
                return  # cut short by a newer request: its own end comes later
            if run is not None and self._run_done is not None and not self._run_done.done():
                run.status = status
                self._run_done.set_result(run)

    def _delta(self, msg: ForwardMsg, run: RunResult | None) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        sub = getattr(element, kind) if kind else None
        element_id = getattr(sub, "id", "") if sub is not None else ""
        key = _key_of(element_id) if isinstance(element_id, str) and element_id.startswith("$$ID-") else None
        payload = _payload_of(sub) if kind == "bidi_component" else None
        if payload is not None:
            self.payloads[payload[0]].add(payload[1])
        if msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = _Known(key, element_id or None, delta.fragment_id, payload)
        if key is not None:
            self._learn(key, element_id, delta.fragment_id, run)
        if run is None:
            return
        if kind == "exception":
            run.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind == "alert" and element.alert.format == Alert.Format.ERROR:
            run.error_alerts.append(element.alert.body)
        run.texts.extend(_element_texts(element))

    def _learn(self, key: str, element_id: str | None, fragment_id: str, run: RunResult | None) -> None:
        if element_id:
            self.ids[key] = element_id
        if fragment_id:
            self.fragments[key] = fragment_id
        if run is not None:
            run.keys.add(key)


def query_value(query_string: str, name: str) -> str | None:
    """One value of a query string ('model=default&z=0%2C0' -> 'default' for 'model')."""
    values = urllib.parse.parse_qs(query_string).get(name)
    return values[0] if values else None
