"""Plotly figures and image grids the app shows. Pure functions of arrays; no Streamlit here.

The 10k-point map uses WebGL (Scattergl), one trace per digit so the legend toggles classes; each
point carries its test-set row index in customdata (hover and click read it).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from common.atlas_format import Atlas
from explorer.grids import tile
from explorer.projection import place
from explorer.studio import NeighbourSpacing, plausibility

# Ten distinguishable colours (Plotly's D3 palette), digit d gets DIGIT_COLOURS[d].
DIGIT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


# The map's background (PCA): where the encoded test digits are dense, sparse or absent.
DENSITY_CLASSES = ("no digit here (a hole)", "sparse", "dense (80 % of digits)")  # short: legend room
# (the 3x3-smoothed grid's densest cells holding DENSE_SHARE of its mass)
DENSITY_COLOURS = ("#f6d3d3", "#fbefd9", "#e6f2e1")  # pale red, orange, green: the studio's verdict colours
DENSE_SHARE = 0.8  # the densest cells that together hold this share of the codes are "dense"
DENSITY_BINS = 60
OFF_DATA_COLOUR = "#d62728"


def padded_range(values: np.ndarray, pad: float = 0.12) -> tuple[float, float]:
    """(lo, hi) of values [N] widened by `pad` of their span on each side."""
    lo, hi = float(np.min(values)), float(np.max(values))
    span = max(hi - lo, 1e-6)
    return lo - pad * span, hi + pad * span


def density_grid(coords: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float],
                 bins: int = DENSITY_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x centres [bins], y centres [bins], class [bins_y, bins_x]) of coords [N, 2] on a grid:
    0 = absent (no code in the cell or its 8 neighbours), 1 = sparse, 2 = dense (the densest cells
    that together hold DENSE_SHARE of the codes: a highest-density region). Costs about a millisecond
    for 10k codes."""
    counts, xe, ye = np.histogram2d(coords[:, 0], coords[:, 1], bins=bins, range=[x_range, y_range])
    padded = np.pad(counts, 1)
    # 3x3 box sum: a one-cell gap inside a cluster is not a hole, only a coarse grid's accident
    smooth = sum(padded[1 + dx: 1 + dx + bins, 1 + dy: 1 + dy + bins] for dx in (-1, 0, 1) for dy in (-1, 0, 1))
    # the highest-density region on the smoothed counts (each code counted in 9 cells, so shares hold)
    order = np.sort(smooth.ravel())[::-1]
    cut = order[min(np.searchsorted(np.cumsum(order), DENSE_SHARE * order.sum()), len(order) - 1)]
    classes = np.where(smooth == 0, 0, np.where(smooth >= max(cut, 1), 2, 1))
    return (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2, classes.T  # rows are y for plotly's Heatmap


def _density_traces(coords: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float]) -> list:
    xc, yc, classes = density_grid(coords, x_range, y_range)
    scale = [[0.0, DENSITY_COLOURS[0]], [1 / 3, DENSITY_COLOURS[0]], [1 / 3, DENSITY_COLOURS[1]],
             [2 / 3, DENSITY_COLOURS[1]], [2 / 3, DENSITY_COLOURS[2]], [1.0, DENSITY_COLOURS[2]]]
    # zsmooth "best" interpolates the class values between cells and the stepped colour scale cuts
    # them back into three classes: smooth borders where plain cells would draw stairs.
    traces: list = [go.Heatmap(x=xc, y=yc, z=classes, zmin=-0.5, zmax=2.5, colorscale=scale, showscale=False,
                               zsmooth="best", hoverinfo="skip", name="where the test digits are")]
    for name, colour in zip(DENSITY_CLASSES, DENSITY_COLOURS):  # legend keys for the background
        traces.append(go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgroup="background",
                                 legendrank=1001,  # after the digits and markers
                                 marker={"size": 12, "symbol": "square", "color": colour, "line": {"width": 1, "color": "#999"}},
                                 hoverinfo="skip"))
    return traces


def latent_map_figure(coords: np.ndarray, labels: np.ndarray, projection: str,
                      markers: Sequence[tuple] = (), height: int = 560,
                      webgl: bool = True, *, holes: bool | None = None, axis_range: tuple[float, float] | None = None,
                      ticks: bool = False, pan: bool = False) -> go.Figure:
    """Scatter of coords [N, 2] coloured by labels [N], with markers on top.

    markers: (name, xy [2], symbol) or (name, xy [2], symbol, off_data) tuples; a non-empty off_data
    (e.g. "a hole, 5.47 from the nearest test digit") says the code lies off the data: on t-SNE,
    whose k-NN placement would put it among digits all the same, it is drawn apart, in an
    "off the data" box left of the map, instead of among neighbours. PCA places every code exactly.
    holes (default: on for PCA): shade where the codes are dense, sparse and absent.
    axis_range: fixed (lo, hi) for both axes (maps that must compare share it); ticks: label the axes.
    pan: the learner chose to pan and zoom; otherwise a drag or swipe does nothing to the map (the
    page scrolls on a phone) and a click still picks a point.
    webgl=False draws SVG: for a couple of thousand points it draws sooner than WebGL, whose start-up
    costs a software-rendered browser about a second.
    """
    scatter = go.Scattergl if webgl else go.Scatter
    holes = projection == "PCA" if holes is None else holes
    if axis_range is not None:
        x_range = y_range = axis_range
    else:
        # PCA places every code exactly, so the axes hold the markers too (a far-off upload stays on screen)
        on_map = [np.asarray(mk[1], dtype=float) for mk in markers if projection == "PCA" or not (len(mk) > 3 and mk[3])]
        every = np.vstack([coords, *on_map]) if on_map else coords
        x_range, y_range = padded_range(every[:, 0]), padded_range(every[:, 1])
    off = [mk for mk in markers if len(mk) > 3 and mk[3] and projection != "PCA"]
    if off:  # room for the "off the data" box left of the map
        x_range = (x_range[0] - 0.3 * (x_range[1] - x_range[0]), x_range[1])
    traces: list = _density_traces(coords, x_range, y_range) if holes else []
    index = np.arange(len(labels))
    for d in range(10):
        m = labels == d
        traces.append(scatter(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=str(d),
            marker={"size": 4, "color": DIGIT_COLOURS[d], "opacity": 0.7},
            customdata=index[m], hovertemplate=f"digit {d}<br>test index %{{customdata}}<extra></extra>",
        ))
    shapes, notes = [], []
    span_x, span_y = x_range[1] - x_range[0], y_range[1] - y_range[0]
    box = (x_range[0] + 0.02 * span_x, x_range[0] + 0.2 * span_x)
    for i, mk in enumerate(markers):
        name, xy, symbol = mk[0], mk[1], mk[2]
        flagged = mk[3] if len(mk) > 3 else ""  # off the data: drawn open and red on both maps
        note = flagged if projection != "PCA" else ""  # t-SNE: drawn apart, in the box
        if note:
            xy = (sum(box) / 2, y_range[1] - (0.2 + 0.16 * len(notes)) * span_y)
            notes.append(note)
        # WebGL traces are drawn on a canvas above the SVG layer: markers must be WebGL too to show.
        traces.append(scatter(
            x=[float(xy[0])], y=[float(xy[1])], mode="markers", name=f"{name} (off the data)" if flagged else name,
            hovertext=[f"{name}: {flagged}" if flagged else name], hoverinfo="text",
            marker={"size": 18, "symbol": symbol, "color": "white" if flagged else "black",
                    "line": {"width": 3 if flagged else 2, "color": OFF_DATA_COLOUR if flagged else "white"}},
        ))
    annotations = []
    if notes:
        shapes.append({"type": "rect", "x0": box[0], "x1": box[1], "y0": y_range[1] - (0.1 + 0.16 * len(notes)) * span_y,
                       "y1": y_range[1] - 0.03 * span_y, "line": {"color": OFF_DATA_COLOUR, "dash": "dash", "width": 1},
                       "fillcolor": "rgba(214,39,40,0.05)", "layer": "below"})
        annotations.append({"x": sum(box) / 2, "y": y_range[1] - 0.05 * span_y, "text": "off the data:<br>no place on t-SNE",
                            "showarrow": False, "yanchor": "top", "font": {"size": 11, "color": OFF_DATA_COLOUR}})
    axis = {"showticklabels": ticks, "zeroline": False, "showgrid": ticks, "gridcolor": "#eee"}
    # Shared axes (axis_range) must keep their range: constrain="domain" makes a scale-anchored axis
    # give up plot width instead. A map of its own fills its box and lets the range grow instead.
    constrain = "domain" if axis_range is not None else "range"
    # The whole layout in the one constructor call: update_layout / update_xaxes / update_yaxes
    # re-validate the figure each time (a map click or a drawing rebuilds this figure: 24 ms -> ~9 ms).
    return go.Figure(data=traces, layout={
        "height": height, "margin": {"l": 50, "r": 10, "t": 30, "b": 40} if ticks else {"l": 10, "r": 10, "t": 30, "b": 10},
        # short: on a phone the chart toolbar (top right) covers a long title
        "title": {"text": f"{projection} of {len(labels):,} encoded digits", "font": {"size": 14}, "x": 0, "xanchor": "left"},
        "clickmode": "event+select", "dragmode": "pan" if pan else False, "uirevision": projection,
        "meta": {"page_scrolls": not pan},  # read by app.main's touch script: keep dragmode False in the browser
        "shapes": shapes, "annotations": annotations,
        # beyond the shaded grid there is no code either: the plot's own background says "absent"
        "plot_bgcolor": DENSITY_COLOURS[0] if holes else None,
        # the legend below the plot: beside it, it took half a column's width (and most of a phone's)
        "legend": {"orientation": "h", "x": 0, "y": -0.02, "yanchor": "top", "title": {"text": "digit"}},
        "xaxis": {"range": list(x_range), "title": {"text": "PC 1 (latent units)" if ticks else None}, "constrain": constrain, **axis},
        "yaxis": {"range": list(y_range), "title": {"text": "PC 2" if ticks else None},
                  "scaleanchor": "x" if projection == "PCA" else None, "constrain": constrain, **axis},
    })


def posterior_figure(mu: np.ndarray, sigma: np.ndarray, kl_per_dim: np.ndarray | None = None, height: int = 300,
                     order: Sequence[int] | None = None) -> go.Figure:
    """mu +- sigma per latent dimension [D] against the prior's +-1 band: where the code is and how noisy.
    `order`: the dimensions top to bottom (the studio's KL order); default z0 .. z(D-1)."""
    idx = list(range(len(mu))) if order is None else [int(i) for i in order]
    mu, sigma = np.asarray(mu)[idx], np.asarray(sigma)[idx]
    kl_per_dim = None if kl_per_dim is None else np.asarray(kl_per_dim)[idx]
    dims = [f"z{i}" for i in idx]
    text = [f"KL {k:.2f}" for k in kl_per_dim] if kl_per_dim is not None else None
    return go.Figure(  # one constructor call: each add_* / update_* re-validates the figure
        data=[go.Scatter(x=mu, y=dims, mode="markers", name="mu +- sigma", text=text,
                         error_x={"type": "data", "array": sigma, "visible": True, "thickness": 2},
                         marker={"size": 9, "color": "#d62728"},
                         hovertemplate="%{y}: mu %{x:.2f}, sigma %{error_x.array:.2f}<extra></extra>")],
        layout={"height": height, "margin": {"l": 10, "r": 10, "t": 30, "b": 10}, "showlegend": False,
                "title": {"text": "q(z|x): mu +- sigma (grey: prior N(0,1) +-1)", "font": {"size": 13}},
                "shapes": [{"type": "rect", "x0": -1, "x1": 1, "y0": -0.5, "y1": len(mu) - 0.5, "fillcolor": "lightgrey",
                            "opacity": 0.35, "line": {"width": 0}}],
                "xaxis": {"range": [-4.2, 4.2], "zeroline": True}, "yaxis": {"autorange": "reversed"}})


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
                norms: np.ndarray, height: int = 300) -> go.Figure:
    """Along an interpolation path of S frames (t [S]): above, each frame's distance to the nearest
    test code (distance [S], verdicts [S]) against the studio's thresholds (typical up to `typical`,
    a hole beyond `hole`); below, on its own axis, the code's norm |z| (norms [S]), where a linear
    path's dip toward 0 shows. Two panels, not two y axes over one plot: a norm line drawn across the
    hole threshold would read as "entering a hole". Titles sit horizontally at each panel's top left,
    clear of the chart toolbar (top right)."""
    # One constructor call with the whole layout: make_subplots and the update_* calls it replaces
    # re-validated the figure at every step (35 ms a figure; this one ~5 ms), on every full rerun of
    # the page and every follow of the studio. Panels: 0.62 / 0.38 of the height left by a 0.16 gap.
    gap, upper = 0.16, 0.62
    top_domain, bottom_domain = [1 - upper * (1 - gap), 1.0], [0.0, (1 - upper) * (1 - gap)]
    top = max(float(np.max(distance)), hole) * 1.12
    colour = VERDICT_COLOURS["hole"]
    band = lambda y0, y1, fill, opacity: {"type": "rect", "xref": "x domain", "yref": "y", "x0": 0, "x1": 1,  # noqa: E731
                                          "y0": y0, "y1": y1, "fillcolor": fill, "opacity": opacity, "line": {"width": 0}}
    title = lambda text, y: {"text": text, "x": 0, "xanchor": "left", "xref": "paper", "y": y, "yanchor": "bottom",  # noqa: E731
                             "yref": "paper", "showarrow": False, "font": {"size": 12}}
    return go.Figure(
        data=[go.Scatter(x=t, y=distance, mode="lines+markers", name="distance to nearest test digit",
                         marker={"size": 9, "color": [VERDICT_COLOURS.get(v, "#7f7f7f") for v in verdicts]},
                         line={"color": "#7f7f7f"}, text=list(verdicts), xaxis="x", yaxis="y",
                         hovertemplate="t %{x:.2f}: %{y:.2f} away (%{text})<extra></extra>"),
              go.Scatter(x=t, y=norms, mode="lines+markers", name="|z|", marker={"size": 5}, xaxis="x2", yaxis="y2",
                         line={"color": "#1f77b4"}, hovertemplate="t %{x:.2f}: |z| %{y:.2f}<extra></extra>")],
        layout={
            "height": height, "margin": {"l": 10, "r": 10, "t": 24, "b": 10}, "showlegend": False, "dragmode": False,
            "xaxis": {"anchor": "y", "domain": [0.0, 1.0], "matches": "x2", "showticklabels": False},
            "xaxis2": {"anchor": "y2", "domain": [0.0, 1.0], "title": {"text": "t along the path (0: from, 1: to)"}},
            "yaxis": {"anchor": "x", "domain": top_domain, "range": [0, top], "nticks": 5},
            "yaxis2": {"anchor": "x2", "domain": bottom_domain, "rangemode": "tozero", "nticks": 4, "tickformat": ".1f"},
            "shapes": [band(0, typical, VERDICT_COLOURS["typical"], 0.1), band(hole, top, colour, 0.07),
                       {"type": "line", "xref": "x domain", "yref": "y", "x0": 0, "x1": 1, "y0": hole, "y1": hole,
                        "line": {"color": colour, "dash": "dot", "width": 1}}],
            "annotations": [title("distance to the nearest test digit (latent units)", top_domain[1]),
                            title("norm of the code |z|", bottom_domain[1]),
                            {"text": f"a hole beyond {hole:.2f}", "x": 0, "xanchor": "left", "xref": "x domain", "y": hole,
                             "yanchor": "bottom", "yref": "y", "showarrow": False, "font": {"size": 11, "color": colour}}],
        })


def map_marker(name: str, z: np.ndarray, atlas: Atlas, projection: str, spacing: NeighbourSpacing,
               symbol: str) -> tuple[str, tuple[float, float], str, str]:
    """The (name, xy, symbol, off_data) tuple latent_map_figure draws for code z [D] (an upload, a
    drawing): placed on the map, and flagged as off the data when the studio's verdict
    (explorer.studio.plausibility against `spacing`) is a hole; on t-SNE, whose k-NN placement always
    lands among digits, the map then draws it apart instead of at that place."""
    xy = tuple(float(v) for v in place(z, atlas, projection))
    p = plausibility(z, atlas.mu, spacing)
    note = f"a hole, {p.distance:.2f} from the nearest test digit" if p.verdict == "hole" else ""
    return (name, xy, symbol, note)
