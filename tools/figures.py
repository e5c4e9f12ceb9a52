"""README figures of a VAE checkpoint, drawn with Pillow only.

    python -m tools.figures CHECKPOINT [--out docs/] [--prefix seed_]

writes OUT/PREFIXreconstructions.png (test digits on top, sigmoid(decode(mu)) under each: rows
alternate original / reconstruction) and OUT/PREFIXsamples.png (decodes of z ~ N(0, I), fixed
seed, shown as pixel means). Each 28x28 digit is upscaled crisply (NEAREST) and tiles are
separated by a grey gap; the digits shown and the samples drawn are fixed, so re-runs and
different checkpoints are directly comparable.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tools import REPO_ROOT, prior_sample_means, reconstruct_means
from training.checkpoint import CheckpointError, load_vae
from common.fileio import atomic_write_bytes
from explorer.figures import image_grid as app_image_grid

SIDE = 28
GAP_GREY = 128  # explorer.figures.image_grid's gap grey: between black backgrounds and white strokes
DEFAULT_OUT: Path = REPO_ROOT / "docs"
RECONSTRUCTIONS_NAME = "reconstructions.png"
SAMPLES_NAME = "samples.png"


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pixel values [N, 784] (or [N, 28, 28]) in [0, 1] -> uint8 [N, 28, 28] (rounded, clipped)."""
    a = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    return np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8).reshape(-1, SIDE, SIDE)


def grid_size(rows: int, cols: int, scale: int = 3, gap: int = 2) -> tuple[int, int]:
    """(width, height) in pixels of a rows x cols grid: tiles of 28*scale, `gap` between them, no border."""
    tile = SIDE * scale
    return cols * tile + (cols - 1) * gap, rows * tile + (rows - 1) * gap


def image_grid(images: torch.Tensor | np.ndarray, rows: int, cols: int, scale: int = 3, gap: int = 2) -> Image.Image:
    """Greyscale grid of images [rows*cols, 784] in [0, 1], filled row by row, as a PIL image.

    The grid itself is explorer.figures.image_grid (the app's): tiles 28*scale square with crisp
    pixels, `gap` px of grey (GAP_GREY) between them. Cells beyond the images stay grey.
    """
    tiles = to_uint8(images)
    if len(tiles) > rows * cols:
        raise ValueError(f"{len(tiles)} images do not fit a {rows}x{cols} grid")
    if scale < 1 or gap < 0:
        raise ValueError(f"scale must be >= 1 and gap >= 0, got {scale}, {gap}")
    cells = np.full((rows * cols, SIDE, SIDE), GAP_GREY / 255.0, np.float32)  # empty cells: the gap's grey
    cells[: len(tiles)] = tiles / 255.0
    return Image.fromarray(app_image_grid(cells, cols=cols, scale=scale, gap=gap))


def reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, cols: int = 16, scale: int = 3,
                        gap: int = 2) -> Image.Image:
    """originals, reconstructions [K, 784] in [0, 1] -> grid with, per block of `cols` digits, a row of
    originals and directly under it the row of their reconstructions (2 * ceil(K / cols) rows)."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"shape mismatch: {tuple(originals.shape)} vs {tuple(reconstructions.shape)}")
    k = len(originals)
    blocks = -(-k // cols)
    cells = torch.zeros(2 * blocks * cols, originals.shape[1])
    filled = torch.zeros(2 * blocks * cols, dtype=torch.bool)
    for b in range(blocks):
        n = min(cols, k - b * cols)
        top, bottom = 2 * b * cols, (2 * b + 1) * cols
        cells[top : top + n] = originals[b * cols : b * cols + n].float()
        cells[bottom : bottom + n] = reconstructions[b * cols : b * cols + n].float()
        filled[top : top + n] = filled[bottom : bottom + n] = True
    img = image_grid(cells, 2 * blocks, cols, scale, gap)
    if not bool(filled.all()):  # grey out cells of a short last block instead of showing black tiles
        arr = np.asarray(img).copy()
        tile = SIDE * scale
        for idx in torch.nonzero(~filled).flatten().tolist():
            r, c = divmod(idx, cols)
            arr[r * (tile + gap) : r * (tile + gap) + tile, c * (tile + gap) : c * (tile + gap) + tile] = GAP_GREY
        img = Image.fromarray(arr)
    return img


def pick_indices(labels: torch.Tensor, n: int) -> torch.Tensor:
    """n fixed test indices cycling through the classes: first 0, first 1, ..., first 9, second 0, ...

    Deterministic and covers every class present; classes that run out are skipped. labels int64 [N].
    """
    by_class = [torch.nonzero(labels == c).flatten().tolist() for c in range(10)]
    out: list[int] = []
    rank = 0
    while len(out) < n and rank < len(labels):
        for idxs in by_class:
            if rank < len(idxs) and len(out) < n:
                out.append(idxs[rank])
        rank += 1
    return torch.tensor(out, dtype=torch.long)


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Atomically write `image` as PNG to `path` (parent folders created); returns the path."""
    path = Path(path)
    atomic_write_bytes(path, lambda f: image.save(f, format="PNG"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # the atomic temp file is 0600; a figure is meant to be shared
    return path


def render_figures(checkpoint: str | Path, test_x: torch.Tensor, test_y: torch.Tensor, out_dir: str | Path,
                   prefix: str = "", n_recon: int = 16, cols: int = 16, sample_rows: int = 8, seed: int = 0,
                   scale: int = 3, gap: int = 2) -> list[Path]:
    """Write PREFIXreconstructions.png and PREFIXsamples.png for one checkpoint into out_dir.

    test_x [N, 784] in [0, 1], test_y int64 [N]. Returns the two paths. Raises CheckpointError.
    """
    model = load_vae(checkpoint)
    idx = pick_indices(test_y, n_recon)
    originals = test_x[idx].float()
    recon = reconstruction_grid(originals, reconstruct_means(model, originals), cols, scale, gap)
    samples = image_grid(prior_sample_means(model, sample_rows * cols, seed), sample_rows, cols, scale, gap)
    out_dir = Path(out_dir)
    return [save_png(recon, out_dir / f"{prefix}{RECONSTRUCTIONS_NAME}"),
            save_png(samples, out_dir / f"{prefix}{SAMPLES_NAME}")]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; returns 0 on success, 1 if the checkpoint or MNIST could not be read."""
    p = argparse.ArgumentParser(prog="python -m tools.figures", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--prefix", default="", help="file name prefix, e.g. seed_ -> seed_samples.png")
    p.add_argument("--data-root", type=Path, default=None, help="MNIST root (default: the project's data/)")
    p.add_argument("--n-recon", type=int, default=16, help="test digits in reconstructions.png")
    p.add_argument("--cols", type=int, default=16, help="digits per row")
    p.add_argument("--sample-rows", type=int, default=8, help="rows of prior samples")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior samples")
    p.add_argument("--scale", type=int, default=3, help="NEAREST upscaling factor per digit")
    p.add_argument("--gap", type=int, default=2, help="pixels between digits")
    args = p.parse_args(argv)
    if min(args.n_recon, args.cols, args.sample_rows, args.scale) < 1 or args.gap < 0:
        p.error("--n-recon, --cols, --sample-rows and --scale must be >= 1, --gap >= 0")
    if "/" in args.prefix or "\\" in args.prefix:
        p.error("--prefix is a file name prefix, not a path")
    torch.set_num_threads(1)

    from training import data

    root = data.DEFAULT_ROOT if args.data_root is None else args.data_root
    try:
        test_x, test_y = data.load_mnist(root, train=False, expected_md5=data.MNIST_FILES)
        paths = render_figures(args.checkpoint, test_x, test_y, args.out, args.prefix, args.n_recon, args.cols,
                               args.sample_rows, args.seed, args.scale, args.gap)
    except (CheckpointError, data.MnistUnavailableError, data.IdxFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in paths:
        with Image.open(path) as im:
            print(f"wrote {path} ({im.width}x{im.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
