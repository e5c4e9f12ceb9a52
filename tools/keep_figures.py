"""README pictures of the "Make and keep" panel, made by the same functions the app's downloads use.

    python -m tools.keep_figures CHECKPOINT [--out docs/]

writes OUT/traversal.png (every latent dimension by KL, 9 steps from -2.5 to +2.5 around z = 0,
inactive units below a wider gap), OUT/interpolation.png and OUT/interpolation.gif (a spherical
path of 12 frames from the mean code of the 1s to the mean code of the 7s, the GIF ping-pong at
120 ms a frame). NumPy and Pillow only: no torch, like the app.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from common.fileio import atomic_write_bytes
from explorer import codes, exports, grids, interpolate
from explorer.bundle import ExplorerModel, ModelUnavailableError, load_explorer_model
from explorer.studio import kl_order

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs"


def traversal_png(m: ExplorerModel, span: float = 2.5, steps: int = 9, scale: int = 3) -> bytes:
    """The traversal grid around z = 0 as PNG bytes (rows by KL, inactive units set apart)."""
    order = kl_order(m.atlas.kl_per_dim, m.atlas.active)
    n_active = int(np.asarray(m.atlas.active, dtype=bool).sum())
    grid = codes.decode_pixels(m.model, grids.traversal_codes(np.zeros(m.latent_dim), order, grids.traversal_offsets(span, steps)))
    gaps = [n_active] if 0 < n_active < len(order) else []
    return exports.png_bytes(grids.tile(grid, scale=scale, row_gaps=gaps))


def interpolation_files(m: ExplorerModel, start: int = 1, end: int = 7, steps: int = 12, scale: int = 3) -> tuple[bytes, bytes]:
    """(PNG strip, ping-pong GIF) of a slerp path between the mean codes of two digit classes."""
    means = codes.class_means(m.atlas.mu, m.atlas.labels)
    path = interpolate.interpolate(means[start], means[end], steps, "slerp")
    images = codes.decode_pixels(m.model, path.codes)
    frames = np.stack([grids.tile(img[None], scale=4) for img in images])
    return exports.png_bytes(grids.tile(images, scale=scale)), exports.gif_bytes(frames, 120, pingpong=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.keep_figures", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = p.parse_args(argv)
    try:
        m = load_explorer_model(args.checkpoint)
    except ModelUnavailableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    strip, gif = interpolation_files(m)
    for name, data in (("traversal.png", traversal_png(m)), ("interpolation.png", strip), ("interpolation.gif", gif)):
        path = args.out / name
        atomic_write_bytes(path, lambda f, data=data: f.write(data))
        print(f"wrote {path} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
