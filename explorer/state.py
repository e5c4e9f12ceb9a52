"""The app's one latent code, and the callbacks that write it, as plain functions over a session-state mapping.

The code lives under one key (CODE_KEY) as a `CodeState`. Everything that moves it goes through
`set_code`: the studio's sliders on release, a map click, an upload, a drawing, the buttons and a
link. Writers other than the studio bump `rev`, which tells the browser to jump to the new code;
the studio's own releases keep `rev`, so a rerun never yanks a slider the user is still holding.
Streamlit session state is a MutableMapping, so these are tested with a plain dict.

One truth across models: a code remembers the model it was made on (`CodeState.model`). When the
learner switches model, `on_model` makes the code true for the new one: a code that came from an
image (a test digit, the upload, the drawing) follows its image and is encoded again by the new
model; any other code (sliders, a prior draw, a link, a file) keeps its numbers and says so
("carried over from default"). Test digits are named by their MNIST test-set index everywhere
(`SELECTED_KEY`, links, captions); `digit_row` finds the atlas row, since a subset atlas (the beta
sweep's) holds only some of the test set.

Downloads are made when clicked, in a thread of the server that has no session: `LiveCode` is a
box in session state that every write updates, so a download reads the code of that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
from typing import Any, Callable, Mapping, MutableMapping, Sequence

import numpy as np

from explorer.codes import clip_code

CODE_KEY = "latent_code"
SELECTED_KEY = "selected_index"  # MNIST test-set index of the digit shown beside the map (not an atlas row)
MAP_KEY = "latent_map"
NOISE_KEY = "noise_source"  # which digit the posterior-noise panel shows
SLIDER_STEP = 0.05
STUDIO = "sliders"  # the source name of codes released by the studio
LIVE_KEY = "_live_code"  # the LiveCode box downloads read when clicked
START_DIGIT = 0  # MNIST test digit #0, a clear 7: the first code a session shows (not z = 0, a blur)


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
    model: str | None = None  # the model the code is true for; None until the page stamps it (on_model)
    digit: int | None = None  # MNIST test index when the code is that test digit's posterior mean
    carried_from: str | None = None  # the model whose code this is, shown unchanged on `model`

    def label(self) -> str:
        """Where the code came from, in words that stay true on the model it is shown on."""
        if self.carried_from:
            return f"{self.source}, carried over unchanged from {self.carried_from}"
        return self.source

    def shown(self) -> tuple[float, ...]:
        """The code the studio gets with this revision."""
        return self.z if self.anchor is None else self.anchor

    def array(self) -> np.ndarray:
        return np.array(self.z, dtype=np.float32)


def snap(z: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Clip to the slider range and round to the slider step, as Python floats (what a slider shows)."""
    return tuple(round(round(float(v) / SLIDER_STEP) * SLIDER_STEP, 2) + 0.0 for v in clip_code(z))


class LiveCode:
    """A mutable box holding the session's current CodeState; every write here updates it.

    A download's data is made when it is clicked, in a server thread without the session: it reads
    `box.cs`, so the file holds the code of that moment even if the panel has not rerun since."""

    def __init__(self, cs: CodeState | None = None) -> None:
        self.cs = cs


def live(state: MutableMapping[str, Any]) -> LiveCode:
    """The session's LiveCode box (created once; the same object for the whole session)."""
    box = state.get(LIVE_KEY)
    if not isinstance(box, LiveCode):
        box = LiveCode(state.get(CODE_KEY) if isinstance(state.get(CODE_KEY), CodeState) else None)
        state[LIVE_KEY] = box
    return box


def _store(state: MutableMapping[str, Any], cs: CodeState) -> CodeState:
    state[CODE_KEY] = cs
    if isinstance(box := state.get(LIVE_KEY), LiveCode):  # made by the first panel that offers a download
        box.cs = cs
    return cs


def clicked_label(index: int) -> str:
    """The noise panel's option (and the code's source) for a selected test digit (MNIST test index):
    clicked on the map, named by a link, or the first digit a session shows."""
    return f"test digit #{index}"


def a_digit(d: int) -> str:
    """'a 7', 'an 8': the digit with its article."""
    return f"an {d}" if int(d) == 8 else f"a {d}"


def digit_number(test_index: np.ndarray | None, row: int) -> int:
    """The MNIST test-set index of atlas row `row` (test_index [N] of a subset atlas, or None: row i is digit i)."""
    return int(row) if test_index is None else int(test_index[row])


def digit_row(test_index: np.ndarray | None, size: int, number: int) -> int | None:
    """The atlas row holding MNIST test digit `number`, or None if the atlas (of `size` rows) does not hold it."""
    number = int(number)
    if test_index is None:
        return number if 0 <= number < size else None
    index = np.asarray(test_index, dtype=np.int64)
    pos = int(np.searchsorted(index, number))
    return pos if pos < len(index) and index[pos] == number else None


def current(state: MutableMapping[str, Any], dim: int) -> CodeState:
    """The code state, created (zeros) if missing or made for another latent size."""
    cs = state.get(CODE_KEY)
    if not isinstance(cs, CodeState) or len(cs.z) != dim:
        rev = cs.rev + 1 if isinstance(cs, CodeState) else 0
        z = snap(np.zeros(dim))
        cs = _store(state, CodeState(z, rev, "start", z))
    return cs


def current_code(state: MutableMapping[str, Any], dim: int) -> np.ndarray:
    """The current code as float32 [dim]."""
    return current(state, dim).array()


def set_code(state: MutableMapping[str, Any], z: Sequence[float] | np.ndarray, source: str,
             digit: int | None = None, model: str | None = None) -> CodeState:
    """Write code z [D] (clipped and snapped); a new revision, so the studio follows. `digit`: the
    MNIST test index when z is that digit's posterior mean; `model`: the model z is made on (None:
    the one the page shows next, stamped by on_model)."""
    old = state.get(CODE_KEY)
    rev = old.rev + 1 if isinstance(old, CodeState) else 1
    z = snap(z)
    return _store(state, CodeState(z, rev, source, z, model, digit))


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
    _store(state, CodeState(snap(arr), old.rev, STUDIO, old.shown(), old.model))
    return True


def on_model(state: MutableMapping[str, Any], model: str, dim: int,
             sources: Mapping[str, np.ndarray] | None = None,
             digit_code: Callable[[int], np.ndarray | None] | None = None) -> CodeState:
    """Make the code true for `model` (latent size `dim`); call on every run before anything shows it.

    A code written since the last call (model None) is stamped with `model`. A code made on another
    model follows its source: a test digit's code becomes that digit's code on `model`
    (`digit_code(n)`, None if the new atlas lacks it), the upload's or the drawing's becomes its
    encoding by `model` (`sources`, by source name); any other code keeps its numbers and is
    labelled as carried over (back on its own model, it is its own again). A code of another
    latent size cannot carry over: the studio starts from zeros and says why.
    """
    cs = state.get(CODE_KEY)
    if not isinstance(cs, CodeState):
        cs = current(state, dim)
    if cs.model == model and len(cs.z) == dim:
        return cs
    if cs.model is None and len(cs.z) == dim:
        return _store(state, replace(cs, model=model))
    if cs.digit is not None and digit_code is not None and (z := digit_code(cs.digit)) is not None:
        return set_code(state, z, cs.source, digit=cs.digit, model=model)
    if sources and cs.source in sources:
        return set_code(state, sources[cs.source], cs.source, model=model)
    if len(cs.z) != dim:
        z = snap(np.zeros(dim))
        return _store(state, CodeState(z, cs.rev + 1, f"zeros ({cs.model}'s code has {len(cs.z)} numbers, "
                                                         f"{model} needs {dim})", z, model))
    origin = cs.carried_from or cs.model
    carried = None if origin == model else origin
    return _store(state, CodeState(cs.z, cs.rev + 1, cs.source, cs.z, model, None, carried))


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
    """The customdata of the first clicked point of a plotly selection, as an int, or None.

    Colour-by-class makes one trace per class, so point indices are per trace; the digit's index
    travels in customdata instead (the MNIST test index on the explorer's map).
    """
    for cd in selected_customdata(selection):
        try:
            return int(cd)
        except (TypeError, ValueError):
            continue
    return None


def select_digit(state: MutableMapping[str, Any], index: int, mu: np.ndarray,
                 test_index: np.ndarray | None = None, source: str | None = None) -> bool:
    """Make MNIST test digit `index` the selected one and load its posterior mean as the code.

    mu [N, D] are the atlas's codes and test_index [N] its rows' test indices (None: row i is digit
    i). False, and nothing changes, if the atlas does not hold that digit."""
    row = digit_row(test_index, len(mu), index)
    if row is None:
        return False
    set_code(state, mu[row], source or clicked_label(index), digit=int(index))
    state[SELECTED_KEY] = int(index)
    state[NOISE_KEY] = clicked_label(index)  # show the digit just clicked in the noise panel
    return True


def on_map_select(state: MutableMapping[str, Any], mu: np.ndarray, key: str = MAP_KEY,
                  test_index: np.ndarray | None = None) -> int | None:
    """Map-click callback: load the clicked test digit's posterior mean as the code; its MNIST test
    index (the map's customdata), or None."""
    index = selected_point(state.get(key))
    if index is None or not select_digit(state, index, mu, test_index):
        return None
    return index
