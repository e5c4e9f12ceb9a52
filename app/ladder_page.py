"""The third page, "From autoencoder to VAE": the four rungs of models/ladder/ side by side, each
step's sentence of the argument above it, and under each the same 16 prior draws, the same
interpolation, the latent map on shared axes and the measured figures. Wiring only: the rungs and
figures come from common.ladder_format, the measurements and words from explorer.ladder, the
pictures from explorer.grids / explorer.figures, the models from the explorer's cached loader.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import models
from common import ladder_format
from explorer import bundle, figures, ladder, tug
from explorer.codes import decode_pixels
from explorer.grids import tile
from explorer.studio import NeighbourSpacing, neighbour_spacing

PRIOR_SCALE, PATH_SCALE, PATH_COLS, GUTTER = 2, 2, 5, 2
RECIPE = "python -m training.recipes ladder"


def _rungs() -> tuple[list[bundle.ExplorerModel], list[str]]:
    """The loaded rungs in ladder order, and one message per rung that is missing or unusable."""
    folder = bundle.models_dir()
    loaded, problems = [], []
    for rung in ladder_format.RUNGS:
        path = folder / ladder_format.FAMILY / f"{rung.file}.pt"
        m = models.load_model_or_error(str(path), models.file_version(path))
        if isinstance(m, bundle.ModelLoadFailure):
            problems.append(f"{rung.title} ({m.name}) cannot be used: {m.problem}.")
        else:
            loaded.append(m)
    return loaded, problems


@st.cache_data(max_entries=8, show_spinner=False)
def _path_shares(_m: bundle.ExplorerModel, sha: str) -> ladder.PathShares:
    """The studio's verdicts on straight paths between the rung's test digits, once per checkpoint."""
    return ladder.path_shares(_m.atlas.mu)


def _figures(rungs: list[bundle.ExplorerModel]) -> list[ladder_format.RungFigures] | str:
    """The measured figures of the rungs in order, or why they cannot be shown (missing or stale)."""
    path = bundle.models_dir() / ladder_format.FAMILY / ladder_format.FIGURES_FILE
    try:
        by_name = ladder_format.read_figures(path)
    except ladder_format.LadderFiguresError as e:
        return str(e)
    out = []
    for m in rungs:
        fig = by_name.get(m.name)
        if fig is None or fig.sha256 != m.sha256:
            return (f"the figures in {ladder_format.FIGURES_FILE} were not measured on this version of {m.name}; "
                    "recompute them with `python -m training.ladder`")
        out.append(fig)
    return out


def _prior_picture(m: bundle.ExplorerModel) -> np.ndarray:
    """The first 16 fixed prior draws decoded by model m, 4 x 4, as one uint8 picture."""
    z = ladder_format.prior_draws(m.latent_dim)[: ladder_format.SHOWN_DRAWS]
    return tile(decode_pixels(m.model, z).reshape(4, 4, 28, 28), scale=PRIOR_SCALE, gutter=GUTTER)


def _path(m: bundle.ExplorerModel) -> tuple[np.ndarray, list[str]]:
    """The page's interpolation codes [S, D] between the two fixed test digits, and the studio's
    verdict of each."""
    rows = m.atlas.rows_of(np.asarray(ladder.INTERPOLATION))
    codes = ladder.page_path(m.atlas.mu[rows[0]], m.atlas.mu[rows[1]])
    return codes, ladder.verdicts(codes, m.atlas.mu, _spacing(m, m.sha256))


@st.cache_resource(max_entries=8, show_spinner=False)
def _spacing(_m: bundle.ExplorerModel, sha: str) -> NeighbourSpacing:
    """The studio's neighbour spacing of the rung's test codes, once per checkpoint."""
    return neighbour_spacing(_m.atlas.mu)


def _path_picture(m: bundle.ExplorerModel, codes: np.ndarray, verdicts: list[str]) -> np.ndarray:
    """The interpolation decoded as one strip, codes off the data framed (orange: sparse, red: hole), RGB uint8."""
    digits = decode_pixels(m.model, codes).reshape(-1, PATH_COLS, 28, 28)  # PAGE_STEPS = 10: two rows of 5
    return ladder.mark_frames(tile(digits, scale=PATH_SCALE, gutter=GUTTER), verdicts, cols=PATH_COLS,
                              cell=28 * PATH_SCALE, gutter=GUTTER)


def _map(m: bundle.ExplorerModel, codes: np.ndarray, extent: float) -> go.Figure:
    """The rung's codes of the atlas's test digits on its own first two principal axes, on the
    square [-extent, extent]^2 shared by every rung, with the interpolation drawn across."""
    fig = figures.latent_map_figure(m.atlas.pca, m.atlas.labels, "PCA", height=330, webgl=False)
    mean, components = tug.fixed_projection(m.atlas)
    xy = tug.project(codes.astype(np.float64), mean, components)
    fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines+markers", name="interpolation",
                             line={"color": "black", "width": 1.5}, marker={"size": 5, "color": "black"},
                             hovertemplate="interpolation<extra></extra>"))
    fig.update_layout(title=None, margin={"l": 40, "r": 10, "t": 10, "b": 40}, showlegend=False, dragmode=False)
    fig.update_xaxes(range=[-extent, extent], showticklabels=True, title_text="PC 1", zeroline=True)
    fig.update_yaxes(range=[-extent, extent], showticklabels=True, title_text="PC 2", zeroline=True)
    return fig


def _numbers(fig: ladder_format.RungFigures, paths: ladder.PathShares) -> str:
    """The rung's section-2 figures as a short Markdown list (numbers only: nothing from a visitor)."""
    std = np.asarray(fig.mu_std)
    nll = f"{fig.nll:.1f} nats (k={fig.iw_samples})" if fig.nll is not None else "not defined (no noise)"
    kl = f"{fig.kl:.1f} nats" if fig.kl is not None else "not defined"
    noise = f"fixed, σ = {fig.noise_sigma:g}" if fig.noise_sigma is not None else (
        "none" if fig.posterior == "none" else "learnt per input and unit")
    return "\n".join([
        f"- noise on the code: **{noise}**",
        f"- reconstruction: **{fig.recon:.1f} nats**",
        f"- KL: **{kl}**",
        f"- NLL: **{nll}**",
        f"- std of the means per unit: **{std.min():.2f} to {std.max():.2f}**",
        f"- 95 % of the means within radius **{fig.radius95:.2f}**",
        f"- recognisable prior draws: **{100 * fig.recognised:.1f} %**",
        f"- codes on straight paths off the data: **{100 * paths.off:.1f} %** "
        f"(sparse {100 * paths.sparse:.1f} %, holes {100 * paths.hole:.1f} %)",
    ])


def render() -> None:
    """The whole page."""
    st.html("<style>[data-testid='stImage'] img {image-rendering: pixelated;}</style>")
    st.title("From autoencoder to VAE")
    st.caption("One network trained four ways on the same data, for the same epochs, from the same seed. Each rung "
               "adds one idea: noise on the code, a KL term that pulls the codes toward N(0, I), and a noise level "
               "the encoder learns. Every picture below uses the same prior draws and the same two test digits.")
    rungs, problems = _rungs()
    if problems:
        for problem in problems:
            st.warning(problem)
        st.info(f"The ladder is incomplete. Train it with `{RECIPE}`.")
        return
    figs = _figures(rungs)
    if isinstance(figs, str):
        st.error(f"The measured figures cannot be shown: {figs}.")
        return
    shares = [_path_shares(m, m.sha256) for m in rungs]
    sentences = ladder.step_sentences(figs, shares)
    paths = [_path(m) for m in rungs]
    extent = ladder.shared_extent([m.atlas.pca for m in rungs])
    columns = st.columns(len(rungs), gap="medium")
    for col, rung, m, fig, share, sentence, (codes, verdicts) in zip(columns, ladder_format.RUNGS, rungs, figs, shares,
                                                                        sentences, paths):
        with col:
            st.subheader(rung.title)
            st.caption(rung.change)
            st.markdown(sentence)
            shown = sum(c >= ladder_format.RECOGNISED_CONFIDENCE for c in fig.shown_confidence)
            st.image(_prior_picture(m), caption=f"16 fixed prior draws z ~ N(0, I), decoded: the classifier "
                     f"recognises {shown} of these 16", clamp=True)
            framed = sum(v != "typical" for v in verdicts)
            st.image(_path_picture(m, codes, verdicts),
                     caption=f"test digits {ladder.INTERPOLATION[0]} → {ladder.INTERPOLATION[1]} in a straight line (read row by row): "
                             f"{framed} of {len(verdicts)} codes off the data (framed: orange sparse, red hole)")
            st.plotly_chart(_map(m, codes, extent), key=f"ladder_map_{rung.file}", config={"displayModeBar": False})
            st.markdown(_numbers(fig, share))
    st.caption(f"Maps: each rung's codes of the {rungs[0].atlas.size:,} test digits its atlas keeps, on its own first "
               "two principal axes, all drawn on the same scale; the black line is the interpolation above. Figures: "
               f"the 10,000 test digits; prior draws: {ladder_format.PRIOR_DRAWS:,} fixed draws named by the repo's "
               f"digit classifier at ≥ {ladder_format.RECOGNISED_CONFIDENCE:g} confidence; off the data: the studio's verdict "
               f"(sparse: farther from any test code than 95 % of test codes are from their nearest neighbour; hole: "
               f"3 times the 99th percentile) on {ladder.PATH_STEPS} codes of each of {ladder.PATHS} straight paths "
               f"between test digits of the atlas. Recompute with `python -m training.ladder`.")
