"""The "Make and keep" panel: interpolation, traversal grids and exports (PNG, GIF, code JSON).

Wiring only: the paths, grids and file encoders are plain functions in explorer/ (interpolate,
grids, exports); this module picks their inputs from widgets and session state, shows the result
and offers the downloads. Loading a frame or a code file writes the one code (explorer.state).

The panel is a fragment: its own widgets rerun only it (not the 10k-point map). What it loads
changes the whole page, so those actions rerun the app. A studio release reruns only the studio's
fragment, not this panel: following every release would rerun the whole page (measured: 160 ms
instead of 45 ms on the server, 29 KB instead of 3 KB per release), so the panel says which code it
used and takes the studio's current one on its next run (any of its widgets, or Refresh).
"""

from __future__ import annotations

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


def endpoint_codes(m: bundle.ExplorerModel, upload: DigitAnalysis | None,
                   drawing: DigitAnalysis | None) -> dict[str, np.ndarray]:
    """Every code the app knows, by the name the pickers show: the current code, the clicked test
    digit, the upload, the drawing and the ten class means (each float32 [D])."""
    options = {CURRENT: state.current_code(st.session_state, m.latent_dim)}
    sel = st.session_state.get(state.SELECTED_KEY)
    if sel is not None:
        options[f"test digit #{sel} (a {int(m.atlas.labels[sel])})"] = m.atlas.mu[sel]
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
    if sel is not None:
        options[f"test digit #{sel}: its mu, in units of its sigma"] = (m.atlas.mu[sel], np.exp(0.5 * m.atlas.logvar[sel]))
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


def interpolation_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None,
                     scale: int) -> None:
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
    f2.button("Load this frame into the studio", key="btn_load_frame", on_click=_load_code,
              args=(path.codes[frame], f"frame {frame + 1} of {start} → {end}"))
    g1, g2, g3, g4 = st.columns([1.2, 1, 1, 1], vertical_alignment="bottom")
    frame_ms = g1.number_input("Frame time (ms)", 20, 2000, 120, 10, key="gif_ms")
    pingpong = g2.checkbox("Ping-pong", key="gif_pingpong", help="Play forward, then back")
    what = f"interpolation-{start}-to-{end}-{method}-{steps}"
    # Files are made when a button is clicked (Streamlit calls the function then), not on every run.
    g3.download_button("Download GIF", lambda: _gif(images, int(frame_ms), pingpong),
                       file_name=exports.export_name(m.name, what, "gif"), mime="image/gif", on_click="ignore",
                       key="dl_interp_gif", help=f"An animated GIF that loops, {GIF_SCALE}× pixels")
    g4.download_button("Download PNG", lambda: exports.png_bytes(grids.tile(images, scale=scale)),
                       file_name=exports.export_name(m.name, f"{what}-x{scale}", "png"), mime="image/png",
                       on_click="ignore", key="dl_interp_png", help=f"The strip at {scale}× pixels")


def traversal_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None,
                 scale: int) -> None:
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
    grid = codes.decode_pixels(m.model, grids.traversal_codes(centre, order, offsets, sigma))
    gaps = [n_active] if 0 < n_active < len(order) else []
    inactive = [f"z{d}" for d in order[n_active:]]
    st.image(grids.tile(grid, scale=1, gutter=1, row_gaps=gaps), width=len(offsets) * 57,
             caption=f"Rows, top to bottom ({KL_ORDER_NOTE}): {', '.join(f'z{d}' for d in order[:n_active])}"
             + (f"; below the gap, inactive: {', '.join(inactive)}" if inactive else "")
             + f". Columns: {offsets[0]:+g} … {offsets[-1]:+g} {unit} around {name.split(':')[0]}.")
    what = f"traversal-{name.split(':')[0]}-pm{span:g}-{steps}x{len(order)}-x{scale}"
    st.download_button("Download PNG", lambda: exports.png_bytes(grids.tile(grid, scale=scale, row_gaps=gaps)), file_name=exports.export_name(m.name, what, "png"),
                       mime="image/png", on_click="ignore", key="dl_grid_png", help=f"The grid at {scale}× pixels")


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


def code_file_ui(m: bundle.ExplorerModel) -> None:
    cs = state.current(st.session_state, m.latent_dim)
    cf = exports.CodeFile(m.name, m.sha256, cs.z, cs.source, st.session_state.get("projection") or "t-SNE",
                          st.session_state.get(state.SELECTED_KEY))
    text = exports.code_json(cf)
    left, right = st.columns(2)
    with left:
        st.code(text, language="json")
        st.download_button("Download code (JSON)", text, file_name=exports.export_name(m.name, f"code-{cs.source}", "json"),
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
    st.subheader("Make and keep: interpolations, traversal grids, files")
    cs = state.current(st.session_state, m.latent_dim)
    a, b = st.columns([4, 1], vertical_alignment="center")
    a.caption(f"“The current code” here is the studio's code when this panel last ran: z = "
              f"[{', '.join(f'{v:+.2f}' for v in cs.z)}] (from {cs.source}). After moving the sliders, press Refresh "
              "or change anything in this panel.")
    b.button("Refresh", key="btn_keep_refresh", help="Take the studio's current code")  # a click reruns the panel
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
