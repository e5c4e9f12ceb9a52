"""The explorer page: the live studio over the latent code, the map of the encoded test set, a
drawing pad, an upload and the posterior noise.

One `*_ui` function per panel; each only reads state and shows what plain functions of explorer/
compute. The code lives in one place (explorer.state); the studio (app/studio.py) edits it in the
browser and sends it on release, and every other writer goes through `state.set_code`. `render()`
is the page (st.navigation calls it); importing this module runs nothing.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import streamlit as st

from app import keep_panel, models, studio
from app.links import apply_link_model, apply_link_view, sync_url
from app.text import visitor_text
from common import ladder_format
from explorer import bundle, codes, figures, projection, state, tug
from explorer import studio as studio_view
from explorer.analysis import DigitAnalysis
from explorer.preprocess import UPLOAD_LIMIT_MB as _LIMIT_MB, UnusableImageError

_log = logging.getLogger(__name__)
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "webp", "bmp"]
UPLOAD_LIMIT_MB = _LIMIT_MB  # decimal MB; the server: .streamlit/config.toml server.maxUploadSize
NOISE_SAMPLES = 15
NOISE_SCALES = (1, 2, 3, 4, 5)  # the learner multiplies sigma to watch the digit dissolve
NEAREST_SHOWN = 8
UPLOAD_SOURCE = "your upload"

IDEA = """
**What a VAE adds to an autoencoder.** The encoder does not output one code but a Gaussian
q(z|x) = N(mu, sigma²): training decodes a *noisy* code z = mu + sigma·eps. The KL term pulls every
q(z|x) toward the prior N(0, I), which wants sigma near 1 and mu near 0; the reconstruction term
wants sigma near 0 so the decoder sees exactly the code it needs. The two fight: the sigma you see
per dimension is their truce, and dimensions whose KL is ~0 have given up and carry no information.
"""


# --- callbacks: each writes the one code ----------------------------------------------------

def _reset(dim: int) -> None:
    state.set_code(st.session_state, np.zeros(dim, np.float32), "reset")


def _random_prior(dim: int) -> None:
    state.set_code(st.session_state, codes.sample_prior(dim, np.random.default_rng()), "a prior draw")


def _random_class(m: bundle.ExplorerModel) -> None:
    digit = int(st.session_state.get("class_digit", 0))
    mean, cov = codes.class_gaussian(m.atlas.mu, m.atlas.labels, digit)
    state.set_code(st.session_state, codes.sample_class(mean, cov, np.random.default_rng()), f"a random {digit}")


def _on_map_select(m: bundle.ExplorerModel) -> None:
    state.on_map_select(st.session_state, m.atlas.mu, test_index=m.atlas.test_index)


def _load_code(z: np.ndarray, source: str) -> None:
    state.set_code(st.session_state, z, source)


# --- panels ---------------------------------------------------------------------------------

def sidebar_ui(m: bundle.ExplorerModel) -> None:
    """The model's facts and the idea in a few sentences."""
    f = m.facts
    beta = tug.beta_of(m.atlas)
    weight = f" · β = {beta:g}" if beta is not None and beta != 1 else ""  # the sweep's members differ only in it
    st.sidebar.markdown(f"**{m.name}** · preset `{f.preset}`{weight} · {f.latent_dim}-d latent · {f.parameters:,} parameters")
    st.sidebar.caption(f"encoder {'-'.join(map(str, f.encoder_sizes))}, decoder {'-'.join(map(str, f.decoder_sizes))}")
    if stages := bundle.describe_stages(f.stages):
        st.sidebar.caption(f"trained in {len(f.stages)} stages: {stages}")
    a, b = st.sidebar.columns(2)
    a.metric("test −ELBO", _number(f.test_neg_elbo),
             help="How badly the model explains an average test digit, in nats (lower is better): its "
                  "reconstruction error plus what the code costs (KL). Scored on black-and-white test digits, "
                  "each pixel drawn black or white at random with its grey level as the chance, redrawn every "
                  "pass (\"dynamically binarised\"). Formula: −ELBO = E_q[−log p(x|z)] + KL(q(z|x) ‖ N(0, I)).")
    b.metric("test NLL", _number(f.test_nll),
             help="A closer estimate of the same quantity, −log p(x) in nats, from "
                  f"{f.iw_samples or 'many'} noisy codes per digit weighed by how likely each is "
                  "(importance sampling; the IWAE bound).")
    a.metric("active units", f"{f.active_units} / {f.latent_dim}" if f.active_units is not None else "–",
             help="How many of the code's numbers the model actually uses: a unit is active when its value "
                  "changes from one test digit to another; an inactive one is the same for every digit and "
                  "carries nothing. Formula: unit u is active if Cov_x(E_q[z_u]) > 0.01 (Burda et al. 2015).")
    b.metric("epochs", f"{f.epochs_total}" if f.epochs_total is not None else "–",
             help=f"the weights are those of epoch {f.best_epoch} of the last stage, the best on the test objective of that stage")
    with st.sidebar.expander("The idea: noise vs. reconstruction", expanded=True):
        st.markdown(IDEA)


def _number(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "–"


@st.fragment
def code_ui(m: bundle.ExplorerModel, proj: str) -> None:
    """The buttons, the live studio and what the server makes of the current code.

    A fragment: a release or a button reruns only this (and the URL), not the map or the panels.
    The keep panel, the one other part that shows the code, follows each release by itself
    (app/keep_panel.py)."""
    dim = m.latent_dim
    state.on_model(st.session_state, m.name, dim)  # stamps a code a button wrote in this run
    b1, b2, b3, b4 = st.columns([1, 1.2, 0.6, 1.3], vertical_alignment="bottom")
    b1.button("Reset to 0", on_click=_reset, args=(dim,), key="btn_reset", width="stretch")
    b2.button("Random from prior", on_click=_random_prior, args=(dim,), key="btn_prior", width="stretch",
              help="z ~ N(0, I): what the decoder makes of a typical prior draw")
    b3.selectbox("Digit", list(range(10)), key="class_digit",
                 help="The digit “Random of this digit” draws a code of")
    b4.button("Random of this digit", on_click=_random_class, args=(m,), key="btn_class", width="stretch",
              help="z from a Gaussian fitted to the posterior means of that digit's test images")
    studio.studio_ui(m, proj)
    cs = state.current(st.session_state, dim)
    z = cs.array()
    p = studio.code_summary(m, z)
    nearest, _ = projection.nearest(z, m.atlas.mu, NEAREST_SHOWN)
    number = state.digit_number(m.atlas.test_index, p.nearest)
    st.caption(f"Code from **{cs.label()}**: z = [{', '.join(f'{v:+.2f}' for v in z)}] · nearest test digit: "
               f"{state.a_digit(int(m.atlas.labels[p.nearest]))} (test #{number}), {p.distance:.2f} away → **{p.verdict}**")
    st.image(figures.image_grid(m.atlas.images[nearest].reshape(-1, 28, 28) / 255.0, cols=len(nearest), scale=2),
             caption="the test digits that encode nearest to this code: "
             + ", ".join(str(int(m.atlas.labels[i])) for i in nearest))
    sync_url(m)


def selected_row(m: bundle.ExplorerModel) -> int | None:
    """The atlas row of the selected test digit (SELECTED_KEY holds its MNIST test index), or None."""
    sel = st.session_state.get(state.SELECTED_KEY)
    return None if sel is None else state.digit_row(m.atlas.test_index, m.atlas.size, sel)


def map_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None) -> None:
    proj = st.segmented_control("Map", projection.PROJECTIONS, key="projection", required=True,
                                help="PCA: a linear view, exact for any code. t-SNE: neighbourhoods, computed once at training time.")
    proj = proj or "t-SNE"
    # Off by default: a swipe over the map scrolls the page (a phone) and a click still picks a digit.
    pan = st.toggle("Pan and zoom the map", key="map_pan", help="On: drag to pan, scroll or pinch to zoom the map.")
    markers = []
    sel, row = st.session_state.get(state.SELECTED_KEY), selected_row(m)
    if row is not None:
        markers.append(("selected digit", tuple(map(float, projection.map_coords(m.atlas, proj)[row])), "star"))
    spacing = studio.spacing(m, m.sha256)  # an off-the-data code is drawn apart on t-SNE (figures.map_marker)
    if upload is not None:
        markers.append(figures.map_marker(UPLOAD_SOURCE, upload.mu, m.atlas, proj, spacing, "diamond"))
    if drawing is not None:
        markers.append(figures.map_marker(studio.DRAWING_SOURCE, drawing.mu, m.atlas, proj, spacing, "square"))
    fig = models.map_figure(m, models.model_key(m), proj, tuple(markers), pan)
    # The clicked digit and what the studio now shows sit beside the map, where the learner looks:
    # the studio itself is ~800 px above, out of view.
    chart, side = st.columns([4, 1], gap="small")
    chart.plotly_chart(fig, key=state.MAP_KEY, on_select=functools.partial(_on_map_select, m),
                       selection_mode="points", config={"scrollZoom": pan, "displaylogo": False,
                                                        "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d"]})
    chart.caption("Click a point to load its code into the studio; click legend entries to hide or show digits."
                  + (f" The shading is exact on PCA: a code can only sit in an empty (red) area if no test digit "
                     "encodes near it; a dense area can still hide a hole in the {m.latent_dim - 2} dimensions the plane does not show."
                     if proj == "PCA" else ""))
    with side:
        if row is None:
            st.caption("Click a digit on the map: it shows here, and its code goes to the studio.")
            return
        label = state.a_digit(int(m.atlas.labels[row]))
        st.image(figures.upscale(m.atlas.images[row].reshape(28, 28) / 255.0, 4), caption=f"test #{sel} ({label})")
        # The map is not rerun by the studio's releases, so this says what happened, not what is now.
        st.image(figures.upscale(codes.decode_pixels(m.model, m.atlas.mu[row]), 4),
                 caption="its reconstruction: its code went to the studio ↑")


def analysis_ui(m: bundle.ExplorerModel, result: DigitAnalysis, what: str, key: str) -> None:
    """What the encoder made of an image: normalised, reconstruction, mu ± sigma, ELBO, neighbours."""
    # Both pictures at the same fixed width (4 screen pixels per MNIST pixel), side by side.
    c1, c2, _ = st.columns([1, 1, 0.4])
    c1.image(figures.upscale(result.image, 4), caption="normalised like MNIST (28×28)", width=112)
    c2.image(figures.upscale(result.recon, 4), caption="reconstruction from mu", width=112)
    order = studio_view.kl_order(m.atlas.kl_per_dim, m.atlas.active)  # the studio's order
    st.plotly_chart(figures.posterior_figure(result.mu, result.sigma, m.atlas.kl_per_dim, height=240, order=order),
                    key=f"{key}_posterior")
    e = result.elbo
    # Units in the labels and short values: a "103.9 nats" value was cut to "103.9..." in a narrow column.
    k1, k2, k3 = st.columns(3)
    k1.metric("−ELBO (nats)", f"{e.neg_elbo:.1f}", help="reconstruction + KL: how badly the model explains this digit")
    k2.metric("reconstruction", f"{e.recon:.1f}", help="nats. Bernoulli cross-entropy of the grey levels, mean over 64 draws of z ~ q(z|x)")
    k3.metric("KL to prior", f"{e.kl:.1f}", help="nats. What the code costs: how far q(z|x) is from the prior N(0, I)")
    nb = result.neighbours
    st.image(figures.image_grid(m.atlas.images[nb].reshape(-1, 28, 28) / 255.0, cols=len(nb), scale=2),
             caption=f"nearest test digits to {what} in latent space: " + ", ".join(str(int(m.atlas.labels[i])) for i in nb))


def drawing_analysis(m: bundle.ExplorerModel) -> DigitAnalysis | None:
    """The last drawing as the model the page shows encodes it (it may have been drawn on another)."""
    drawing = st.session_state.get(studio.DRAWING_KEY)
    if not isinstance(drawing, studio.Drawing) or drawing.analysis is None:
        return None
    return models.analyse_image(m, m.sha256, np.ascontiguousarray(drawing.analysis.image, dtype=np.float32).tobytes())


def draw_ui(m: bundle.ExplorerModel) -> DigitAnalysis | None:
    st.subheader("Draw a digit")
    drawing = studio.pad_ui(m)
    if drawing is None:
        st.caption("After each stroke the drawing is normalised like MNIST and encoded; its code goes to the "
                   "studio and its place to the map.")
        return None
    if drawing.analysis is None:
        st.warning(f"Cannot use the drawing: {visitor_text(drawing.error)}")
        return None
    result = drawing_analysis(m)
    analysis_ui(m, result, "your drawing", "drawing")
    return result


def upload_analysis(m: bundle.ExplorerModel) -> DigitAnalysis | None:
    """The upload as the model the page shows encodes it, or None (no upload, or an unusable one:
    upload_ui says why). Cached: the panel asks again without redoing the work."""
    f = st.session_state.get("upload")
    if f is None:
        return None
    try:
        return models.analyse_upload(m, m.sha256, f.getvalue())
    except Exception:  # noqa: BLE001 - upload_ui shows the message
        return None


def upload_ui(m: bundle.ExplorerModel) -> DigitAnalysis | None:
    st.subheader("Upload a digit")
    f = st.file_uploader("A picture of one digit: PNG, JPEG, GIF, WebP or BMP. A phone photo of a digit on paper works.",
                         type=UPLOAD_TYPES, key="upload", max_upload_size=UPLOAD_LIMIT_MB)
    if f is None:
        return None
    try:
        result = models.analyse_upload(m, m.sha256, f.getvalue())
    except UnusableImageError as e:
        st.error(f"Cannot use **{visitor_text(f.name, 80)}**: {visitor_text(e)}")
        return None
    except Exception as e:  # noqa: BLE001 - a bad upload must never put a traceback in the UI
        st.error(f"Cannot use **{visitor_text(f.name, 80)}**: the image could not be processed ({type(e).__name__}). Try a PNG or JPEG of one digit.")
        return None
    left, _ = st.columns([1.6, 1])
    with left:
        st.button("Load its code into the studio", on_click=_load_code, args=(result.mu, UPLOAD_SOURCE), key="btn_load_upload")
        analysis_ui(m, result, "your upload", "upload")
    return result


def noise_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None) -> None:
    st.subheader("Posterior noise: what the decoder sees during training")
    options: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    sel, row = st.session_state.get(state.SELECTED_KEY), selected_row(m)
    if row is not None:
        options[state.clicked_label(sel)] = (m.atlas.mu[row], np.exp(0.5 * m.atlas.logvar[row]))
    for name, result in ((UPLOAD_SOURCE, upload), (studio.DRAWING_SOURCE, drawing)):
        if result is not None:
            options[name] = (result.mu, result.sigma)
    if not options:
        st.info("Click a point on the map, draw or upload a digit to see decodes of z ~ q(z|x).")
        return
    if st.session_state.get(state.NOISE_KEY) not in options:
        st.session_state.pop(state.NOISE_KEY, None)  # a stale choice (e.g. the upload was removed)
    choice = st.radio("digit", list(options), horizontal=True, key=state.NOISE_KEY, label_visibility="collapsed")
    mu, sigma = options[choice]
    times = st.columns([1, 2])[0].select_slider("Noise: sigma times", NOISE_SCALES, value=1, key="noise_scale",
                             format_func=lambda k: f"×{k}",
                             help="×1 is the noise the decoder saw in training. Larger multiples show how far the "
                                  "code can be pushed before the digit dissolves into another one.")
    a, b = st.columns([1, 4])
    a.image(figures.upscale(codes.decode_pixels(m.model, mu), 4), caption="decode of mu")
    samples = codes.posterior_samples(m.model, mu, sigma * float(times), NOISE_SAMPLES, seed=0)
    noise = "sigma" if times == 1 else f"{times} × sigma"
    b.image(figures.image_grid(samples, cols=5, scale=3),
            caption=f"{NOISE_SAMPLES} decodes of z = mu + {noise} · eps (mean sigma {float(sigma.mean()):.2f}"
                    + (f", ×{times}: {float(sigma.mean()) * times:.2f}" if times != 1 else "") + ")")
    st.markdown(
        "Each picture decodes a different draw z = mu + sigma·eps. **Sigma is learnt by the encoder**: the "
        "reconstruction term wants it small (every draw should decode to this digit), the KL term wants it "
        "close to 1 (every code should look like the prior). Where the draws still look alike, the decoder has "
        "learnt to tolerate the noise; where they turn into other digits, the KL term is winning. Multiply "
        "sigma (×2 … ×5) to see how much more noise the digit survives before it dissolves."
    )


def follow_model(m: bundle.ExplorerModel, upload: DigitAnalysis | None, drawing: DigitAnalysis | None) -> None:
    """Make the code true for model m (explorer.state.on_model): after a switch, a test digit's, the
    upload's or the drawing's code is encoded again by m; any other keeps its numbers, labelled
    "carried over from" the model it was made on."""
    a = m.atlas
    sources = {name: r.mu for name, r in ((UPLOAD_SOURCE, upload), (studio.DRAWING_SOURCE, drawing)) if r is not None}

    def digit_code(number: int) -> np.ndarray | None:
        row = state.digit_row(a.test_index, a.size, number)
        return None if row is None else a.mu[row]

    state.on_model(st.session_state, m.name, m.latent_dim, sources, digit_code)


def render() -> None:
    """The whole page: pick a model (a link may name it), then the panels; the URL follows the view."""
    # Digits are upscaled with crisp pixels; keep them crisp when the browser rescales to the column.
    st.html("<style>[data-testid='stImage'] img {image-rendering: pixelated;}</style>")
    paths = bundle.list_checkpoints(bundle.models_dir())
    if not paths:
        _log.error("no checkpoint in %s", bundle.models_dir())  # the path for the log, not the page
        st.error("No model in the models folder. Train one with `python -m training`.")
        return
    folder = bundle.models_dir()
    ids = [bundle.checkpoint_name(p, folder) for p in paths]
    names = [f"{i}.pt" for i in ids]  # "default.pt", "beta/beta-2.pt": a family shows under its folder
    notices = list(apply_link_model(ids, names))
    choice = st.sidebar.selectbox("Model", names, key="model_name", format_func=lambda n: ladder_format.display_name(n.removesuffix(".pt"), n.replace("/", " / ")),
                                  help="checkpoints in the models folder; a subfolder is a family (beta/: the beta sweep; ladder/: autoencoder to VAE)")
    path = paths[names.index(choice)]
    m = models.load_model_or_error(str(path), models.file_version(path))
    if isinstance(m, bundle.ModelLoadFailure):
        st.error(f"The model {visitor_text(m.name)} cannot be used: {visitor_text(m.problem)}.")  # a file name, as text
        return
    sidebar_ui(m)
    if st.session_state.get(state.SELECTED_KEY) is not None and selected_row(m) is None:
        st.session_state.pop(state.SELECTED_KEY)  # a digit this model's atlas does not hold (a subset atlas)
    st.session_state.setdefault("projection", "t-SNE")  # clusters show at a glance; PCA is one click away
    notices += apply_link_view(m)
    upload, drawing = upload_analysis(m), drawing_analysis(m)
    follow_model(m, upload, drawing)
    # A session's first run holds the 10k-point map back until the studio has drawn its first digit
    # (the map costs the browser seconds of main thread; the studio is what a learner wants first).
    # The studio's signal, or any interaction, reruns the page with the map. Link notices are kept
    # for that rerun, or they would flash for a second.
    runs = st.session_state["_page_runs"] = st.session_state.get("_page_runs", 0) + 1
    show_map = runs > 1
    if notices:
        st.session_state["_link_notices"] = notices
    elif runs == 2 and st.session_state.get(studio.READY_KEY):
        notices = st.session_state.pop("_link_notices", [])
    else:
        st.session_state.pop("_link_notices", None)

    st.title("What did the VAE learn?")
    st.caption(f"Drag a slider: the decoder runs in your browser and the digit morphs as you move through the "
               f"{m.latent_dim}-d latent space. Click the map to jump to a test digit; draw or upload your own.")
    for notice in notices:
        st.warning(visitor_text(notice), icon="🔗")  # notices quote the link's values
    st.session_state[keep_panel.FULL_RUN_KEY] = True
    studio.payloads_ui(m)  # outside the fragment: a release does not rebuild the payloads
    code_ui(m, st.session_state.get("projection") or "t-SNE")
    st.divider()
    left, right = st.columns([1.3, 1], gap="large")
    with right:
        draw_ui(m)
    with st.container():
        st.divider()
        upload_ui(m)
    with left:
        if show_map:
            map_ui(m, upload, drawing)
        else:
            studio.first_frame_signal()
            st.info(f"The map of the {m.atlas.size:,} encoded test digits comes as soon as the studio has drawn its first digit.")
    st.divider()
    noise_ui(m, upload, drawing)
    st.divider()
    if show_map:  # held back with the map: its chart would load plotly before the studio's first digit
        keep_panel.keep_ui(m, upload, drawing)
    else:
        st.info("Interpolations, traversal grids and downloads come with the map.")
    st.session_state[keep_panel.FULL_RUN_KEY] = False
    sync_url(m)
