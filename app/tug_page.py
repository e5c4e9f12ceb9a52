"""The second page, "The tug of war": how a model learnt (its recorded training dynamics) and what
beta does (the beta sweep in models/beta/). Wiring only: the facts come from explorer.tug, the
figures from explorer.tug_figures, the models from the cached loader the explorer uses.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import models
from app.text import visitor_text
from explorer import bundle, links, state, tug, tug_figures
from explorer.codes import decode_pixels
from explorer.grids import tile

_log = logging.getLogger(__name__)
SWEEP_FAMILY = "beta/"  # checkpoint_name prefix of the sweep (training.recipes.BETA_FOLDER)
MODEL_KEY, BETA_KEY, CHART_KEY = "tug_model", "tug_beta", "tug_rd_chart"
EXPLORER_URL = "./"  # the explorer is the default page: the app's root (app.main)


def _load_all() -> dict[str, bundle.ExplorerModel | str]:
    """Every checkpoint of the models folder by name, loaded (or the reason it cannot be)."""
    folder = bundle.models_dir()
    return {bundle.checkpoint_name(p, folder): models.load_model_or_error(str(p), models.file_version(p))
            for p in bundle.list_checkpoints(folder)}


@st.cache_resource(max_entries=24, show_spinner=False)
def _training_figures(_m: bundle.ExplorerModel, sha: str) -> tuple[go.Figure, go.Figure, go.Figure]:
    """(curves, per-unit curves, map over training) of a model with dynamics, built once per checkpoint."""
    dyn = _m.atlas.dynamics
    labels = _m.atlas.checkpoint.stage_objectives
    return (tug_figures.curves_figure(dyn, labels), tug_figures.per_unit_figure(dyn, labels),
            tug_figures.training_map_figure(_m.atlas, dyn))


@st.cache_resource(max_entries=24, show_spinner=False)
def _beta_map(_m: bundle.ExplorerModel, sha: str, beta: float, axis_range: tuple[float, float]) -> go.Figure:
    """A sweep member's PCA map (2,006 points) on the axes the whole sweep shares."""
    return tug_figures.sweep_map_figure(_m.atlas, beta, axis_range)


def _warmup(m: bundle.ExplorerModel) -> float | None:
    """The first stage's KL warm-up in epochs if the atlas says (a one-stage model: its train config)."""
    return m.atlas.checkpoint.warmup_epochs if len(m.atlas.checkpoint.stages) <= 1 else None


def learning_ui(loaded: dict[str, bundle.ExplorerModel]) -> None:
    """Part 1: the chosen model's curves, per-unit curves and its map over training, with the story."""
    st.header("1 · How the VAE learnt")
    # Only VAEs (a learnt noise head): the story of KL against reconstruction is told in their terms; the
    # ladder's autoencoders (posterior "none" or "fixed") have their own page.
    recorded = [name for name, m in loaded.items()
                if m.atlas.dynamics is not None and m.atlas.model_config.get("posterior", "learnt") == "learnt"]
    if not recorded:
        st.info("No model in the models folder carries its training record. Rebuild one with its recipe, "
                "e.g. `python -m training.recipes default`; the atlas then holds the dynamics.")
        return
    if st.session_state.get(MODEL_KEY) not in recorded:
        st.session_state[MODEL_KEY] = recorded[0]
    name = st.selectbox("Model", recorded, key=MODEL_KEY, format_func=lambda n: n.replace("/", " / "),
                        help="the VAEs whose atlas carries their training record")
    m = loaded[name]
    dyn = m.atlas.dynamics
    story = tug.training_story(dyn, m.atlas.checkpoint.stages, _warmup(m))
    st.markdown(" ".join(story))
    curves, units, moving = _training_figures(m, m.sha256)
    st.plotly_chart(curves, key="tug_curves", config={"displayModeBar": False})
    st.caption("Reconstruction wants a precise code, KL wants a noisy one near the prior; "
               "each epoch the optimiser trades one for the other. Dotted: training batches; solid: the test set.")
    st.plotly_chart(units, key="tug_units", config={"displayModeBar": False})
    st.caption("A unit whose KL falls to 0 and whose sigma climbs to 1 has collapsed to the prior: the KL term won "
               "it, and the decoder learnt to ignore it.")
    st.subheader("The latent space over training")
    st.plotly_chart(moving, key="tug_moving", config={"displayModeBar": False})
    st.caption(f"Press play or drag the epoch slider ({len(dyn.snapshot_epoch)} snapshots, epoch 0 is the untrained "
               "model). Every snapshot is drawn on the same axes, the final model's first two principal components, "
               "so the motion is the codes moving, not the axes turning.")


def _select_from_chart() -> None:
    """A click on the rate-distortion plot picks that beta (callbacks run before the page)."""
    for name in state.selected_customdata(st.session_state.get(CHART_KEY)):
        if isinstance(name, str) and name.startswith(SWEEP_FAMILY):
            st.session_state[BETA_KEY] = name
            return


def _digits(m: bundle.ExplorerModel) -> tuple[np.ndarray, np.ndarray]:
    """(reconstructions, prior samples) of model m as uint8 pictures: 8 fixed test digits above
    their decoded posterior means, and 16 fixed prior draws decoded (the same digits and draws for
    every beta, so pictures compare)."""
    dyn = m.atlas.dynamics
    if dyn is not None:
        rows, prior_z = m.atlas.rows_of(dyn.recon_index), dyn.prior_z
    else:
        rows, prior_z = np.arange(min(8, m.atlas.size)), np.random.default_rng(0).standard_normal((16, m.latent_dim))
    originals = m.atlas.images[rows].reshape(-1, 28, 28) / 255.0
    recons = decode_pixels(m.model, m.atlas.mu[rows])
    prior = decode_pixels(m.model, prior_z.astype(np.float32))
    return tile(np.stack([originals, recons]), scale=3), tile(prior.reshape(2, -1, 28, 28), scale=3)


def explorer_link(m: bundle.ExplorerModel) -> str:
    """The explorer's URL for model m with the session's current code (the live studio's URL state)."""
    z = state.current(st.session_state, m.latent_dim).z
    return f"{EXPLORER_URL}?{urlencode(links.encode(m.name, z, 'PCA', None))}"


def sweep_ui(loaded: dict[str, bundle.ExplorerModel]) -> None:
    """Part 2: the rate-distortion plot of the sweep, and a closer look at one beta."""
    st.header("2 · What beta does")
    points = tug.sorted_sweep([p for name, m in loaded.items() if name.startswith(SWEEP_FAMILY)
                               and (p := tug.sweep_point(name, m.atlas)) is not None])
    if len(points) < 2:
        st.info("The beta sweep is not in the models folder (models/beta/). Train it with "
                "`python -m training.recipes beta`.")
        return
    st.markdown(" ".join(tug.sweep_story(points)) + " Every point is one model; the curve between them is the "
                "trade-off itself.")
    names = [p.name for p in points]
    if st.session_state.get(BETA_KEY) not in names:
        st.session_state[BETA_KEY] = next((p.name for p in points if p.beta == 1.0), names[0])
    marked = [(f"{name} (shipped)", p) for name, m in loaded.items() if "/" not in name
              and (p := tug.sweep_point(name, m.atlas)) is not None]
    chosen = st.session_state[BETA_KEY]
    left, right = st.columns([1.1, 1], gap="large")
    with left:
        st.plotly_chart(tug_figures.rate_distortion_figure(points, marked, chosen), key=CHART_KEY,
                        on_select=_select_from_chart, selection_mode="points", config={"displayModeBar": False})
        st.caption("Click a point, or pick beta below. The shipped models are open symbols. "
                   + tug.marked_note(marked, points))
        by_name = {p.name: p for p in points}
        st.select_slider("β, the weight of the KL term", names, key=BETA_KEY,
                         format_func=lambda n: f"{by_name[n].beta:g}")
    p, m = by_name[chosen], loaded[chosen]
    with right:
        st.subheader(f"β = {p.beta:g}")
        top, bottom = st.columns(2), st.columns(2)
        top[0].metric("KL (rate)", f"{p.kl:.1f} nats")
        top[1].metric("reconstruction", f"{p.recon:.1f} nats")
        bottom[0].metric("active units", f"{p.active_units} of {p.latent_dim}",
                         help="units whose code still changes with the digit (the variance of the posterior means "
                              "over the test set is above 0.01, Burda et al. 2015); a collapsed unit is the prior's noise")
        bottom[1].metric("mean σ", f"{p.mean_sigma:.2f}")
        if p.nll is not None:
            st.caption(f"Test NLL {p.nll:.1f} nats (IWAE, k={p.iw_samples}); 10,000 test digits.")
        recon, prior = _digits(m)
        st.image(recon, caption="8 test digits (top) and their reconstructions", clamp=True)
        st.image(prior, caption="16 fixed prior draws z ~ N(0, I), decoded", clamp=True)
        st.link_button(f"Open β = {p.beta:g} in the explorer, with your current code", explorer_link(m))
    axis_range = tug.shared_range([loaded[n].atlas.pca for n in names])
    st.plotly_chart(_beta_map(m, m.sha256, p.beta, axis_range), key="tug_beta_map", config={"displayModeBar": False})
    lo = points[0]
    st.caption(f"PCA of the {m.atlas.size:,} test digits this model's atlas keeps (every 5th of the test set), in "
               f"latent units on axes fixed for every β ({axis_range[0]:g} to {axis_range[1]:g}); × marks z = 0. "
               f"Median distance of a code from 0: {p.median_norm:.2f} here, {lo.median_norm:.2f} at β = {lo.beta:g}.")


def render() -> None:
    """The whole page."""
    st.html("<style>[data-testid='stImage'] img {image-rendering: pixelated;}</style>")
    st.title("The tug of war")
    st.caption("A VAE is an autoencoder whose code gets learnt Gaussian noise, while a KL term pulls every code "
               "toward N(0, I). Reconstruction wants no noise; KL wants noise. This page shows the fight: how one "
               "model's balance moved while it learnt, and where the balance lands when the KL weight beta changes.")
    everything = _load_all()
    loaded = {n: m for n, m in everything.items() if not isinstance(m, bundle.ModelLoadFailure)}
    for name, problem in everything.items():
        if isinstance(problem, bundle.ModelLoadFailure):
            st.warning(f"{visitor_text(name)} is left out: {visitor_text(problem.problem)}")  # file names as text
    if not loaded:
        _log.error("no usable checkpoint in %s", bundle.models_dir())  # the path for the log, not the page
        st.error("No usable model in the models folder.")
        return
    learning_ui(loaded)
    st.divider()
    sweep_ui(loaded)
