"""Paths between two latent codes: spherical (slerp) or straight (linear), with optional overshoot.

Codes are float [D]; a path is S codes [S, D] at positions t [S], t = 0 at the start code and t = 1
at the end code. Overshoot runs the same curve a little past both ends (t < 0 and t > 1), which
shows where the path was heading.

Why slerp: under the N(0, I) prior, codes of high dimension concentrate on a shell of radius about
sqrt(D). The straight line between two such codes cuts through the inside of the shell, where the
prior (and the decoder's training) has little mass; slerp follows the great circle instead and,
for endpoints of equal norm, keeps the norm constant (White 2016, "Sampling Generative Networks").
`path_norms` shows the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

METHODS = ("slerp", "linear")
MIN_STEPS, MAX_STEPS = 2, 24
MAX_OVERSHOOT = 0.5

# Below these, slerp's formula divides by (almost) zero: see _slerp_weights.
_NORM_EPS = 1e-8
_SIN_EPS = 1e-6


@dataclass(frozen=True)
class Path:
    """An interpolation path: codes float32 [S, D] at t float64 [S] (0 start, 1 end, <0 / >1 overshoot)."""

    codes: np.ndarray
    t: np.ndarray
    method: str  # "slerp" | "linear"; "linear" also when slerp fell back to it


def _slerp_weights(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Weights (wa [S], wb [S]) with code = wa * a + wb * b on the great circle, or None to go linear."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < _NORM_EPS or nb < _NORM_EPS:
        # A zero code has no direction, so there is no great circle through it; the straight line
        # is the only sensible path (and what slerp tends to as one endpoint shrinks to zero).
        return None
    omega = math.acos(min(1.0, max(-1.0, float(np.dot(a / na, b / nb)))))
    sin_omega = math.sin(omega)
    if sin_omega < _SIN_EPS:
        # Parallel (omega ~ 0): slerp's limit is the straight line, and dividing by sin(omega) ~ 0
        # would only add rounding noise. Antipodal (omega ~ pi): every great circle through a and
        # -a is as good as any other, so slerp is undefined; the line through the origin is the
        # one choice that does not invent a direction.
        return None
    return np.sin((1.0 - t) * omega) / sin_omega, np.sin(t * omega) / sin_omega


def _as_code(x: object, name: str) -> np.ndarray:
    try:
        code = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"interpolate: {name} is not an array of numbers ({e})") from None
    if code.ndim != 1 or code.size == 0:
        raise ValueError(f"interpolate: {name} must be one code of shape [D], got shape {code.shape}")
    if not np.isfinite(code).all():
        raise ValueError(f"interpolate: {name} has a value that is not finite (NaN or infinity)")
    return code


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "slerp", overshoot: float = 0.0) -> Path:
    """The path of `steps` codes from a [D] to b [D], t = linspace(-overshoot, 1 + overshoot, steps).

    linear: (1 - t) a + t b. slerp: sin((1 - t) w) / sin(w) a + sin(t w) / sin(w) b, w the angle
    between a and b; it falls back to linear (and says so in `Path.method`) when a or b is ~0 or
    when they are (anti)parallel. With overshoot 0 the first and last codes are exactly a and b
    (as float32). Raises ValueError for steps outside [2, 24], overshoot outside [0, 0.5], an
    unknown method, codes of different shapes or non-finite codes.
    """
    if method not in METHODS:
        raise ValueError(f"interpolate: unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(f"interpolate: steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, got {steps!r}")
    try:
        overshoot = float(overshoot)
    except (TypeError, ValueError):
        raise ValueError(f"interpolate: overshoot must be a number, got {overshoot!r}") from None
    if not 0.0 <= overshoot <= MAX_OVERSHOOT:  # also False for NaN
        raise ValueError(f"interpolate: overshoot must be from 0 to {MAX_OVERSHOOT}, got {overshoot!r}")
    a64, b64 = _as_code(a, "a"), _as_code(b, "b")
    if a64.shape != b64.shape:
        raise ValueError(f"interpolate: a and b must have the same shape, got {a64.shape} and {b64.shape}")

    t = np.linspace(-overshoot, 1.0 + overshoot, int(steps))
    weights = _slerp_weights(a64, b64, t) if method == "slerp" else None
    used = "slerp" if weights is not None else "linear"
    wa, wb = weights if weights is not None else (1.0 - t, t)
    codes = (wa[:, None] * a64[None, :] + wb[:, None] * b64[None, :]).astype(np.float32)
    if overshoot == 0.0:
        # Both formulas already give a and b at t = 0 and 1 (x / x == 1 in IEEE arithmetic); pinning
        # the ends keeps "from a to b" exact whatever the weights' arithmetic becomes.
        codes[0], codes[-1] = a64.astype(np.float32), b64.astype(np.float32)
    return Path(codes=codes, t=t, method=used)


def path_norms(path: Path) -> np.ndarray:
    """L2 norm of every code on the path, float64 [S] (linear paths dip toward the origin, slerp does not)."""
    return np.linalg.norm(np.asarray(path.codes, dtype=np.float64), axis=1)
