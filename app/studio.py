"""Wiring of the two browser components: the live studio (studio.js) and the drawing pad (pad.js).

The JavaScript and CSS are plain files in app/frontend/, read once and registered with Custom
Components v2. Python gives the studio the model payload (explorer.studio.model_payload, sent once
per model and browser), one decoder payload per other member of the model's family folder (each its
own unchanging input, so each is sent once too) and the small view; it takes back the code on each
slider release and the pad's PNG after each stroke. Callbacks write the one code in session state
(explorer.state).
"""

from __future__ import annotations

import base64
import binascii
import functools
import struct
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st

from app import models
from explorer import bundle, state, studio
from explorer.analysis import DigitAnalysis
from explorer.preprocess import UnusableImageError

FRONTEND = Path(__file__).parent / "frontend"
STUDIO_KEY = "studio"
PAYLOAD_KEY = "studio_model"
MEMBER_KEY = "studio_member_{}"  # one decoder payload per family member, keyed by its name
BAND_KEY = "studio_band"  # the posterior band shown with the current revision (explorer.studio.Band)
UPLOAD_KEY, UPLOAD_SOURCE = "upload", "your upload"  # the explorer page's uploader and its code's source
PAD_KEY = "pad"
SIGNAL_KEY = "studio_first_frame"
READY_KEY = "studio_ready"  # True once the browser's studio has drawn its first digit
# Payloads are sent once per page and kept by the page (studio.js's registry), yet a mounted payload
# costs the server its hashing (~20 ms of a 3.2 MB payload) on every full run. So: the first-frame
# signal says which payload ids the page holds (HAVE_KEY); later full runs leave those out (their ids
# in HELD_KEY, which the studio's view repeats); a page that lacks one after all says "need" and the
# whole page reruns with every payload (NEED_KEY), for the rest of the session (LOST_KEY). A payload
# sent after that signal (another model opened) is named by the studio itself ("have").
HAVE_KEY, HELD_KEY, NEED_KEY, LOST_KEY = "studio_have", "studio_held", "studio_need", "studio_lost"
MAX_HELD_IDS, MAX_ID_CHARS = 64, 64  # bounds on a page's signal; its ids are 16 hex characters
DRAWING_KEY = "drawing"  # the last drawing's Drawing, or absent
DRAWING_SOURCE = "your drawing"
PAD_SIZE, PAD_STROKE = 280, 22  # canvas pixels; a digit drawn across most of it has MNIST-like strokes
MAX_DRAWING_BYTES = 1_000_000  # a 280x280 PNG is far smaller; as a data URL it fits server.maxWidgetStateSize
MAX_DRAWING_SIDE = 2 * PAD_SIZE  # the pad's canvas is PAD_SIZE square; room for a future high-DPI canvas


@dataclass(frozen=True)
class Drawing:
    """The pad's last drawing: its analysis, or why it could not be used."""

    analysis: DigitAnalysis | None
    error: str | None = None


@functools.cache
def _components() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(studio, pad) component callables, registered on first use (so importing runs nothing)."""
    read = lambda name: (FRONTEND / name).read_text(encoding="utf-8")  # noqa: E731
    comp = st.components.v2.component
    return (comp("vae_studio", css=read("studio.css"), js=read("studio.js")),
            comp("vae_pad", css=read("pad.css"), js=read("pad.js")))


@st.cache_resource(max_entries=8, show_spinner=False)
def spacing(_m: bundle.ExplorerModel, sha: str) -> studio.NeighbourSpacing:
    """Nearest-neighbour spacing of the model's test codes (a KD-tree pass, ~0.1 s), once per model."""
    return studio.neighbour_spacing(_m.atlas.mu)


@st.cache_resource(max_entries=8, show_spinner=False)
def payload(_m: bundle.ExplorerModel, sha: str) -> bytes:
    """The studio's model payload (a few MB), built once per model and shared by sessions."""
    return studio.model_payload(_m, spacing(_m, sha))


@st.cache_resource(max_entries=16, show_spinner=False)
def member_payload(_m: bundle.ExplorerModel, sha: str) -> bytes:
    """A family member's decoder payload (explorer.studio.decoder_payload), once per member."""
    return studio.decoder_payload(_m)


def family(m: bundle.ExplorerModel) -> list[bundle.ExplorerModel]:
    """The loaded members of m's family folder (m included), in display order; [] outside a family.
    A member that does not load, or has another latent size, is left out (opening it says why)."""
    members = []
    for path in studio.family_paths(m):
        member = m if path.resolve() == m.path.resolve() else models.load_model_or_error(str(path), models.file_version(path))
        if isinstance(member, bundle.ExplorerModel) and member.latent_dim == m.latent_dim:
            members.append(member)
    return members if len(members) > 1 else []


def _found_band(m: bundle.ExplorerModel, cs: state.CodeState) -> studio.Band | None:
    """The posterior of the digit the current code was loaded from, if it was a clicked, drawn or
    uploaded digit of this model: its mean, snapped to the sliders, must be the revision's code
    (a code carried over from another model, or re-encoded since, gets no stale band)."""
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    sel = st.session_state.get(state.SELECTED_KEY)
    if isinstance(sel, (int, np.integer)) and "test digit" in cs.source:
        # The selection names a test digit by its MNIST test index, or (older sessions) by its atlas
        # row: the same for a full atlas; for a subset atlas the mean check below picks the right one.
        for row in {int(m.atlas.rows_of(np.array([sel]))[0]), int(sel)}:
            if 0 <= row < m.atlas.size:
                candidates.append((m.atlas.mu[row], np.exp(0.5 * m.atlas.logvar[row])))
    elif cs.source.startswith(DRAWING_SOURCE):
        drawing = st.session_state.get(DRAWING_KEY)
        if isinstance(drawing, Drawing) and drawing.analysis is not None:
            candidates.append((drawing.analysis.mu, drawing.analysis.sigma))
    elif cs.source.startswith(UPLOAD_SOURCE) and (f := st.session_state.get(UPLOAD_KEY)) is not None:
        try:
            a = models.analyse_upload(m, m.sha256, f.getvalue())  # cached: the page analysed it already
            candidates.append((a.mu, a.sigma))
        except Exception:  # noqa: BLE001 - the upload panel says what is wrong with it; no band then
            pass
    for mu, sigma in candidates:
        if state.snap(mu) == tuple(cs.shown()):
            return studio.make_band(cs.source, mu, sigma, m, cs.rev)
    return None


def band(m: bundle.ExplorerModel, cs: state.CodeState) -> studio.Band | None:
    """The band to draw now (explorer.studio.band_to_show), remembered for the revision's releases."""
    kept = st.session_state.get(BAND_KEY)
    shown = studio.band_to_show(_found_band(m, cs), kept if isinstance(kept, studio.Band) else None, m, cs.rev)
    if shown is None:
        st.session_state.pop(BAND_KEY, None)
    else:
        st.session_state[BAND_KEY] = shown
    return shown


def _on_release(dim: int) -> None:
    value = st.session_state.get(STUDIO_KEY)
    release = value.get("release") if isinstance(value, dict) else None
    state.take_release(st.session_state, release, dim)  # a malformed value changes nothing


@dataclass(frozen=True)
class PagePayloads:
    """What a page's signal says its registry holds: full model payloads and decoders (a model's
    payload holds its decoder too), by model id (explorer.studio.model_id)."""

    models: frozenset[str] = frozenset()
    decoders: frozenset[str] = frozenset()

    @classmethod
    def of(cls, value: Any) -> "PagePayloads":  # noqa: ANN401 - a visitor's value, checked here
        """From the signal's value {"models": [ids], "decoders": [ids]}; nothing if it is anything else."""
        def ids(v: Any) -> frozenset[str]:  # noqa: ANN401
            if not isinstance(v, list) or len(v) > MAX_HELD_IDS:
                return frozenset()
            return frozenset(x for x in v if isinstance(x, str) and 0 < len(x) <= MAX_ID_CHARS)
        if not isinstance(value, dict):
            return cls()
        return cls(ids(value.get("models")), ids(value.get("decoders")))


def payloads_ui(m: bundle.ExplorerModel) -> None:
    """Mount the model's payload and each other family member's decoder payload (invisible), except
    those the page said it holds (HAVE_KEY); their ids go to HELD_KEY for the studio's view.

    Call it outside the studio's fragment: a slider release reruns only the fragment, which then
    does not rebuild and hash these MBs again (same key and bytes on every full run: Streamlit's
    message cache sends each once per browser)."""
    comp, _ = _components()
    have = st.session_state.get(HAVE_KEY)
    have = have if isinstance(have, PagePayloads) else PagePayloads()
    held = []
    with st.container(gap=None):  # invisible mounts: no gaps between them
        if studio.model_id(m) in have.models:
            held.append(studio.model_id(m))
        else:
            comp(key=PAYLOAD_KEY, data=payload(m, m.sha256))
        for member in family(m):
            if member is m:  # the open model's decoder is in its own payload
                continue
            if studio.model_id(member) in have.decoders:
                held.append(studio.model_id(member))
            else:
                comp(key=MEMBER_KEY.format(member.name), data=member_payload(member, member.sha256))
    st.session_state[HELD_KEY] = held


def studio_ui(m: bundle.ExplorerModel, projection: str) -> None:
    """Mount the studio at the current code's revision (payloads_ui mounts what it decodes with).

    The view holds the code of the revision (CodeState.shown), not each released code: a release
    then leaves the studio's element unchanged, so Streamlit does not resend it (with its script)."""
    if st.session_state.pop(NEED_KEY, False):
        st.rerun(scope="app")  # the payloads are mounted outside this fragment
    comp, _ = _components()
    cs = state.current(st.session_state, m.latent_dim)
    view = studio.view_data(m, np.array(cs.shown()), cs.rev, projection,
                            family=[studio.family_entry(x, m) for x in family(m)], band=band(m, cs),
                            held=st.session_state.get(HELD_KEY) or [])
    comp(key=STUDIO_KEY, data=view, on_release_change=functools.partial(_on_release, m.latent_dim),
         on_need_change=_on_need, on_have_change=_on_have)


def _on_ready() -> None:
    st.session_state[READY_KEY] = True
    value = st.session_state.get(SIGNAL_KEY)
    take_have(st.session_state, value.get("ready") if isinstance(value, dict) else None)


def _on_need() -> None:
    """The page lacks a payload the server left out: send them all again, from now on."""
    st.session_state[HAVE_KEY] = PagePayloads()
    st.session_state[NEED_KEY] = True
    st.session_state[LOST_KEY] = True


def take_have(session: MutableMapping[str, Any], value: Any) -> None:  # noqa: ANN401 - a visitor's value
    """Store what the page says it holds ({"models": [ids], "decoders": [ids]}): at its first frame
    ("ready"), or after a payload arrived later ("have", another model opened); ignored once the
    page has lost one (then everything is sent, for the rest of the session)."""
    if not session.get(LOST_KEY):
        session[HAVE_KEY] = PagePayloads.of(value)


def _on_have() -> None:
    value = st.session_state.get(STUDIO_KEY)
    take_have(st.session_state, value.get("have") if isinstance(value, dict) else None)


def first_frame_signal() -> None:
    """Mount the (invisible) signal that reruns the page once the studio has drawn its first digit.

    Outside the studio's fragment on purpose: its trigger reruns the whole page."""
    comp, _ = _components()
    comp(key=SIGNAL_KEY, data="signal-first-frame", on_ready_change=_on_ready)


def drawing_png(data_url: Any) -> bytes:
    """The PNG bytes of the pad's data URL; ValueError with a short reason if it is not one."""
    prefix = "data:image/png;base64,"
    if not isinstance(data_url, str) or not data_url.startswith(prefix):
        raise ValueError("the pad did not send a PNG")
    if len(data_url) > MAX_DRAWING_BYTES * 4 // 3 + len(prefix):
        raise ValueError("the drawing is too large")
    try:
        png = base64.b64decode(data_url[len(prefix):], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the drawing is not valid base64") from None
    # The pad sends its own canvas (PAD_SIZE square); a bigger picture is not a stroke, whatever its
    # cost to decode: refused from the PNG header (IHDR width, height), before any pixel is decoded.
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR" or len(png) < 24:
        raise ValueError("the pad did not send a PNG")
    width, height = struct.unpack(">II", png[16:24])
    if max(width, height) > MAX_DRAWING_SIDE:
        raise ValueError(f"the drawing is {width}x{height} pixels, larger than the pad")
    return png


def take_drawing(m: bundle.ExplorerModel, data_url: Any) -> Drawing:
    """Normalise and encode a pad drawing; on success its posterior mean becomes the code."""
    try:
        analysis = models.analyse_upload(m, m.sha256, drawing_png(data_url))
    except (ValueError, UnusableImageError) as e:  # UnusableImageError: e.g. an empty pad
        return Drawing(None, str(e))
    except Exception as e:  # noqa: BLE001 - a drawing must never put a traceback in the UI
        return Drawing(None, f"the drawing could not be processed ({type(e).__name__})")
    state.set_code(st.session_state, analysis.mu, DRAWING_SOURCE)
    return Drawing(analysis)


def _on_pad(m: bundle.ExplorerModel) -> None:
    value = st.session_state.get(PAD_KEY)
    if not isinstance(value, dict):
        return
    if value.get("clear"):
        st.session_state.pop(DRAWING_KEY, None)
    elif value.get("stroke") is not None:
        st.session_state[DRAWING_KEY] = take_drawing(m, value.get("stroke"))


def pad_ui(m: bundle.ExplorerModel) -> Drawing | None:
    """Mount the pad; the last drawing (or why it failed), if any."""
    _, pad = _components()
    pad(key=PAD_KEY, data={"size": PAD_SIZE, "stroke": PAD_STROKE},
        on_stroke_change=functools.partial(_on_pad, m), on_clear_change=functools.partial(_on_pad, m))
    drawing = st.session_state.get(DRAWING_KEY)
    return drawing if isinstance(drawing, Drawing) else None


def code_summary(m: bundle.ExplorerModel, z: np.ndarray) -> studio.Plausibility:
    """The server's plausibility of code z [D] (the studio shows the same, live)."""
    return studio.plausibility(z, m.atlas.mu, spacing(m, m.sha256))
