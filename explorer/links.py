"""Shareable links: the view (model, code, projection, selected test digit) to and from URL query values.

    ?model=default.pt&z=0.25,-1.3,0,0,0,0,0,0&map=tsne&digit=123

`digit` is the MNIST test-set index of the selected digit, never an atlas row: a subset atlas (the
beta sweep's keep 2,006 digits) holds digit 4970 in row 1000, and its link says digit=4970.

Reading is forgiving: each bad or stale value (an unknown model, a code of the wrong length, NaN,
out of range, an index past the test set) is dropped or clipped with a short notice, and the rest
of the link still applies. Nothing here raises on user input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from explorer.codes import SLIDER_LIMIT

MODEL, CODE, MAP, DIGIT = "model", "z", "map", "digit"
MAP_VALUES = {"pca": "PCA", "tsne": "t-SNE"}  # URL value -> projection name
MAX_VALUE_CHARS = 400  # longer query values are refused before parsing


@dataclass(frozen=True)
class LinkView:
    """What a link asks for, each part None when absent or unusable; `notices` say what was dropped."""

    code: tuple[float, ...] | None = None
    projection: str | None = None
    digit: int | None = None
    notices: tuple[str, ...] = ()


def encode(model: str, z: Sequence[float] | np.ndarray, projection: str, digit: int | None) -> dict[str, str]:
    """Query values for a view; the code at 2 decimals (the slider step is 0.05)."""
    params = {MODEL: model, CODE: ",".join(_number(v) for v in z),
              MAP: next(k for k, v in MAP_VALUES.items() if v == projection)}
    if digit is not None:
        params[DIGIT] = str(int(digit))
    return params


def _number(v: float) -> str:
    text = f"{float(v):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def read_model(params: Mapping[str, str], names: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The link's model if it names one of `names`; else None and, if it named another, a notice."""
    name = params.get(MODEL)
    if name is None:
        return None, ()
    if name in names:
        return name, ()
    shown = name[:60] + ("…" if len(name) > 60 else "")
    return None, (f"The link's model “{shown}” is not in the models folder; showing {names[0] if names else 'none'}.",)


def read_view(params: Mapping[str, str], dim: int, n_digits: int, what: str = "link",
              held: Callable[[int], bool] | None = None) -> LinkView:
    """The code, projection and selected digit a link asks for, for a model of latent size `dim`
    whose atlas holds `n_digits` test digits: test digits 0 .. n_digits - 1, or, for a subset atlas,
    those for which `held(index)` is true. Notices name the link (or `what` else carried the values)."""
    notices: list[str] = []
    code = _read_code(params.get(CODE), dim, notices, what)
    projection = None
    if (raw := params.get(MAP)) is not None:
        projection = MAP_VALUES.get(raw.strip().lower())
        if projection is None:
            notices.append(f"The {what}'s map “{raw[:20]}” is not one of {', '.join(MAP_VALUES)}; kept the current map.")
    digit = None
    if (raw := params.get(DIGIT)) is not None:
        try:
            digit = int(raw.strip()[:12])
        except ValueError:
            digit = None
        if digit is None or digit < 0 or (held is None and digit >= n_digits):
            valid = f"between 0 and {n_digits - 1}" if held is None else "a test-set index (a whole number from 0)"
            notices.append(f"The {what}'s test digit “{raw[:20]}” is not {valid}; none selected.")
            digit = None
        elif held is not None and not held(digit):
            notices.append(f"The {what}'s test digit #{digit} is not among the {n_digits:,} test digits this "
                           "model's atlas holds; none selected.")
            digit = None
    return LinkView(code, projection, digit, tuple(notices))


def _read_code(raw: str | None, dim: int, notices: list[str], what: str) -> tuple[float, ...] | None:
    if raw is None:
        return None
    if len(raw) > MAX_VALUE_CHARS:
        notices.append(f"The {what}'s code is too long to be a code; started from the current one.")
        return None
    parts = [p.strip() for p in raw.split(",")]
    if len(parts) != dim:
        notices.append(f"The {what}'s code has {len(parts)} numbers, this model needs {dim}; started from the current one.")
        return None
    try:
        values = [float(p) for p in parts]
    except ValueError:
        notices.append(f"The {what}'s code is not a list of numbers; started from the current one.")
        return None
    if not all(math.isfinite(v) for v in values):
        notices.append(f"The {what}'s code holds NaN or infinite values; started from the current one.")
        return None
    if any(abs(v) > SLIDER_LIMIT for v in values):
        notices.append(f"The {what}'s code goes past ±{SLIDER_LIMIT:g}; clipped to the sliders' range.")
        values = [min(max(v, -SLIDER_LIMIT), SLIDER_LIMIT) for v in values]
    return tuple(values)
