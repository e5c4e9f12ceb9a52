"""The app's one latent code, and the callbacks that write it, as plain functions over a session-state mapping.

The code lives under one key (CODE_KEY) as a `CodeState`. Everything that moves it goes through
`set_code`: the studio's sliders on release, a map click, an upload, a drawing, the buttons and a
link. Writers other than the studio bump `rev`, which tells the browser to jump to the new code;
the studio's own releases keep `rev`, so a rerun never yanks a slider the user is still holding.
Streamlit session state is a MutableMapping, so these are tested with a plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, MutableMapping, Sequence

import numpy as np

from explorer.codes import clip_code

CODE_KEY = "latent_code"
SELECTED_KEY = "selected_index"  # test-set index whose digit is shown beside the map
MAP_KEY = "latent_map"
NOISE_KEY = "noise_source"  # which digit the posterior-noise panel shows
SLIDER_STEP = 0.05
STUDIO = "sliders"  # the source name of codes released by the studio


@dataclass(frozen=True)
class CodeState:
    """The current latent code z [D] (snapped to the slider grid), its revision and where it came from.

    `anchor` is the code as it was when `rev` was set: what the studio is told to show. Releases
    change `z` but neither `rev` nor `anchor`, so the studio's input (and the message carrying it)
    stays the same while the user drags; the browser already shows `z`.
    """

    z: tuple[float, ...]
    rev: int = 0
    source: str = "start"
    anchor: tuple[float, ...] | None = None

    def shown(self) -> tuple[float, ...]:
        """The code the studio gets with this revision."""
        return self.z if self.anchor is None else self.anchor

    def array(self) -> np.ndarray:
        return np.array(self.z, dtype=np.float32)


def snap(z: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Clip to the slider range and round to the slider step, as Python floats (what a slider shows)."""
    return tuple(round(round(float(v) / SLIDER_STEP) * SLIDER_STEP, 2) + 0.0 for v in clip_code(z))


def clicked_label(index: int) -> str:
    """The noise panel's option (and the code's source) for a clicked test digit."""
    return f"clicked test digit #{index}"


def current(state: MutableMapping[str, Any], dim: int) -> CodeState:
    """The code state, created (zeros) if missing or made for another latent size."""
    cs = state.get(CODE_KEY)
    if not isinstance(cs, CodeState) or len(cs.z) != dim:
        rev = cs.rev + 1 if isinstance(cs, CodeState) else 0
        z = snap(np.zeros(dim))
        cs = CodeState(z, rev, "start", z)
        state[CODE_KEY] = cs
    return cs


def current_code(state: MutableMapping[str, Any], dim: int) -> np.ndarray:
    """The current code as float32 [dim]."""
    return current(state, dim).array()


def set_code(state: MutableMapping[str, Any], z: Sequence[float] | np.ndarray, source: str) -> CodeState:
    """Write code z [D] (clipped and snapped); a new revision, so the studio follows."""
    old = state.get(CODE_KEY)
    rev = old.rev + 1 if isinstance(old, CodeState) else 1
    z = snap(z)
    cs = CodeState(z, rev, source, z)
    state[CODE_KEY] = cs
    return cs


def take_release(state: MutableMapping[str, Any], value: Any, dim: int) -> bool:
    """Store the code the studio sent on a slider release; False (and nothing changes) if it is malformed.

    `value` is the trigger payload {"z": [dim numbers]}; the revision stays, since the browser
    already shows this code.
    """
    z = value.get("z") if isinstance(value, dict) else None
    if not isinstance(z, list) or len(z) != dim:
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in z):
        return False  # JSON numbers only: no strings, booleans or nulls
    try:
        arr = np.array([float(v) for v in z], dtype=np.float64)
    except OverflowError:  # an int too large for a float
        return False
    if not np.isfinite(arr).all():
        return False
    old = current(state, dim)
    state[CODE_KEY] = CodeState(snap(arr), old.rev, STUDIO, old.shown())
    return True


def selected_customdata(selection: Any) -> list[Any]:
    """The customdata of each clicked point of a plotly selection event, in order (points without
    any are skipped). Plotly gives a scalar or a one-element list, depending on the trace."""
    try:
        points = selection["selection"]["points"]
    except (KeyError, TypeError):
        return []
    found = []
    for p in points:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if isinstance(cd, (list, tuple)):
            cd = cd[0] if cd else None
        if cd is not None:
            found.append(cd)
    return found


def selected_point(selection: Any) -> int | None:
    """The test-set index of the first clicked point of a plotly selection, or None.

    Colour-by-class makes one trace per class, so point indices are per trace; the row index
    travels in customdata instead.
    """
    for cd in selected_customdata(selection):
        try:
            return int(cd)
        except (TypeError, ValueError):
            continue
    return None


def select_digit(state: MutableMapping[str, Any], index: int, mu: np.ndarray) -> None:
    """Make test digit `index` the selected one and load its posterior mean mu[index] as the code."""
    set_code(state, mu[index], clicked_label(index))
    state[SELECTED_KEY] = index
    state[NOISE_KEY] = clicked_label(index)  # show the digit just clicked in the noise panel


def on_map_select(state: MutableMapping[str, Any], mu: np.ndarray, key: str = MAP_KEY) -> int | None:
    """Map-click callback: load the clicked test digit's posterior mean mu[i] as the code."""
    index = selected_point(state.get(key))
    if index is None or not 0 <= index < len(mu):
        return None
    select_digit(state, index, mu)
    return index
