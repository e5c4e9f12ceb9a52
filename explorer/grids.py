"""Traversal grids (one latent dimension per row, steps around a center per column) and the crisp
tiling of digits into one picture, for the page and for the PNG/GIF exports. NumPy only."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

MIN_TRAVERSAL_STEPS, MAX_TRAVERSAL_STEPS = 2, 15
MAX_SCALE = 16
MAX_GUTTER = 16
ROW_GAP_FACTOR = 3  # a row gap (inactive units set apart) adds this many gutters' height above its row


def traversal_offsets(span: float, steps: int) -> np.ndarray:
    """`steps` evenly spaced offsets from -span to +span: float64 [steps] (odd steps include 0)."""
    if isinstance(span, bool) or not isinstance(span, (int, float, np.number)) or not math.isfinite(span) or span <= 0:
        raise ValueError(f"the traversal span must be a finite number > 0, got {span!r}")
    if (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
            or not MIN_TRAVERSAL_STEPS <= steps <= MAX_TRAVERSAL_STEPS):
        raise ValueError(f"a traversal has {MIN_TRAVERSAL_STEPS} to {MAX_TRAVERSAL_STEPS} columns, got {steps!r}")
    return np.linspace(-float(span), float(span), int(steps))


def traversal_codes(center: np.ndarray, order: Sequence[int], offsets: np.ndarray,
                    scale: np.ndarray | None = None) -> np.ndarray:
    """Codes of a traversal grid: float32 [len(order), len(offsets), D].

    Row r moves dimension order[r] alone, to center[d] + offsets[c] * scale[d]; the other
    dimensions stay at the center. scale None means latent units; a posterior sigma [D] makes the
    steps "in units of its own sigma", so each row spans the width of q(z|x) in that dimension.
    """
    c = np.asarray(center, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"the center must be one code [D], got shape {c.shape}")
    s = np.ones_like(c) if scale is None else np.asarray(scale, dtype=np.float64)
    if s.shape != c.shape:
        raise ValueError(f"scale must have the center's shape {c.shape}, got {s.shape}")
    off = np.asarray(offsets, dtype=np.float64)
    if off.ndim != 1 or off.size == 0:
        raise ValueError(f"offsets must be a non-empty list [C], got shape {off.shape}")
    dims = [int(d) for d in order]
    if any(not 0 <= d < c.size for d in dims):
        # Negative indices would wrap around silently and label the row with the wrong unit.
        raise ValueError(f"order must hold dimensions 0 to {c.size - 1}, got {dims}")
    grid = np.broadcast_to(c, (len(dims), off.size, c.size)).copy()
    for r, d in enumerate(dims):
        grid[r, :, d] = c[d] + off * s[d]
    return grid.astype(np.float32)


def tile_size(rows: int, cols: int, h: int, w: int, scale: int = 4, gutter: int = 2,
              row_gaps: int = 0) -> tuple[int, int]:
    """(H, W) of `tile`'s picture for rows x cols digits of h x w pixels with `row_gaps` row gaps."""
    height = rows * h * scale + (rows - 1) * gutter + row_gaps * ROW_GAP_FACTOR * gutter
    return height, cols * w * scale + (cols - 1) * gutter


def tile(images: np.ndarray, scale: int = 4, gutter: int = 2, row_gaps: Sequence[int] = (),
         gutter_value: int = 255) -> np.ndarray:
    """One uint8 picture [H, W] of digits in [0, 1]: a grid [R, C, h, w] or a strip [C, h, w] (one row).

    Each digit is upscaled `scale` times with nearest-neighbour pixels (crisp when projected, no
    blur), with a `gutter`-pixel line of `gutter_value` between digits (none around the outside).
    Each row index r in `row_gaps` (1 <= r < R) gets an extra 3 * gutter pixels above it, to set
    rows apart (the inactive units). H, W are as `tile_size` says. Values are clipped to [0, 1].
    """
    imgs = np.asarray(images, dtype=np.float64)
    if imgs.ndim == 3:
        imgs = imgs[None]
    if imgs.ndim != 4 or 0 in imgs.shape:
        raise ValueError(f"expected digits [R, C, h, w] or [C, h, w], got shape {np.shape(images)}")
    if not np.isfinite(imgs).all():
        # NaN has no grey level; clipping keeps it NaN and its uint8 cast is undefined.
        raise ValueError("the digits hold NaN or infinite values")
    for name, v, hi, lo in (("scale", scale, MAX_SCALE, 1), ("gutter", gutter, MAX_GUTTER, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {v!r}")
    if (isinstance(gutter_value, bool) or not isinstance(gutter_value, (int, np.integer))
            or not 0 <= gutter_value <= 255):
        raise ValueError(f"gutter_value must be a grey level from 0 to 255, got {gutter_value!r}")
    rows, cols, h, w = imgs.shape
    gaps = [int(r) for r in row_gaps]
    if len(set(gaps)) != len(gaps) or any(not 1 <= r < rows for r in gaps):
        # A gap above row 0 or below the last row would be a border, which the picture never has.
        raise ValueError(f"row_gaps must be distinct rows from 1 to {rows - 1}, got {gaps}")

    height, width = tile_size(rows, cols, h, w, int(scale), int(gutter), len(gaps))
    out = np.full((height, width), gutter_value, dtype=np.uint8)
    pixels = np.rint(np.clip(imgs, 0.0, 1.0) * 255.0).astype(np.uint8)
    big = pixels.repeat(scale, axis=2).repeat(scale, axis=3)  # [R, C, h*scale, w*scale]
    y = 0
    for r in range(rows):
        if r in gaps:
            y += ROW_GAP_FACTOR * gutter
        for c in range(cols):
            x = c * (w * scale + gutter)
            out[y: y + h * scale, x: x + w * scale] = big[r, c]
        y += h * scale + gutter
    return out
