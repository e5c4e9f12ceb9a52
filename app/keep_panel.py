"""The "Make and keep" panel: interpolation, traversal grids and exports (PNG, GIF, code JSON).

Wiring only: the paths, grids and file encoders are plain functions in explorer/ (interpolate,
grids, exports); this module picks their inputs from widgets and session state, shows the result
and offers the downloads. Loading a frame or a code file writes the one code (explorer.state).

The panel is a fragment: its own widgets rerun only it (not the 10k-point map). What it loads
changes the whole page, so those actions rerun the app.

One truth: whatever the panel shows or offers about "the current code" is the studio's code at
that moment. A studio release reruns only the studio's fragment; the panel follows by itself. What
each view shows of the current code is a small fragment of its own (`_*_shown`) holding a tiny
invisible component (app/frontend/follow.js) that hears the studio's release in the browser and
reruns that fragment alone, carrying the released code (so the order in which the two reruns
reach the server does not matter). It listens only while the panel shows something made from the
current code, and reruns it only while it is within 600 px of the viewport; a release made while
it is farther away reruns it as it comes near (docs/truth.md has the measured costs). The controls
and download buttons are outside those fragments, so a follow never replaces a button under a click. Downloads are made when clicked, from the code of that moment (explorer.state.LiveCode),
so a click that beats the panel's rerun still gets the studio's code.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st

from app import studio
from app.links import queue_view
from app.text import visitor_text
from explorer import bundle, codes, exports, figures, grids, interpolate, links, state
from explorer import studio as studio_view
from explorer.analysis import DigitAnalysis

CURRENT = "the current code"
GIF_SCALE = 4  # pixels per MNIST pixel in the GIF (the PNG scale is chosen)
CODE_FILE_SOURCE = "the code file"
CODE_ERROR_KEY = "_code_file_error"
KL_ORDER_NOTE = "rows by KL, largest first"
VIEWS = ("Interpolate", "Traversal grid", "Code (JSON)")
LOADED_KEY = "_keep_loaded"  # set by a load callback: the next panel run reruns the whole app
FULL_RUN_KEY = "_in_full_run"  # True while the whole page runs (set by the page), False in fragment runs
FOLLOW_KEY = "keep_follow"  # the follower component's key
FOLLOW_JS = Path(__file__).parent / "frontend" / "follow.js"


@functools.cache
def _follower() -> Callable[..., Any]:
    """The follower component (registered on first use, so importing runs nothing)."""
    return st.components.v2.component("vae_follow", js=FOLLOW_JS.read_text(encoding="utf-8"))


def _on_follow(dim: int) -> None:
    """The studio released a code: take it (the studio's own trigger may not have been applied yet)."""
    value = st.session_state.get(FOLLOW_KEY)
    state.take_release(st.session_state, value.get("release") if isinstance(value, dict) else None, dim)


def follow_studio(m: bundle.ExplorerModel, follow: bool) -> None:
    """Mount the follower: while `follow`, each studio release reruns the fragment it is in with the
    new code. It is told the code shown and its revision, so it can tell a release that changes nothing
    from one that does, and catch a release made before it was mounted."""
    cs = state.current(st.session_state, m.latent_dim)
    _follower()(key=FOLLOW_KEY, data={"id": FOLLOW_KEY, "follow": bool(follow), "z": [float(v) for v in cs.z], "rev": cs.rev},
                on_release_change=functools.partial(_on_follow, m.latent_dim))


def _now(box: state.LiveCode, options: dict[str, np.ndarray], dim: int) -> dict[str, np.ndarray]:
    """`options` with the current code as it is now (a download's click), not as the panel last ran."""
    cs = box.cs
    if cs is None or len(cs.z) != dim:
        return options
    return {**options, CURRENT: cs.array()}


def endpoint_codes(m: bundle.ExplorerModel, upload: DigitAnalysis | None,
                   drawing: DigitAnalysis | None) -> dict[str, np.ndarray]:
    """Every code the app knows, by the name the pickers show: the current code, the clicked test
    digit, the upload, the drawing and the ten class means (each float32 [D])."""
    options = {CURRENT: state.current_code(st.session_state, m.latent_dim)}
    sel = st.session_state.get(state.SELECTED_KEY)
    row = None if sel is None else state.digit_row(m.atlas.test_index, m.atlas.size, sel)
    if row is not None:
        options[f"test digit #{sel} ({state.a_digit(int(m.atlas.labels[row]))})"] = m.atlas.mu[row]
    if upload is not None:
        options["your upload"] = upload.mu
    if drawing is not None:
        options[studio.DRAWING_SOURCE] = drawing.mu
    for d, mean in enumerate(codes.class_means(m.atlas.mu, m.atlas.labels)):
        options[f"mean of the {d}s"] = mean
    return options


def posterior_centres(m: bundle.ExplorerModel, upload: DigitAnalysis | None,
                      drawing: DigitAnalysis | None) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Centres a traversal grid can go around: (code [D], its posterior sigma [D] or None for
    latent units). The current code has no posterior; a digit's mu has its own sigma."""
    options: dict[str, tuple[np.ndarray, np.ndarray | None]] = {CURRENT: (state.current_code(st.session_state, m.latent_dim), None)}
    sel = st.session_state.get(state.SELECTED_KEY)
    row = None if sel is None else state.digit_row(m.atlas.test_index, m.atlas.size, sel)
    if row is not None:
        options[f"test digit #{sel}: its mu, in units of its sigma"] = (m.atlas.mu[row], np.exp(0.5 * m.atlas.logvar[row]))
    if upload is not None:
        options["your upload: its mu, in units of its sigma"] = (upload.mu, upload.sigma)
    if drawing is not None:
        options["your drawing: its mu, in units of its sigma"] = (drawing.mu, drawing.sigma)
    return options


def _load_code(z: np.ndarray, source: str) -> None:
    state.set_code(st.session_state, z, source)
    st.session_state[LOADED_KEY] = True


def _gif(images: np.ndarray, frame_ms: int, pingpong: bool) -> bytes:
    """The GIF of decoded frames images [S, 28, 28], each GIF_SCALE times larger."""
    return exports.gif_bytes(np.stack([grids.tile(img[None], scale=GIF_SCALE) for img in images]), frame_ms, pingpong)


def _path_images(m: bundle.ExplorerModel, options: dict[str, np.ndarray], start: str, end: str, steps: int,
                 method: str, overshoot: float) -> np.ndarray:
    """Decodes [S, 28, 28] of the path from options[start] to options[end]."""
    return codes.decode_pixels(m.model, interpolate.interpolate(options[start], options[end], steps, method, overshoot).codes)


def _load_frame(m: bundle.ExplorerModel, options: dict[str, np.ndarray], start: str, end: str, steps: int,
                method: str, overshoot: float, frame: int) -> None:
    """Load frame `frame` of the path as it runs now (from the current code, if it is an end)."""
    now = _now(state.live(st.session_state), options, m.latent_dim)
    path = interpolate.interpolate(now[start], now[end], steps, method, overshoot)
    _load_code(path.codes[frame], f"frame {frame + 1} of {start} → {end}")


def interpolation_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None,
                     scale: int) -> None:
    """The interpolation view: its controls and downloads here, what it shows in _interpolation_shown."""
    options = endpoint_codes(m, upload, drawing)
    names = list(options)
    c1, c2, c3 = st.columns([1.2, 1.2, 1])
    start = c1.selectbox("From", names, key="interp_from")
    default_end = next((n for n in names if n.startswith("test digit")), "mean of the 7s")
    if st.session_state.get("interp_to") not in names:
        st.session_state["interp_to"] = default_end  # a stale pick (an upload removed) or the first visit
    end = c2.selectbox("To", names, key="interp_to")
    method = c3.radio("Path", interpolate.METHODS, key="interp_method", horizontal=True,
                      format_func=lambda v: {"slerp": "spherical", "linear": "linear"}[v],
                      help="Under the N(0, I) prior most codes lie near a sphere of radius √D; a straight line between "
                           "two of them passes through atypically small norms, a spherical path (slerp) does not "
                           "(White 2016, Sampling Generative Networks).")
    c4, c5 = st.columns(2)
    steps = c4.slider("Steps", interpolate.MIN_STEPS, interpolate.MAX_STEPS, 10, key="interp_steps")
    overshoot = c5.slider("Overshoot past both ends", 0.0, interpolate.MAX_OVERSHOOT, 0.0, 0.05, key="interp_overshoot",
                          help="Extends the path beyond each endpoint by this fraction of it")
    follows = CURRENT in (start, end)
    _interpolation_shown(m, options, start, end, steps, method, overshoot, follows)
    g1, g2, g3, g4 = st.columns([1.2, 1, 1, 1], vertical_alignment="bottom")
    frame_ms = g1.number_input("Frame time (ms)", 20, 2000, 120, 10, key="gif_ms")
    pingpong = g2.checkbox("Ping-pong", key="gif_pingpong", help="Play forward, then back")
    what = f"interpolation-{start}-to-{end}-{method}-{steps}"
    # Files are made when a button is clicked (Streamlit calls the function then, in a thread without
    # the session), from the current code of that moment (the LiveCode box), not on every run.
    box, dim = state.live(st.session_state), m.latent_dim
    frames_now = lambda: _path_images(m, _now(box, options, dim), start, end, steps, method, overshoot)  # noqa: E731
    g3.download_button("Download GIF", lambda: _gif(frames_now(), int(frame_ms), pingpong),
                       file_name=exports.export_name(m.name, what, "gif"), mime="image/gif", on_click="ignore",
                       key="dl_interp_gif", help=f"An animated GIF that loops, {GIF_SCALE}× pixels")
    g4.download_button("Download PNG", lambda: exports.png_bytes(grids.tile(frames_now(), scale=scale)),
                       file_name=exports.export_name(m.name, f"{what}-x{scale}", "png"), mime="image/png",
                       on_click="ignore", key="dl_interp_png", help=f"The strip at {scale}× pixels")


@st.fragment
def _interpolation_shown(m: bundle.ExplorerModel, options: dict[str, np.ndarray], start: str, end: str, steps: int,
                         method: str, overshoot: float, follows: bool) -> None:
    """What the interpolation view shows of the path: a fragment of its own, which the follower
    reruns on a studio release (the panel's controls and downloads stay as they are)."""
    with st.container():
        options = {**options, CURRENT: state.current_code(st.session_state, m.latent_dim)}  # as it is now
        if follows:
            current_caption(m)
        path = interpolate.interpolate(options[start], options[end], steps, method, overshoot)
        images = codes.decode_pixels(m.model, path.codes)
        spacing = studio.spacing(m, m.sha256)
        plaus = [studio_view.plausibility(z, m.atlas.mu, spacing) for z in path.codes]
        # Pictures go out at 1 pixel per MNIST pixel (small PNGs, fast reruns); the page scales them up
        # with crisp pixels (image-rendering: pixelated, set by the page).
        st.image(grids.tile(images, scale=1, gutter=1), width=len(images) * 85, caption=f"{steps} frames from {start} to {end} ({method}"
                 + (f", {overshoot:g} overshoot each end" if overshoot else "") + "); below: where the path crosses a hole")
        st.plotly_chart(figures.path_figure(path.t, np.array([p.distance for p in plaus]), [p.verdict for p in plaus],
                                            spacing.p95, 3.0 * spacing.p99, interpolate.path_norms(path)),
                        key="interp_figure", config={"displaylogo": False})
        f1, f2 = st.columns([2, 1], vertical_alignment="bottom")
        frame = f1.select_slider("Frame", list(range(steps)), key="interp_frame",
                                 format_func=lambda i: f"{i + 1} (t {path.t[i]:.2f}, {plaus[i].verdict})")
        f2.button("Load this frame into the studio", key="btn_load_frame", on_click=_load_frame,
                  args=(m, options, start, end, steps, method, overshoot, frame))
        follow_studio(m, follows)


def traversal_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None,
                 scale: int) -> None:
    """The traversal view: its controls and download here, the grid in _traversal_shown."""
    options = posterior_centres(m, upload, drawing)
    if st.session_state.get("grid_centre") not in options:
        st.session_state.pop("grid_centre", None)
    name = st.radio("Around", list(options), key="grid_centre")
    centre, sigma = options[name]
    unit = "its sigma" if sigma is not None else "latent units"
    c1, c2 = st.columns(2)
    span = c1.slider(f"Range ± ({unit})", 0.5, 4.0, 2.0, 0.25, key="grid_span")
    steps = c2.slider("Columns", 3, 15, 9, 2, key="grid_steps", help="Odd, so the middle column is the centre itself")
    order = studio_view.kl_order(m.atlas.kl_per_dim, m.atlas.active)
    n_active = int(np.asarray(m.atlas.active, dtype=bool).sum())
    offsets = grids.traversal_offsets(span, steps)
    gaps = [n_active] if 0 < n_active < len(order) else []
    _traversal_shown(m, name, centre, sigma, unit, order, n_active, offsets, gaps)
    what = f"traversal-{name.split(':')[0]}-pm{span:g}-{steps}x{len(order)}-x{scale}"
    box, dim = state.live(st.session_state), m.latent_dim

    def grid_now() -> np.ndarray:  # at the click: around the current code of that moment
        here = centre if name != CURRENT else _now(box, {CURRENT: centre}, dim)[CURRENT]
        return codes.decode_pixels(m.model, grids.traversal_codes(here, order, offsets, sigma))

    st.download_button("Download PNG", lambda: exports.png_bytes(grids.tile(grid_now(), scale=scale, row_gaps=gaps)),
                       file_name=exports.export_name(m.name, what, "png"),
                       mime="image/png", on_click="ignore", key="dl_grid_png", help=f"The grid at {scale}× pixels")


@st.fragment
def _traversal_shown(m: bundle.ExplorerModel, name: str, centre: np.ndarray, sigma: np.ndarray | None, unit: str,
                     order: list[int], n_active: int, offsets: np.ndarray, gaps: list[int]) -> None:
    """The traversal grid: a fragment the follower reruns on a release when it is around the current code."""
    with st.container():
        follows = name == CURRENT
        if follows:
            centre = state.current_code(st.session_state, m.latent_dim)  # as it is now
            current_caption(m)
        grid = codes.decode_pixels(m.model, grids.traversal_codes(centre, order, offsets, sigma))
        inactive = [f"z{d}" for d in order[n_active:]]
        st.image(grids.tile(grid, scale=1, gutter=1, row_gaps=gaps), width=len(offsets) * 57,
                 caption=f"Rows, top to bottom ({KL_ORDER_NOTE}): {', '.join(f'z{d}' for d in order[:n_active])}"
                 + (f"; below the gap, inactive: {', '.join(inactive)}" if inactive else "")
                 + f". Columns: {offsets[0]:+g} … {offsets[-1]:+g} {unit} around {name.split(':')[0]}.")
        follow_studio(m, follows)


def _take_code_file() -> None:
    """Callback of "Load this code": read the uploaded or pasted JSON and queue its view."""
    st.session_state.pop(CODE_ERROR_KEY, None)
    f = st.session_state.get("code_upload")
    text = st.session_state.get("code_paste", "")
    try:
        if f is not None:
            data = f.getvalue()  # read_code_json refuses oversized files
        elif text.strip():
            data = text
        else:
            raise exports.CodeFileError("Choose a code file or paste one first.")
        cf = exports.read_code_json(data)
    except exports.CodeFileError as e:
        st.session_state[CODE_ERROR_KEY] = str(e)
        return
    projection = cf.projection or st.session_state.get("projection") or "t-SNE"
    queue_view(links.encode(cf.model, cf.z, projection, cf.digit), CODE_FILE_SOURCE, cf.sha256)
    st.session_state[LOADED_KEY] = True


def code_file_text(m: bundle.ExplorerModel, cs: state.CodeState, projection: str, digit: int | None) -> str:
    """The code file (JSON text) of code state cs on model m, with the map projection and selected digit."""
    return exports.code_json(exports.CodeFile(m.name, m.sha256, cs.z, cs.label()[:exports.MAX_SOURCE_CHARS],
                                              projection, digit))


@st.fragment
def _code_file_shown(m: bundle.ExplorerModel, projection: str, digit: int | None) -> None:
    """The code file's text: a fragment the follower reruns on each studio release."""
    with st.container():
        cs = state.current(st.session_state, m.latent_dim)
        current_caption(m)
        st.code(code_file_text(m, cs, projection, digit), language="json")
        follow_studio(m, True)


def code_file_ui(m: bundle.ExplorerModel) -> None:
    """The code file view: the current code as a file to download, and a file to load."""
    cs = state.current(st.session_state, m.latent_dim)
    projection, digit = st.session_state.get("projection") or "t-SNE", st.session_state.get(state.SELECTED_KEY)
    box = state.live(st.session_state)
    left, right = st.columns(2)
    with left:
        _code_file_shown(m, projection, digit)
        # The file is written at the click from the code of that moment; its name does not depend on
        # the code, so a click that beats the panel's rerun is still named truly.
        st.download_button("Download code (JSON)", lambda: code_file_text(m, box.cs or cs, projection, digit),
                           file_name=exports.export_name(m.name, "code", "json"),
                           mime="application/json", on_click="ignore", key="dl_code_json",
                           help="The model, its checkpoint digest and the current code; load it back here")
    with right:
        st.file_uploader("Load a code file", type=["json"], key="code_upload")
        st.text_area("… or paste one", key="code_paste", height=120)
        st.button("Load this code", key="btn_load_code", on_click=_take_code_file)
        if err := st.session_state.get(CODE_ERROR_KEY):
            st.error(f"Cannot load the code: {visitor_text(err)}")  # quotes the file's fields


@st.fragment
def keep_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None) -> None:
    """The panel: three views (one shown at a time) and the PNG scale they share."""
    if st.session_state.pop(LOADED_KEY, False) and not st.session_state.get(FULL_RUN_KEY):
        st.rerun()  # a frame or a code file was loaded: the studio, map and URL must follow
    _panel(m, upload, drawing)


def _panel(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None) -> None:
    st.subheader("Make and keep: interpolations, traversal grids, files")
    scale = st.select_slider("PNG scale (pixels per MNIST pixel)", [1, 2, 3, 4, 6, 8, 12, 16], 4, key="png_scale")
    # A switch, not st.tabs: tabs would compute all three views on every run, the switch only the one shown.
    view = st.segmented_control("Make", VIEWS, default=VIEWS[0], required=True, key="keep_view",
                                label_visibility="collapsed") or VIEWS[0]
    if view == VIEWS[0]:
        interpolation_ui(m, upload, drawing, scale)
    elif view == VIEWS[1]:
        traversal_ui(m, upload, drawing, scale)
    else:
        code_file_ui(m)


def current_caption(m: bundle.ExplorerModel) -> None:
    """What "the current code" is, shown only where the panel follows the studio (so it is never stale)."""
    cs = state.current(st.session_state, m.latent_dim)
    st.caption(f"“The current code” is the studio's: z = [{', '.join(f'{v:+.2f}' for v in cs.z)}] "
               f"(from {cs.label()}). This view follows the studio as you move it.")
