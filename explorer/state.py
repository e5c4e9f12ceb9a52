"""Slider state and the callbacks that write it, as plain functions over a session-state mapping.

Streamlit allows setting a keyed widget's value only in a callback that runs before the widget is
drawn; these functions are those callbacks' bodies, so they are tested with a plain dict.
"""

from __future__ import annotations

from typing import Any, MutableMapping

import numpy as np

from explorer.codes import clip_code

SELECTED_KEY = "selected_index"  # test-set index whose digit is shown beside the map
MAP_KEY = "latent_map"
NOISE_KEY = "noise_source"  # which digit the posterior-noise panel shows
SLIDER_STEP = 0.05


def clicked_label(index: int) -> str:
    """The noise panel's option for a clicked test digit."""
    return f"clicked test digit #{index}"


def slider_key(i: int) -> str:
    return f"z{i}"


def init_sliders(state: MutableMapping[str, Any], dim: int) -> None:
    """Create missing slider values (0.0); existing values survive every rerun."""
    for i in range(dim):
        state.setdefault(slider_key(i), 0.0)


def set_sliders(state: MutableMapping[str, Any], z: np.ndarray) -> None:
    """Write code z [D] into the sliders, clipped to their range and snapped to the slider step,
    as Python floats: the value shown is then exactly the value decoded."""
    for i, v in enumerate(clip_code(z)):
        state[slider_key(i)] = round(round(float(v) / SLIDER_STEP) * SLIDER_STEP, 2)


def current_code(state: MutableMapping[str, Any], dim: int) -> np.ndarray:
    """The code [D] the sliders show."""
    return np.array([float(state.get(slider_key(i), 0.0)) for i in range(dim)], dtype=np.float32)


def selected_point(selection: Any) -> int | None:
    """The test-set index of the first clicked point of a plotly selection, or None.

    Colour-by-class makes one trace per class, so point indices are per trace; the row index
    travels in customdata instead (a scalar or a one-element list, depending on plotly).
    """
    try:
        points = selection["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            try:
                return int(cd)
            except (TypeError, ValueError):
                continue
    return None


def on_map_select(state: MutableMapping[str, Any], mu: np.ndarray, key: str = MAP_KEY) -> int | None:
    """Map-click callback: load the clicked test digit's posterior mean mu[i] into the sliders."""
    index = selected_point(state.get(key))
    if index is None or not 0 <= index < len(mu):
        return None
    set_sliders(state, mu[index])
    state[SELECTED_KEY] = index
    state[NOISE_KEY] = clicked_label(index)  # show the digit just clicked in the noise panel
    return index
