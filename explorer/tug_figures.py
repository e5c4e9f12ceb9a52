"""Plotly figures of the tug-of-war page: training curves, per-unit curves, the latent map over
training (animated in the browser, no reruns) and the beta sweep's rate-distortion plot.

Pure functions of arrays and dataclasses; no Streamlit here.
"""

from __future__ import annotations

import base64
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from common.atlas_format import Atlas
from common.dynamics_format import Dynamics
from explorer.exports import png_bytes
from explorer.figures import DIGIT_COLOURS, latent_map_figure
from explorer.grids import tile
from explorer.tug import SweepPoint, fixed_projection, project, stage_starts

UNIT_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d",
                "#bab0ac", "#eeca3b", "#222222", "#8f6bd6")
MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _stage_marks(fig: go.Figure, dyn: Dynamics, labels: Sequence[str], cols: int) -> None:
    """Each later stage shaded in every column, named once inside the plot (not above it, where the
    subplot titles are)."""
    last = int(dyn.epoch[-1])
    starts = stage_starts(dyn)
    for i, (stage, start) in enumerate(starts):
        end = starts[i + 1][1] - 0.5 if i + 1 < len(starts) else last + 0.5
        for col in range(1, cols + 1):
            fig.add_vrect(x0=start - 0.5, x1=end, fillcolor="grey", opacity=0.12, line_width=0, row=1, col=col)
        name = labels[stage] if stage < len(labels) else f"stage {stage + 1}"
        fig.add_annotation(x=start - 0.5, y=0.97, xref="x", yref="paper", text=f"{name}<br>epochs {start}-{int(end)}",
                           showarrow=False, xanchor="right", yanchor="top", align="right",
                           font={"size": 11, "color": "#555"})


def _epoch_axis(fig: go.Figure, dyn: Dynamics) -> None:
    """A linear epoch axis from 0 to the last epoch: a 40-epoch stage after 250 stays 14 % wide
    (on a log axis it was a few pixels), and the axis ends where training ended."""
    fig.update_xaxes(type="linear", range=[0, int(dyn.epoch[-1]) + 0.5], title_text="epoch", nticks=8)


def curves_figure(dyn: Dynamics, stage_labels: Sequence[str] = (), height: int = 330) -> go.Figure:
    """Reconstruction and KL (nats) per epoch, train and test, on a linear epoch axis; later stages shaded."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("reconstruction error −log p(x|z) (nats)",
                                                        "KL(q(z|x) ‖ N(0, I)) (nats)"), horizontal_spacing=0.08)
    for col, (train, test) in enumerate(((dyn.train_recon, dyn.test_recon), (dyn.train_kl, dyn.test_kl)), 1):
        for values, name, dash in ((train, "train", "dot"), (test, "test", "solid")):
            fig.add_trace(go.Scatter(x=dyn.epoch, y=values, name=name, mode="lines", legendgroup=name,
                                     showlegend=col == 1, line={"dash": dash, "color": "#d62728" if col == 1 else "#1f77b4"},
                                     hovertemplate=f"{name}, epoch %{{x}}: %{{y:.2f}} nats<extra></extra>"), row=1, col=col)
    _stage_marks(fig, dyn, stage_labels, 2)
    _epoch_axis(fig, dyn)
    fig.update_layout(height=height, margin=MARGIN, legend={"orientation": "h", "y": -0.25}, dragmode=False)
    return fig


def per_unit_figure(dyn: Dynamics, stage_labels: Sequence[str] = (), height: int = 330) -> go.Figure:
    """KL per latent unit and mean posterior sigma per unit over epochs: a collapsing unit's KL
    falls to 0 while its sigma climbs to the prior's 1."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("KL per unit (nats)", "mean posterior sigma per unit"),
                        horizontal_spacing=0.08)
    for u in range(dyn.latent_dim):
        colour = UNIT_COLOURS[u % len(UNIT_COLOURS)]
        for col, values, what in ((1, dyn.kl_per_dim[:, u], "KL %{y:.3f} nats"), (2, dyn.sigma_mean[:, u], "sigma %{y:.3f}")):
            fig.add_trace(go.Scatter(x=dyn.epoch, y=values, name=f"z{u}", mode="lines", legendgroup=f"z{u}",
                                     showlegend=col == 1, line={"color": colour, "width": 1.5},
                                     hovertemplate=f"z{u}, epoch %{{x}}: {what}<extra></extra>"), row=1, col=col)
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey", row=1, col=2, annotation_text="prior sigma = 1",
                  annotation_position="bottom right")
    _stage_marks(fig, dyn, stage_labels, 2)
    _epoch_axis(fig, dyn)
    fig.update_layout(height=height, margin=MARGIN, legend={"orientation": "h", "y": -0.25}, dragmode=False)
    return fig


def _png_source(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def snapshot_images(atlas: Atlas, dyn: Dynamics, s: int) -> tuple[np.ndarray, np.ndarray]:
    """(prior grid, reconstruction strip) of snapshot s as uint8 images: the P prior draws in rows of
    4; the R fixed test digits above their decodes at that epoch."""
    prior = dyn.snapshot_prior[s].reshape(-1, 28, 28) / 255.0
    # load_atlas checked that the atlas holds every digit the record follows, so no row is -1
    originals = atlas.images[atlas.rows_of(dyn.recon_index)].reshape(-1, 28, 28) / 255.0
    recons = dyn.snapshot_recon[s].reshape(-1, 28, 28) / 255.0
    prior_grid = tile(prior.reshape(-1, 4, 28, 28) if len(prior) % 4 == 0 else prior, scale=2)
    return prior_grid, tile(np.stack([originals, recons]), scale=2)


def training_map_figure(atlas: Atlas, dyn: Dynamics, height: int = 600) -> go.Figure:
    """The snapshot codes on the final model's PCA axes, one animation frame per snapshot epoch, with
    that epoch's prior decodes and reconstructions beside the map; a slider and a play button drive
    it in the browser (no rerun per frame)."""
    mean, components = fixed_projection(atlas)
    xy = project(dyn.snapshot_mu.astype(np.float64), mean, components)  # [S, M, 2]
    rows = atlas.rows_of(dyn.code_index)
    labels = np.where(rows >= 0, atlas.labels[np.maximum(rows, 0)], -1)
    lo, hi = np.percentile(xy.reshape(-1, 2), [0.5, 99.5], axis=0)
    pad = 0.08 * (hi - lo)
    fig = make_subplots(rows=2, cols=2, column_widths=[0.62, 0.38], row_heights=[0.5, 0.5],
                        specs=[[{"rowspan": 2}, {}], [None, {}]], horizontal_spacing=0.04, vertical_spacing=0.1,
                        subplot_titles=("codes of 2,000 test digits", "prior draws",
                                        "digits, reconstructions"))

    def frame_data(s: int) -> list:
        data: list = [go.Scatter(x=xy[s, labels == d, 0], y=xy[s, labels == d, 1]) for d in range(10)]
        prior, strip = snapshot_images(atlas, dyn, s)
        return data + [go.Image(source=_png_source(prior)), go.Image(source=_png_source(strip))]

    first = frame_data(0)
    for d in range(10):
        fig.add_trace(go.Scatter(x=first[d].x, y=first[d].y, mode="markers", name=str(d), legendgroup=str(d),
                                 marker={"size": 4, "color": DIGIT_COLOURS[d], "opacity": 0.7},
                                 hovertemplate=f"digit {d}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Image(source=first[10].source, hoverinfo="skip"), row=1, col=2)
    fig.add_trace(go.Image(source=first[11].source, hoverinfo="skip"), row=2, col=2)
    names = [f"{int(ep)}" for ep in dyn.snapshot_epoch]
    fig.frames = [go.Frame(data=frame_data(s), traces=list(range(12)), name=names[s]) for s in range(len(names))]
    play = {"frame": {"duration": 900, "redraw": True}, "transition": {"duration": 300}, "fromcurrent": True}
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 40, "b": 120}, legend_title_text="digit", dragmode=False,
        # legend in one row under the slider: beside the plots it squeezed them on a phone
        legend={"orientation": "h", "y": -0.34, "x": 0, "yanchor": "top"},
        updatemenus=[{"type": "buttons", "showactive": False, "x": 0.0, "y": -0.02, "xanchor": "left", "yanchor": "top",
                      "direction": "right",  # side by side: stacked, they covered the slider's label on a phone
                      "buttons": [{"label": "▶ play", "method": "animate", "args": [None, play]},
                                  {"label": "❚❚ pause", "method": "animate",
                                   "args": [[None], {"mode": "immediate", "frame": {"duration": 0, "redraw": False}}]}]}],
        sliders=[{"active": 0, "x": 0.0, "len": 1.0, "y": -0.1, "yanchor": "top",
                  "currentvalue": {"prefix": "epoch ", "font": {"size": 14}},
                  "steps": [{"label": n, "method": "animate",
                             "args": [[n], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                            "transition": {"duration": 0}}]} for n in names]}],
    )
    # no x title: the play buttons and the epoch slider sit under the plot (the caption names the axes)
    fig.update_xaxes(range=[lo[0] - pad[0], hi[0] + pad[0]], showticklabels=False, row=1, col=1)
    fig.update_yaxes(range=[lo[1] - pad[1], hi[1] + pad[1]], showticklabels=False, row=1, col=1,
                     title_text="PC 2")
    for a in fig.layout.annotations:  # subplot titles, smaller: three titles share a phone's width
        a.font = {"size": 12}
    for r in (1, 2):
        fig.update_xaxes(visible=False, row=r, col=2)
        fig.update_yaxes(visible=False, row=r, col=2)
    return fig


MARKED_STYLES = (("star-open", "#d62728"), ("diamond-open", "#9467bd"), ("square-open", "#8c564b"))


def rate_distortion_figure(sweep: Sequence[SweepPoint], marked: Sequence[tuple[str, SweepPoint]] = (),
                           selected: str | None = None, height: int = 420) -> go.Figure:
    """KL (rate) against reconstruction error (distortion), one point per beta joined in beta order;
    `marked` adds (label, point) symbols (the shipped models), each its own open symbol and colour so
    the legend tells them apart and a sweep point underneath stays visible; the `selected` model is ringed.

    Trace 0 is the sweep; its points carry their model name in customdata (click selection reads it).
    The axes leave room around every point so no label is clipped at the plot's edge.
    """
    sweep = sorted(sweep, key=lambda p: p.beta)
    xs = [p.kl for p in sweep] + [p.kl for _, p in marked]
    ys = [p.recon for p in sweep] + [p.recon for _, p in marked]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    dx, dy = max(x_hi - x_lo, 1.0), max(y_hi - y_lo, 1.0)
    # labels alternate above and below their points (neighbours at small beta sit close together), and
    # go left near the right edge, where they would leave the plot
    positions = [("top" if i % 2 == 0 else "bottom") + (" left" if p.kl >= x_hi - 0.1 * dx else " center")
                 for i, p in enumerate(sweep)]
    fig = go.Figure(go.Scatter(
        x=[p.kl for p in sweep], y=[p.recon for p in sweep], mode="lines+markers+text", name="beta sweep",
        text=[f"β={p.beta:g}" for p in sweep], textposition=positions, customdata=[p.name for p in sweep],
        cliponaxis=False, marker={"size": 12, "color": "#1f77b4"}, line={"color": "#9ecae1"},
        hovertemplate="%{text}: KL %{x:.1f} nats, reconstruction %{y:.1f} nats<extra>click to look closer</extra>"))
    for i, (label, p) in enumerate(marked):
        symbol, colour = MARKED_STYLES[i % len(MARKED_STYLES)]
        fig.add_trace(go.Scatter(x=[p.kl], y=[p.recon], mode="markers", name=f"{label}, β={p.beta:g}",
                                 marker={"size": 16, "symbol": symbol, "color": colour, "line": {"width": 2}},
                                 hovertemplate=f"{label} (β={p.beta:g}): KL %{{x:.1f}}, reconstruction %{{y:.1f}}<extra></extra>"))
    chosen = next((p for p in sweep if p.name == selected), None)
    if chosen is not None:
        # filled in another colour rather than ringed: a ring hid the point's own label
        fig.add_trace(go.Scatter(x=[chosen.kl], y=[chosen.recon], mode="markers", name="selected", hoverinfo="skip",
                                 marker={"size": 14, "color": "#ff7f0e", "line": {"width": 2, "color": "black"}}))
    fig.update_layout(height=height, margin=MARGIN, clickmode="event+select", dragmode=False, meta={"page_scrolls": True},
                      title={"text": "rate (KL) against distortion (reconstruction error), test set", "font": {"size": 14}},
                      legend={"orientation": "h", "y": -0.2})
    fig.update_xaxes(title_text="KL, nats per digit (information in the code)", range=[x_lo - 0.12 * dx, x_hi + 0.12 * dx])
    fig.update_yaxes(title_text="reconstruction error, nats per digit", range=[y_lo - 0.08 * dy, y_hi + 0.12 * dy])
    return fig


def sweep_map_figure(atlas: Atlas, beta: float, axis_range: tuple[float, float], height: int = 460) -> go.Figure:
    """One sweep member's PCA map on axes every member shares (axis_range, latent units, from
    explorer.tug.shared_range), labelled, with the prior's centre z = 0 marked: codes crowding in
    as beta grows show as a smaller cloud, not as the same box refilled. SVG (webgl=False): 2,006
    points draw sooner than WebGL starts in a software-rendered browser."""
    origin = project(np.zeros((1, atlas.latent_dim)), *fixed_projection(atlas))[0]
    fig = latent_map_figure(atlas.pca, atlas.labels, "PCA", [("z = 0", origin, "x-thin-open")],
                            height=height, webgl=False, holes=False, axis_range=axis_range, ticks=True)
    # the legend goes below: on a phone a legend beside a square plot leaves the plot a third of the width
    fig.update_layout(title={"text": f"β = {beta:g}: PCA, axes shared by the sweep"},
                      legend={"orientation": "h", "y": -0.18, "x": 0, "title": {"text": "digit"}},
                      margin={"l": 50, "r": 10, "t": 30, "b": 10})
    fig.data[-1].marker.update(size=14, color="black", line={"width": 2, "color": "black"})
    return fig
