"""Plotly figures and image grids the app shows. Pure functions of arrays; no Streamlit here.

The 10k-point map uses WebGL (Scattergl), one trace per digit so the legend toggles classes; each
point carries its test-set row index in customdata (hover and click read it).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.grids import tile

# Ten distinguishable colours (Plotly's D3 palette), digit d gets DIGIT_COLOURS[d].
DIGIT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def latent_map_figure(coords: np.ndarray, labels: np.ndarray, projection: str,
                      markers: Sequence[tuple[str, np.ndarray, str]] = (), height: int = 560,
                      webgl: bool = True) -> go.Figure:
    """Scatter of coords [N, 2] coloured by labels [N]; `markers` adds (name, xy [2], symbol) stars on top.

    webgl=False draws SVG: for a couple of thousand points it draws sooner than WebGL, whose start-up
    costs a software-rendered browser about a second.
    """
    scatter = go.Scattergl if webgl else go.Scatter
    traces: list = []
    index = np.arange(len(labels))
    for d in range(10):
        m = labels == d
        traces.append(scatter(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=str(d),
            marker={"size": 4, "color": DIGIT_COLOURS[d], "opacity": 0.7},
            customdata=index[m], hovertemplate=f"digit {d}<br>test index %{{customdata}}<extra></extra>",
        ))
    for name, xy, symbol in markers:
        # WebGL traces are drawn on a canvas above the SVG layer: markers must be WebGL too to show.
        traces.append(scatter(
            x=[float(xy[0])], y=[float(xy[1])], mode="markers", name=name, hoverinfo="name",
            marker={"size": 18, "symbol": symbol, "color": "black", "line": {"width": 2, "color": "white"}},
        ))
    fig = go.Figure(data=traces)
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title_text="digit",
        title={"text": f"{projection} of the {len(labels):,} encoded test digits (posterior means)", "font": {"size": 14}},
        clickmode="event+select", dragmode="pan", uirevision=projection,
    )
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None, scaleanchor="x" if projection == "PCA" else None)
    return fig


def posterior_figure(mu: np.ndarray, sigma: np.ndarray, kl_per_dim: np.ndarray | None = None, height: int = 300) -> go.Figure:
    """mu +- sigma per latent dimension [D] against the prior's +-1 band: where the code is and how noisy."""
    dims = [f"z{i}" for i in range(len(mu))]
    fig = go.Figure()
    fig.add_shape(type="rect", x0=-1, x1=1, y0=-0.5, y1=len(mu) - 0.5, fillcolor="lightgrey", opacity=0.35, line_width=0)
    text = [f"KL {k:.2f}" for k in kl_per_dim] if kl_per_dim is not None else None
    fig.add_trace(go.Scatter(x=mu, y=dims, mode="markers", name="mu +- sigma", text=text,
                             error_x={"type": "data", "array": sigma, "visible": True, "thickness": 2},
                             marker={"size": 9, "color": "#d62728"},
                             hovertemplate="%{y}: mu %{x:.2f}, sigma %{error_x.array:.2f}<extra></extra>"))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 30, "b": 10}, showlegend=False,
                      title={"text": "q(z|x): mu +- sigma (grey: prior N(0,1) +-1)", "font": {"size": 13}})
    fig.update_xaxes(range=[-4.2, 4.2], zeroline=True)
    fig.update_yaxes(autorange="reversed")
    return fig


def upscale(image: np.ndarray, scale: int = 8) -> np.ndarray:
    """[28, 28] float in [0, 1] -> uint8 [28*scale, 28*scale] with crisp (nearest) pixels."""
    img = np.clip(np.rint(np.asarray(image, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    return np.kron(img, np.ones((scale, scale), dtype=np.uint8))


def image_grid(images: np.ndarray, cols: int, scale: int = 3, gap: int = 2) -> np.ndarray:
    """images [n, 28, 28] in [0, 1] -> one uint8 picture of a cols-wide grid (gaps mid-grey)."""
    n = len(images)  # empty cells of a short last row stay grey
    rows = -(-n // cols)
    cells = np.full((rows * cols, 28, 28), 128 / 255, dtype=np.float32)
    cells[:n] = images
    return tile(cells.reshape(rows, cols, 28, 28), scale=scale, gutter=gap, gutter_value=128)


VERDICT_COLOURS = {"typical": "#2ca02c", "sparse": "#ff7f0e", "hole": "#d62728"}


def path_figure(t: np.ndarray, distance: np.ndarray, verdicts: Sequence[str], typical: float, hole: float,
                norms: np.ndarray, height: int = 240) -> go.Figure:
    """Along an interpolation path of S frames: each frame's distance to the nearest test code
    (t [S], distance [S], verdicts [S]) against the thresholds of the studio's readout, and the
    code's norm (norms [S]) on a second axis, where a linear path's dip toward 0 shows."""
    fig = go.Figure()
    fig.add_hrect(y0=0, y1=typical, fillcolor=VERDICT_COLOURS["typical"], opacity=0.08, line_width=0)
    fig.add_hline(y=hole, line={"color": VERDICT_COLOURS["hole"], "dash": "dot", "width": 1},
                  annotation_text="a hole beyond this", annotation_position="top left")
    fig.add_trace(go.Scatter(x=t, y=distance, mode="lines+markers", name="distance to nearest test digit",
                             marker={"size": 9, "color": [VERDICT_COLOURS.get(v, "#7f7f7f") for v in verdicts]},
                             line={"color": "#7f7f7f"}, text=list(verdicts),
                             hovertemplate="t %{x:.2f}: %{y:.2f} away (%{text})<extra></extra>"))
    fig.add_trace(go.Scatter(x=t, y=norms, mode="lines", name="norm of the code |z|", yaxis="y2",
                             line={"color": "#1f77b4", "dash": "dash"},
                             hovertemplate="t %{x:.2f}: |z| %{y:.2f}<extra></extra>"))
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      legend={"orientation": "h", "y": -0.25}, xaxis_title="t (0: from, 1: to)",
                      yaxis={"title": "distance", "rangemode": "tozero"},
                      yaxis2={"title": "|z|", "overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False})
    return fig
