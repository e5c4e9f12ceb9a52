"""The explorer page: sliders over the latent code, the map of the encoded test set, an upload.

One `*_ui` function per panel; each only reads widgets and shows what plain functions of explorer/
compute. `render()` is the page (st.navigation calls it); importing this module runs nothing.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import models
from explorer import bundle, codes, figures, projection, state
from explorer.analysis import DigitAnalysis
from explorer.preprocess import UnusableImageError

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "webp", "bmp"]
UPLOAD_LIMIT_MB = 20  # also enforced by the server (.streamlit/config.toml server.maxUploadSize)
NOISE_SAMPLES = 15

IDEA = """
**What a VAE adds to an autoencoder.** The encoder does not output one code but a Gaussian
q(z|x) = N(mu, sigma²): training decodes a *noisy* code z = mu + sigma·eps. The KL term pulls every
q(z|x) toward the prior N(0, I), which wants sigma near 1 and mu near 0; the reconstruction term
wants sigma near 0 so the decoder sees exactly the code it needs. The two fight: the sigma you see
per dimension is their truce, and dimensions whose KL is ~0 have given up and carry no information.
"""


# --- callbacks (run before widgets are drawn, so they may set slider values) ----------------

def _reset(dim: int) -> None:
    state.set_sliders(st.session_state, np.zeros(dim, np.float32))


def _random_prior(dim: int) -> None:
    state.set_sliders(st.session_state, codes.sample_prior(dim, np.random.default_rng()))


def _random_class(m: bundle.ExplorerModel) -> None:
    digit = int(st.session_state.get("class_digit", 0))
    mean, cov = codes.class_gaussian(m.atlas.mu, m.atlas.labels, digit)
    state.set_sliders(st.session_state, codes.sample_class(mean, cov, np.random.default_rng()))


def _load_code(z: np.ndarray) -> None:
    state.set_sliders(st.session_state, z)


# --- panels ---------------------------------------------------------------------------------

def sidebar_ui(m: bundle.ExplorerModel) -> None:
    """The model's facts and the idea in a few sentences."""
    f = m.facts
    st.sidebar.markdown(f"**{m.name}** · preset `{f.preset}` · {f.latent_dim}-d latent · {f.parameters:,} parameters")
    st.sidebar.caption(f"encoder {'-'.join(map(str, f.encoder_sizes))}, decoder {'-'.join(map(str, f.decoder_sizes))}")
    if stages := bundle.describe_stages(f.stages):
        st.sidebar.caption(f"trained in {len(f.stages)} stages: {stages}")
    a, b = st.sidebar.columns(2)
    a.metric("test −ELBO", _number(f.test_neg_elbo), help="nats, dynamically binarised MNIST test set")
    b.metric("test NLL", _number(f.test_nll), help=f"importance-weighted estimate (IWAE bound, k={f.iw_samples} samples), nats")
    a.metric("active units", f"{f.active_units} / {f.latent_dim}" if f.active_units is not None else "–",
             help="unit u is active if Cov_x(E_q[z_u]) > 0.01 (Burda et al. 2015)")
    b.metric("epochs", f"{f.epochs_total}" if f.epochs_total is not None else "–",
             help=f"the weights are those of epoch {f.best_epoch} of the last stage, the best on the test objective of that stage")
    with st.sidebar.expander("The idea: noise vs. reconstruction", expanded=True):
        st.markdown(IDEA)


def _number(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "–"


@st.fragment
def sliders_ui(m: bundle.ExplorerModel) -> None:
    """Sliders, buttons, decoded digit and locator: one fragment, so moving a slider reruns only this."""
    dim = m.latent_dim
    st.subheader("Latent code → decoded digit")
    r1a, r1b = st.columns(2)
    r1a.button("Reset to 0", on_click=_reset, args=(dim,), key="btn_reset", width="stretch")
    r1b.button("Random from prior", on_click=_random_prior, args=(dim,), key="btn_prior", width="stretch",
               help="z ~ N(0, I): what the decoder makes of a typical prior draw")
    r2a, r2b = st.columns([1, 2], vertical_alignment="bottom")
    r2a.selectbox("digit", list(range(10)), key="class_digit", label_visibility="collapsed")
    r2b.button("Random of this digit", on_click=_random_class, args=(m,), key="btn_class", width="stretch",
               help="z from a Gaussian fitted to the posterior means of that digit's test images")
    kl, active = m.atlas.kl_per_dim, m.atlas.active
    img_col, slider_col = st.columns([1, 1.25])
    with slider_col:
        for i in range(dim):
            note = "" if active[i] else " · inactive"
            st.slider(f"z{i} · KL {kl[i]:.2f}{note}", -codes.SLIDER_LIMIT, codes.SLIDER_LIMIT, step=state.SLIDER_STEP,
                      key=state.slider_key(i), help="mean KL of this dimension over the test set (nats); "
                      "inactive: its posterior mean barely varies, so the decoder ignores it")
    z = state.current_code(st.session_state, dim)
    proj = st.session_state.get("projection") or "t-SNE"
    with img_col:
        st.image(figures.upscale(codes.decode_pixels(m.model, z), 8), caption="decoded pixel means", width="stretch")
        xy = projection.place(z, m.atlas, proj)
        st.image(figures.locator_image(projection.map_coords(m.atlas, proj), m.atlas.labels, xy),
                 caption=f"slider position on the {proj} map" + (" (placed by 10 nearest codes)" if proj == "t-SNE" else ""),
                 width="stretch")


def map_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None) -> None:
    proj = st.segmented_control("Map", projection.PROJECTIONS, key="projection", required=True,
                                help="PCA: a linear view, exact for any code. t-SNE: neighbourhoods, computed once at training time.")
    proj = proj or "t-SNE"
    markers = []
    sel = st.session_state.get(state.SELECTED_KEY)
    if sel is not None:
        markers.append(("clicked digit", tuple(map(float, projection.map_coords(m.atlas, proj)[sel])), "star"))
    if upload is not None:
        markers.append(("your upload", tuple(map(float, projection.place(upload.mu, m.atlas, proj))), "diamond"))
    fig = models.map_figure(m, m.sha256, proj, tuple(markers))
    st.plotly_chart(fig, key=state.MAP_KEY, on_select=lambda: state.on_map_select(st.session_state, m.atlas.mu),
                    selection_mode="points", config={"scrollZoom": True, "displaylogo": False})
    st.caption("Click a point to load its code into the sliders; click legend entries to hide or show digits.")
    if sel is not None:
        a, b, _ = st.columns([1, 1, 2])
        a.image(figures.upscale(m.atlas.images[sel].reshape(28, 28) / 255.0, 4), caption=f"test #{sel} (a {m.atlas.labels[sel]})")
        b.image(figures.upscale(codes.decode_pixels(m.model, m.atlas.mu[sel]), 4), caption="its reconstruction")


def upload_ui(m: bundle.ExplorerModel) -> DigitAnalysis | None:
    st.subheader("Upload a digit")
    f = st.file_uploader("A picture of one digit: PNG, JPEG, GIF, WebP or BMP. A phone photo of a digit on paper works.",
                         type=UPLOAD_TYPES, key="upload", max_upload_size=UPLOAD_LIMIT_MB)
    if f is None:
        return None
    try:
        result = models.analyse_upload(m, m.sha256, f.getvalue())
    except UnusableImageError as e:
        st.error(f"Cannot use **{f.name}**: {e}")
        return None
    except Exception as e:  # noqa: BLE001 - a bad upload must never put a traceback in the UI
        st.error(f"Cannot use **{f.name}**: the image could not be processed ({type(e).__name__}). Try a PNG or JPEG of one digit.")
        return None
    c1, c2, c3 = st.columns([1, 1, 2.2])
    c1.image(figures.upscale(result.image, 5), caption="normalised like MNIST (28×28)")
    c2.image(figures.upscale(result.recon, 5), caption="reconstruction from mu")
    c2.button("Load its code into the sliders", on_click=_load_code, args=(result.mu,), key="btn_load_upload")
    with c3:
        st.plotly_chart(figures.posterior_figure(result.mu, result.sigma, m.atlas.kl_per_dim), key="upload_posterior")
    e = result.elbo
    k1, k2, k3 = st.columns(3)
    k1.metric("−ELBO", f"{e.neg_elbo:.1f} nats")
    k2.metric("reconstruction", f"{e.recon:.1f} nats", help="Bernoulli cross-entropy of the grey levels, mean over 64 draws of z ~ q(z|x)")
    k3.metric("KL to N(0, I)", f"{e.kl:.1f} nats", help="what the code costs: how far q(z|x) is from the prior")
    nb = result.neighbours
    st.image(figures.image_grid(m.atlas.images[nb].reshape(-1, 28, 28) / 255.0, cols=len(nb), scale=3),
             caption="nearest test digits in latent space: " + ", ".join(str(int(m.atlas.labels[i])) for i in nb))
    return result


def noise_ui(m: bundle.ExplorerModel, upload: DigitAnalysis | None) -> None:
    st.subheader("Posterior noise: what the decoder sees during training")
    options = []
    sel = st.session_state.get(state.SELECTED_KEY)
    if sel is not None:
        options.append(state.clicked_label(sel))
    if upload is not None:
        options.append("your upload")
    if not options:
        st.info("Click a point on the map or upload a digit to see decodes of z ~ q(z|x).")
        return
    if st.session_state.get(state.NOISE_KEY) not in options:
        st.session_state.pop(state.NOISE_KEY, None)  # a stale choice (e.g. the upload was removed)
    choice = st.radio("digit", options, horizontal=True, key=state.NOISE_KEY, label_visibility="collapsed")
    if choice == "your upload" and upload is not None:
        mu, sigma = upload.mu, upload.sigma
    else:
        mu, sigma = m.atlas.mu[sel], np.exp(0.5 * m.atlas.logvar[sel])
    a, b = st.columns([1, 4])
    a.image(figures.upscale(codes.decode_pixels(m.model, mu), 4), caption="decode of mu")
    samples = codes.posterior_samples(m.model, mu, sigma, NOISE_SAMPLES, seed=0)
    b.image(figures.image_grid(samples, cols=5, scale=3),
            caption=f"{NOISE_SAMPLES} decodes of z = mu + sigma·eps (mean sigma {float(sigma.mean()):.2f})")
    st.markdown(
        "Each picture decodes a different draw z = mu + sigma·eps. **Sigma is learnt by the encoder**: the "
        "reconstruction term wants it small (every draw should decode to this digit), the KL term wants it "
        "close to 1 (every code should look like the prior). Where the draws still look alike, the decoder has "
        "learnt to tolerate the noise; where they turn into other digits, the KL term is winning."
    )


def render() -> None:
    """The whole page: pick a model, then the panels."""
    # Digits are upscaled with crisp pixels; keep them crisp when the browser rescales to the column.
    st.html("<style>[data-testid='stImage'] img {image-rendering: pixelated;}</style>")
    paths = bundle.list_checkpoints(bundle.models_dir())
    if not paths:
        st.error(f"No checkpoint in {bundle.models_dir()}. Train one with `python -m training`.")
        return
    names = [p.name for p in paths]
    choice = st.sidebar.selectbox("Model", names, key="model_name", help="checkpoints in the models folder")
    path = paths[names.index(choice)]
    m = models.load_model_or_error(str(path), models.file_version(path))
    if isinstance(m, str):
        st.error(m)
        return
    sidebar_ui(m)
    state.init_sliders(st.session_state, m.latent_dim)
    if st.session_state.get(state.SELECTED_KEY, 0) >= m.atlas.size:
        del st.session_state[state.SELECTED_KEY]  # picked on another model's larger atlas
    st.session_state.setdefault("projection", "t-SNE")  # clusters show at a glance; PCA is one click away

    st.title("What did the VAE learn?")
    st.caption(f"Drag a slider to move through the {m.latent_dim}-d latent space; click the map to jump to a test digit; "
               "upload your own.")
    top, bottom, last = st.container(), st.container(), st.container()
    with bottom:
        st.divider()
        upload = upload_ui(m)
    with top:
        left, right = st.columns([1.15, 1.45], gap="large")
        with left:
            sliders_ui(m)
        with right:
            map_ui(m, upload)
    with last:
        st.divider()
        noise_ui(m, upload)
